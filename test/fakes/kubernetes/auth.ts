import type { RequestAttributes } from './status.js';

/*
 * Authentication and authorization as the apiserver layers them: a bearer
 * token becomes a user with groups (or the request is refused with 401), then
 * RBAC-style rules decide each verb on each resource (or 403). The
 * authenticator is a seam: the default is a token table with expiry; the
 * cloud fakes (EKS presigned STS, Entra, GCP) will plug in their own.
 */

/** Who a token belongs to. */
export interface Identity {
  readonly user: string;
  readonly groups: readonly string[];
}

/** Turns a bearer token into an identity, or null to refuse it (401). */
export type Authenticator = (token: string) => Identity | null | Promise<Identity | null>;

/** One RBAC PolicyRule. `*` is a wildcard in each list. */
export interface PolicyRule {
  readonly apiGroups: readonly string[];
  /** `services`, `services/status`, `*`, `*\/status`. */
  readonly resources: readonly string[];
  readonly verbs: readonly string[];
  readonly resourceNames?: readonly string[];
}

/** Whom rules are bound to: a user, or a group (`system:authenticated` is every user). */
export type Subject = { readonly user: string } | { readonly group: string };

interface TokenEntry {
  readonly identity: Identity;
  expiresAt?: number;
}

/** The default authenticator: a table of static tokens, each with an optional expiry. */
export class TokenTable {
  private readonly tokens = new Map<string, TokenEntry>();

  /** Accept `token` as `identity` until `expiresAt` (epoch ms), or forever. */
  public add(token: string, identity: Identity, expiresAt?: number): void {
    this.tokens.set(token, { identity, ...(expiresAt === undefined ? {} : { expiresAt }) });
  }

  /** Make `token` expired from now on. */
  public expire(token: string): void {
    const e = this.tokens.get(token);
    if (e !== undefined) e.expiresAt = 0;
  }

  /** Forget `token`. */
  public remove(token: string): void {
    this.tokens.delete(token);
  }

  /** The Authenticator over this table. */
  public readonly authenticate: Authenticator = (token) => {
    const e = this.tokens.get(token);
    if (e === undefined) return null;
    if (e.expiresAt !== undefined && Date.now() >= e.expiresAt) return null;
    return e.identity;
  };
}

function matches(list: readonly string[], value: string): boolean {
  return list.includes('*') || list.includes(value);
}

function resourceMatches(rule: PolicyRule, a: RequestAttributes): boolean {
  // As upstream RBAC: `services` does not cover `services/status`.
  if (rule.resources.includes('*')) return true;
  if (a.subresource === undefined) return rule.resources.includes(a.resource);
  return (
    rule.resources.includes(`${a.resource}/${a.subresource}`) ||
    rule.resources.includes(`*/${a.subresource}`)
  );
}

/** Rules bound to users and groups; everything not granted is denied. */
export class Rbac {
  private readonly byUser = new Map<string, PolicyRule[]>();
  private readonly byGroup = new Map<string, PolicyRule[]>();

  /** Bind `rules` to `subject` (adds to what it already has). */
  public grant(subject: Subject, rules: readonly PolicyRule[]): void {
    const [map, key] =
      'user' in subject ? [this.byUser, subject.user] : [this.byGroup, subject.group];
    map.set(key, [...(map.get(key) ?? []), ...rules]);
  }

  /** Remove every rule bound to `subject`. */
  public revoke(subject: Subject): void {
    if ('user' in subject) this.byUser.delete(subject.user);
    else this.byGroup.delete(subject.group);
  }

  /** True when some rule of the identity (its user, its groups) allows the request. */
  public allows(who: Identity, a: RequestAttributes): boolean {
    const rules = [
      ...(this.byUser.get(who.user) ?? []),
      ...[...who.groups, 'system:authenticated'].flatMap((g) => this.byGroup.get(g) ?? []),
    ];
    return rules.some(
      (r) =>
        matches(r.verbs, a.verb) &&
        matches(r.apiGroups, a.apiGroup) &&
        resourceMatches(r, a) &&
        (r.resourceNames === undefined ||
          r.resourceNames.length === 0 ||
          (a.name !== undefined && r.resourceNames.includes(a.name))),
    );
  }
}

/** Everything on everything (cluster-admin). */
export const CLUSTER_ADMIN: readonly PolicyRule[] = [
  { apiGroups: ['*'], resources: ['*'], verbs: ['*'] },
];
