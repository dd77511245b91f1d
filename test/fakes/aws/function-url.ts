import { createHash, createHmac } from 'node:crypto';
import { createServer, type IncomingMessage, type Server } from 'node:http';

/**
 * A Lambda function URL with AuthType AWS_IAM, on 127.0.0.1:<port>. It does
 * what the URL's front end does before and after the function runs:
 *   - checks the SigV4 signature the way AWS checks it: the canonical request
 *     is rebuilt from the request as received (method, path, query, the
 *     signed headers' values, the body's SHA-256), signed with the secret of
 *     the access key named in the credential scope, and compared; the scope
 *     must name this region and the `lambda` service, and X-Amz-Date must be
 *     within 5 minutes. Failures answer 403 `{"Message":"Forbidden"}`.
 *   - hands the function a payload-format-2.0 event with the IAM authorizer
 *     context, and turns the result into the HTTP answer: a result with
 *     `statusCode` gives status, headers and body; any other JSON is a 200
 *     with that JSON; a thrown error is a 502. A result with `statusCode`
 *     and any key outside the response format (statusCode, headers, body,
 *     cookies, isBase64Encoded) is also a 502: AWS documents only those
 *     keys, and this fake takes the strict reading so that lbsync never
 *     relies on Lambda ignoring the others.
 * The signature check is written out from the SigV4 specification, not with
 * the signer the client uses, so a client bug cannot hide behind it.
 */
const RESPONSE_KEYS = new Set(['statusCode', 'headers', 'body', 'cookies', 'isBase64Encoded']);

export class FakeFunctionUrl {
  /** Requests in arrival order, with the status they got. */
  public readonly requests: { readonly status: number; readonly accessKey?: string }[] = [];
  /** Response keys outside the format that a result carried (each answered 502). */
  public readonly foreignKeys: string[] = [];

  private constructor(
    private readonly server: Server,
    private readonly region: string,
    private readonly secrets: ReadonlyMap<string, string>,
    private readonly handler: (event: unknown) => Promise<unknown>,
  ) {}

  /** Serve `handler` behind IAM auth; `secrets` maps access key ids to secret keys. */
  public static async start(o: {
    readonly port: number;
    readonly region: string;
    readonly secrets: Readonly<Record<string, string>>;
    readonly handler: (event: unknown) => Promise<unknown>;
  }): Promise<FakeFunctionUrl> {
    const server = createServer();
    const fake = new FakeFunctionUrl(
      server,
      o.region,
      new Map(Object.entries(o.secrets)),
      o.handler,
    );
    server.on('request', (req, res) => {
      void fake.handle(req).then(({ status, headers, body }) => {
        res.writeHead(status, headers).end(body);
      });
    });
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject);
      server.listen(o.port, '127.0.0.1', () => resolve());
    });
    return fake;
  }

  private verify(req: IncomingMessage, url: URL, body: Buffer): string | null {
    const auth =
      /^AWS4-HMAC-SHA256 Credential=([^/]+)\/(\d{8})\/([^/]+)\/([^/]+)\/aws4_request, SignedHeaders=([^,]+), Signature=([0-9a-f]{64})$/.exec(
        req.headers.authorization ?? '',
      );
    if (auth === null) return null;
    const [, key = '', day = '', region, service, signedList = '', signature] = auth;
    const secret = this.secrets.get(key);
    const date = String(req.headers['x-amz-date'] ?? '');
    const skew = Math.abs(
      Date.now() -
        Date.parse(
          date.replace(/^(\d{4})(\d{2})(\d{2})T(\d{2})(\d{2})(\d{2})Z$/, '$1-$2-$3T$4:$5:$6Z'),
        ),
    );
    if (secret === undefined || region !== this.region || service !== 'lambda') return null;
    if (!date.startsWith(day) || !(skew < 300_000)) return null;
    const signed = signedList.split(';');
    if (!signed.includes('host') || !signed.includes('x-amz-date')) return null;
    const query = [...url.searchParams]
      .map(([k, v]) => `${encodeURIComponent(k)}=${encodeURIComponent(v)}`)
      .sort()
      .join('&');
    const canonical = [
      req.method,
      url.pathname,
      query,
      ...signed.map(
        (h) =>
          `${h}:${String(req.headers[h] ?? '')
            .trim()
            .replace(/\s+/g, ' ')}`,
      ),
      '',
      signedList,
      createHash('sha256').update(body).digest('hex'),
    ].join('\n');
    const scope = `${day}/${region}/${service}/aws4_request`;
    const toSign = `AWS4-HMAC-SHA256\n${date}\n${scope}\n${createHash('sha256').update(canonical).digest('hex')}`;
    let k: Buffer = createHmac('sha256', `AWS4${secret}`).update(day).digest();
    for (const part of [region, service, 'aws4_request'])
      k = createHmac('sha256', k).update(part).digest();
    return createHmac('sha256', k).update(toSign).digest('hex') === signature ? key : null;
  }

  private async handle(
    req: IncomingMessage,
  ): Promise<{ status: number; headers: Record<string, string>; body: string }> {
    const chunks: Buffer[] = [];
    for await (const c of req) chunks.push(c as Buffer);
    const body = Buffer.concat(chunks);
    const url = new URL(req.url ?? '/', 'http://function-url');
    const json = { 'content-type': 'application/json' };
    const accessKey = this.verify(req, url, body);
    if (accessKey === null) {
      this.requests.push({ status: 403 });
      return { status: 403, headers: json, body: '{"Message":"Forbidden"}' };
    }
    const event = {
      version: '2.0',
      rawPath: url.pathname,
      rawQueryString: url.search.replace(/^\?/, ''),
      headers: Object.fromEntries(Object.entries(req.headers).map(([k, v]) => [k, String(v)])),
      body: body.toString('utf8'),
      isBase64Encoded: false,
      requestContext: {
        http: { method: req.method ?? 'GET', path: url.pathname },
        authorizer: {
          iam: {
            accessKey,
            accountId: '123456789012',
            userArn: `arn:aws:iam::123456789012:user/${accessKey}`,
          },
        },
      },
    };
    let answer: { status: number; headers: Record<string, string>; body: string };
    try {
      const r = (await this.handler(event)) as Record<string, unknown> | null;
      const formatted = r !== null && typeof r === 'object' && typeof r.statusCode === 'number';
      const foreign = formatted ? Object.keys(r).filter((k) => !RESPONSE_KEYS.has(k)) : [];
      this.foreignKeys.push(...foreign);
      answer =
        foreign.length > 0
          ? { status: 502, headers: json, body: '{"Message":"Internal Server Error"}' }
          : formatted
            ? {
                status: r.statusCode as number,
                headers: (r.headers as Record<string, string> | undefined) ?? {},
                body: typeof r.body === 'string' ? r.body : '',
              }
            : { status: 200, headers: json, body: JSON.stringify(r) };
    } catch {
      answer = { status: 502, headers: json, body: '{"Message":"Internal Server Error"}' };
    }
    this.requests.push({ status: answer.status, accessKey });
    return answer;
  }

  /** Stop listening. */
  public async stop(): Promise<void> {
    this.server.closeAllConnections();
    await new Promise<void>((resolve) => this.server.close(() => resolve()));
  }
}
