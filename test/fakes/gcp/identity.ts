import { randomBytes } from 'node:crypto';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import type { Authenticator } from '../kubernetes/auth.js';

/*
 * The metadata server a Cloud Function (2nd gen, on Cloud Run) sees, for the
 * part Application Default Credentials use: google-auth-library detects it
 * through GCE_METADATA_HOST (`GET /computeMetadata/v1/instance`), then
 * fetches tokens and the project from it:
 *
 *   GET /computeMetadata/v1/instance/service-accounts/default/token[?scopes=…]
 *       -> { access_token, expires_in, token_type: "Bearer" }
 *   GET /computeMetadata/v1/instance/service-accounts/default/email
 *   GET /computeMetadata/v1/project/project-id
 *
 * Every request needs `Metadata-Flavor: Google`, and every answer carries
 * it (the library checks). The fake remembers the tokens it issued, so the
 * Compute fake and a GKE API server accept only its own, unexpired. Faults:
 * answer the next N token requests with an error status.
 */

/** One token the fake issued. */
export interface IssuedGoogleToken {
  readonly email: string;
  expiresAt: number;
}

/** The function's metadata server (its service account's tokens). */
export class FakeGoogleIdentity {
  /** Requests in order (path and status). */
  public readonly requests: { readonly path: string; readonly status: number }[] = [];
  /** Lifetime of issued tokens (the real one: about an hour). */
  public lifetimeSeconds = 3599;
  private readonly issued = new Map<string, IssuedGoogleToken>();
  private failures = { status: 503, remaining: 0 };

  private constructor(
    private readonly server: Server,
    public readonly project: string,
    public readonly email: string,
  ) {}

  /** Listen on 127.0.0.1:`port` as `email` of `project`. */
  public static async start(
    port: number,
    o: { readonly project: string; readonly email: string },
  ): Promise<FakeGoogleIdentity> {
    const server = createServer();
    const fake = new FakeGoogleIdentity(server, o.project, o.email);
    server.on('request', (req, res) => {
      const url = new URL(req.url ?? '/', 'http://metadata');
      const path = url.pathname.replace(/\/$/, '');
      const reply = (status: number, body: string, type = 'application/text'): void => {
        fake.requests.push({ path, status });
        res.writeHead(status, { 'content-type': type, 'metadata-flavor': 'Google' });
        res.end(body);
      };
      if (req.headers['metadata-flavor'] !== 'Google') {
        reply(403, 'Missing required header "Metadata-Flavor": "Google"\n');
        return;
      }
      const base = '/computeMetadata/v1';
      if (path === `${base}/instance`) reply(200, 'attributes/\nservice-accounts/\nzone\n');
      else if (path === `${base}/project/project-id`) reply(200, fake.project);
      else if (path === `${base}/instance/service-accounts/default/email`) reply(200, fake.email);
      else if (path === `${base}/instance/service-accounts/default/token`) {
        if (fake.failures.remaining > 0) {
          fake.failures.remaining--;
          reply(fake.failures.status, 'injected fault\n');
          return;
        }
        reply(200, JSON.stringify(fake.issue()), 'application/json');
      } else reply(404, 'not found\n');
    });
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject);
      server.listen(port, '127.0.0.1', () => resolve());
    });
    return fake;
  }

  /** What GCE_METADATA_HOST holds (host:port). */
  public get host(): string {
    return `127.0.0.1:${(this.server.address() as AddressInfo).port}`;
  }

  /** Answer the next `count` token requests with `status`. */
  public fail(count: number, status = 503): void {
    this.failures = { status, remaining: count };
  }

  /** Every token issued so far is past its expiry from now on; callers may still cache them. */
  public expireIssued(): void {
    for (const t of this.issued.values()) t.expiresAt = 0;
  }

  /** The token, when this metadata server issued it and it has not expired. */
  public validate(token: string): IssuedGoogleToken | null {
    const t = this.issued.get(token);
    return t === undefined || Date.now() >= t.expiresAt ? null : t;
  }

  /** A GKE API server's authenticator: this account's live tokens, as its email. */
  public gkeAuthenticator(groups: readonly string[] = []): Authenticator {
    return (token) => {
      const t = this.validate(token);
      return t === null ? null : { user: t.email, groups };
    };
  }

  /** Stop listening. */
  public async stop(): Promise<void> {
    this.server.closeAllConnections();
    await new Promise<void>((resolve) => this.server.close(() => resolve()));
  }

  private issue(): Record<string, string | number> {
    const token = `ya29.fake-${randomBytes(24).toString('base64url')}`;
    this.issued.set(token, {
      email: this.email,
      expiresAt: Date.now() + this.lifetimeSeconds * 1000,
    });
    return { access_token: token, expires_in: this.lifetimeSeconds, token_type: 'Bearer' };
  }
}
