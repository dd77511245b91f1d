import { createHmac, randomUUID } from 'node:crypto';
import { createServer, type Server } from 'node:http';

/**
 * The identity-token part of a GCE / GKE metadata server, on 127.0.0.1:<port>
 * (point google-auth-library at it with GCE_METADATA_HOST): `GET
 * /computeMetadata/v1/instance/service-accounts/default/identity?audience=…`
 * with `Metadata-Flavor: Google` answers a JWT for that audience, as the GKE
 * metadata server does for a Workload Identity pod. Every token it issued is
 * kept, so a test can check that what reached the function is one of them,
 * for the right audience and not expired. The signature is an HMAC with a
 * per-instance key: only this fake can tell a token of its own.
 */
export class FakeIdentityServer {
  /** Tokens issued, oldest first. */
  public readonly issued: { readonly audience: string; readonly token: string }[] = [];
  private readonly key = randomUUID();

  private constructor(
    private readonly server: Server,
    /** The service account the tokens speak for. */
    public readonly email: string,
    private readonly lifetimeSeconds: number,
  ) {}

  /** Listen on 127.0.0.1:`port`. */
  public static async start(
    port: number,
    email: string,
    lifetimeSeconds = 3600,
  ): Promise<FakeIdentityServer> {
    const server = createServer();
    const fake = new FakeIdentityServer(server, email, lifetimeSeconds);
    server.on('request', (req, res) => {
      const url = new URL(req.url ?? '/', 'http://metadata');
      const headers = { 'Metadata-Flavor': 'Google', 'content-type': 'text/plain' };
      if (req.headers['metadata-flavor'] !== 'Google') {
        res.writeHead(403, headers).end('Missing Metadata-Flavor:Google header.');
        return;
      }
      if (url.pathname === '/computeMetadata/v1/instance/service-accounts/default/identity') {
        const audience = url.searchParams.get('audience') ?? '';
        if (audience === '') {
          res.writeHead(400, headers).end('non-empty audience parameter required');
          return;
        }
        res.writeHead(200, headers).end(fake.issue(audience));
        return;
      }
      res.writeHead(url.pathname.startsWith('/computeMetadata/v1') ? 200 : 404, headers).end('');
    });
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject);
      server.listen(port, '127.0.0.1', () => resolve());
    });
    return fake;
  }

  private b64(v: unknown): string {
    return Buffer.from(JSON.stringify(v)).toString('base64url');
  }

  private issue(audience: string): string {
    const now = Math.floor(Date.now() / 1000);
    const body = `${this.b64({ alg: 'HS256', typ: 'JWT' })}.${this.b64({
      iss: 'https://accounts.google.com',
      aud: audience,
      azp: this.email,
      email: this.email,
      sub: '100000000000000000001',
      iat: now,
      exp: now + this.lifetimeSeconds,
    })}`;
    const token = `${body}.${createHmac('sha256', this.key).update(body).digest('base64url')}`;
    this.issued.push({ audience, token });
    return token;
  }

  /** The claims of a token this server issued and that has not expired; else null. */
  public verify(token: string): { readonly aud: string; readonly email: string } | null {
    const [h, p, sig] = token.split('.');
    if (h === undefined || p === undefined || sig === undefined) return null;
    const want = createHmac('sha256', this.key).update(`${h}.${p}`).digest('base64url');
    if (want !== sig) return null;
    const claims = JSON.parse(Buffer.from(p, 'base64url').toString('utf8')) as {
      aud: string;
      email: string;
      exp: number;
    };
    return claims.exp * 1000 > Date.now() ? claims : null;
  }

  /** Stop listening. */
  public async stop(): Promise<void> {
    this.server.closeAllConnections();
    await new Promise<void>((resolve) => this.server.close(() => resolve()));
  }
}
