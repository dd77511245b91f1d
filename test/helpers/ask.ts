import { request } from 'node:http';

/** The `x-worker` of one fresh request (no keep-alive) to 127.0.0.1:`port`. */
export function askWorker(port: number, timeoutMs = 3000): Promise<string> {
  return new Promise((resolve, reject) => {
    const req = request({ host: '127.0.0.1', port, path: '/', agent: false }, (res) => {
      res.resume();
      res.on('end', () => resolve(String(res.headers['x-worker'])));
    });
    req.setTimeout(timeoutMs, () => req.destroy(new Error('request timeout')));
    req.on('error', reject);
    req.end();
  });
}
