import { createServer, type Server } from 'node:http';
import { HttpRequest, InvocationContext } from '@azure/functions';

/**
 * A stand-in for the Azure Functions host in front of the registered `lbsync`
 * HTTP function (functions/azure.ts, configured by the caller): it checks the
 * function key as the host does for authLevel `function`, answers 401
 * without it, and hands everything else to the real handler. Counts POSTs.
 */
export async function startAzureHost(
  port: number,
  key: string,
): Promise<{
  readonly url: string;
  readonly posts: () => number;
  readonly close: () => Promise<void>;
}> {
  const fn = await import('../../functions/azure.js');
  let posts = 0;
  const server: Server = createServer(async (req, res) => {
    const chunks: Buffer[] = [];
    for await (const c of req) chunks.push(c as Buffer);
    if (req.method === 'POST') posts++;
    if (req.headers['x-functions-key'] !== key) {
      res.writeHead(401).end();
      return;
    }
    const out = await fn.onHttp(
      new HttpRequest({
        method: 'POST',
        url: `http://127.0.0.1:${port}${req.url}`,
        body: { string: Buffer.concat(chunks).toString('utf8') },
      }),
      new InvocationContext({ functionName: 'lbsync', logHandler: () => {} }),
    );
    res.writeHead(out.status ?? 200, { 'content-type': 'application/json' });
    res.end(JSON.stringify(out.jsonBody));
  });
  await new Promise<void>((r) => server.listen(port, '127.0.0.1', () => r()));
  return {
    url: `http://127.0.0.1:${port}/api/lbsync`,
    posts: () => posts,
    close: () => new Promise<void>((r) => server.close(() => r())),
  };
}
