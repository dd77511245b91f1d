import type { IncomingMessage, ServerResponse } from 'node:http';

/*
 * HTTP plumbing of the fake: JSON bodies in and out, and the request log
 * tests and benchmarks count API calls with.
 */

/** One request as the fake saw it. */
export interface SeenRequest {
  readonly seq: number;
  readonly method: string;
  readonly path: string;
  readonly query: Readonly<Record<string, string>>;
  readonly status: number;
  /** Authenticated user, or null when authentication failed. */
  readonly user: string | null;
  readonly contentType?: string;
  readonly body?: unknown;
}

/** Write a JSON answer the way the apiserver does. */
export function sendJson(
  res: ServerResponse,
  status: number,
  body: unknown,
  headers: Record<string, string> = {},
): void {
  res.writeHead(status, {
    'Content-Type': 'application/json',
    'Cache-Control': 'no-cache, private',
    ...headers,
  });
  res.end(JSON.stringify(body));
}

/** The request's JSON body (undefined when empty); throws on malformed JSON. */
export async function readJsonBody(req: IncomingMessage): Promise<unknown> {
  // Not `for await`: ending the iterator destroys the request, which would
  // close a watch's response with it.
  const text = await new Promise<string>((resolve, reject) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => resolve(Buffer.concat(chunks).toString('utf8')));
    req.on('error', reject);
  });
  if (text.trim() === '') return undefined;
  return JSON.parse(text) as unknown;
}

/** The entry the request log keeps for one request. */
export function seenRequest(
  seq: number,
  req: IncomingMessage,
  url: URL,
  status: number,
  user: string | null,
  body: unknown,
): SeenRequest {
  const contentType = req.headers['content-type'];
  return {
    seq,
    method: req.method ?? 'GET',
    path: url.pathname,
    query: Object.fromEntries(url.searchParams),
    status,
    user,
    ...(contentType === undefined ? {} : { contentType }),
    ...(body === undefined ? {} : { body }),
  };
}
