import { randomBytes, randomUUID } from 'node:crypto';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import type { Authenticator } from '../kubernetes/auth.js';

/*
 * A fake Microsoft Entra ID as a Function App sees it: the App Service
 * managed identity endpoint (`IDENTITY_ENDPOINT`, guarded by the
 * `X-IDENTITY-HEADER` secret of `IDENTITY_HEADER`), which the real
 * @azure/identity ManagedIdentityCredential (through MSAL, inside
 * DefaultAzureCredential) calls:
 *
 *   GET /msi/token?api-version=2019-08-01&resource=<resource>
 *   -> { access_token, expires_on (epoch s), resource, token_type, client_id }
 *
 * It remembers every token it issued (audience, object id, expiry), so the
 * services that receive them (ARM, an AKS API server) accept only its own,
 * for their audience, unexpired. Faults: answer the next N token requests
 * with an error status.
 */

/** The AKS server application id: the audience of AKS tokens. */
export const AKS_AUDIENCE = '6dae42f8-4368-4678-94ff-3960e28e3630';
/** The ARM audience. */
export const ARM_AUDIENCE = 'https://management.azure.com';

/** One token the fake issued. */
export interface IssuedToken {
  readonly audience: string;
  readonly objectId: string;
  expiresAt: number;
}

/** The fake managed identity endpoint of one Function App's system-assigned identity. */
export class FakeManagedIdentity {
  /** Token requests in order, with the resource asked for and the status answered. */
  public readonly requests: { readonly resource: string; readonly status: number }[] = [];
  /** The identity's object (principal) id: the Kubernetes user name AKS gives it. */
  public readonly objectId = randomUUID();
  public readonly clientId = randomUUID();
  /** The value IDENTITY_HEADER must hold. */
  public readonly secret = randomBytes(16).toString('hex');
  /** Lifetime of issued tokens (the real service issues ~24 h). */
  public lifetimeMs = 24 * 3_600_000;
  private readonly issued = new Map<string, IssuedToken>();
  private failures = { status: 500, remaining: 0 };

  private constructor(private readonly server: Server) {}

  /** Listen on 127.0.0.1:`port`. */
  public static async start(port: number): Promise<FakeManagedIdentity> {
    const server = createServer();
    const fake = new FakeManagedIdentity(server);
    server.on('request', (req, res) => {
      const url = new URL(req.url ?? '/', 'http://identity');
      const resource = url.searchParams.get('resource') ?? '';
      const reply = (status: number, body: unknown): void => {
        fake.requests.push({ resource, status });
        res.writeHead(status, { 'content-type': 'application/json' });
        res.end(JSON.stringify(body));
      };
      if (req.method !== 'GET' || url.pathname !== '/msi/token') {
        reply(404, { error: 'not_found' });
      } else if (req.headers['x-identity-header'] !== fake.secret) {
        reply(401, { statusCode: 401, message: 'Unauthorized: X-IDENTITY-HEADER mismatch' });
      } else if (url.searchParams.get('api-version') !== '2019-08-01' || resource === '') {
        reply(400, { error: 'invalid_request', error_description: 'api-version and resource' });
      } else if (fake.failures.remaining > 0) {
        fake.failures.remaining--;
        reply(fake.failures.status, {
          error: 'service_unavailable',
          error_description: 'injected',
        });
      } else {
        reply(200, fake.issue(resource));
      }
    });
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject);
      server.listen(port, '127.0.0.1', () => resolve());
    });
    return fake;
  }

  /** What IDENTITY_ENDPOINT holds. */
  public get endpoint(): string {
    return `http://127.0.0.1:${(this.server.address() as AddressInfo).port}/msi/token`;
  }

  /** The environment App Service gives a function with a managed identity. */
  public get env(): Record<string, string> {
    return { IDENTITY_ENDPOINT: this.endpoint, IDENTITY_HEADER: this.secret };
  }

  /** Answer the next `count` token requests with `status`. */
  public fail(count: number, status = 500): void {
    this.failures = { status, remaining: count };
  }

  /** Every token issued so far (for `audience`, if given) is past its expiry from now on; callers may still cache them. */
  public expireIssued(audience?: string): void {
    for (const t of this.issued.values()) {
      if (audience === undefined || t.audience === audience) t.expiresAt = 0;
    }
  }

  /** The token, when this identity issued it for `audience` and it has not expired. */
  public validate(token: string, audience: string): IssuedToken | null {
    const t = this.issued.get(token);
    if (t === undefined || t.audience !== audience || Date.now() >= t.expiresAt) return null;
    return t;
  }

  /**
   * An AKS API server's authenticator (Entra integration): only this
   * identity's unexpired tokens for the AKS server application; the user is
   * the identity's object id, as AKS names managed identities.
   */
  public aksAuthenticator(groups: readonly string[] = []): Authenticator {
    return (token) => {
      const t = this.validate(token, AKS_AUDIENCE);
      return t === null ? null : { user: t.objectId, groups };
    };
  }

  /** Stop listening. */
  public async stop(): Promise<void> {
    this.server.closeAllConnections();
    await new Promise<void>((resolve) => this.server.close(() => resolve()));
  }

  private issue(resource: string): Record<string, string> {
    // MSAL asks with the scope's resource (`<app id>/.default` -> `<app id>`).
    const audience = resource.replace(/\/\.default$/, '').replace(/\/$/, '');
    const token = `entra-${randomBytes(24).toString('base64url')}`;
    const expiresAt = Date.now() + this.lifetimeMs;
    this.issued.set(token, { audience, objectId: this.objectId, expiresAt });
    return {
      access_token: token,
      expires_on: String(Math.floor(expiresAt / 1000)),
      resource,
      token_type: 'Bearer',
      client_id: this.clientId,
    };
  }
}
