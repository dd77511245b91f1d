import { describe, expect, it } from 'vitest';
import {
  functionUrlResponse,
  functionUrlTrigger,
  isFunctionUrlEvent,
} from '../../../adapters/aws/function-url.js';

const event = (o: { method?: string; body?: string; base64?: boolean; iam?: boolean } = {}) => ({
  version: '2.0' as const,
  rawPath: '/',
  body: o.base64 ? Buffer.from(o.body ?? '').toString('base64') : o.body,
  isBase64Encoded: o.base64 === true,
  requestContext: {
    http: { method: o.method ?? 'POST' },
    ...(o.iam === false ? {} : { authorizer: { iam: { userArn: 'arn:aws:iam::1:role/watcher' } } }),
  },
});

describe('function URL requests', () => {
  it('tells a function URL event from EventBridge events and manual bodies', () => {
    expect(isFunctionUrlEvent(event())).toBe(true);
    expect(isFunctionUrlEvent({ lbsync: 'resync' })).toBe(false);
    expect(
      isFunctionUrlEvent({ version: '0', source: 'aws.autoscaling', 'detail-type': 'x' }),
    ).toBe(false);
  });

  it('turns a signed POST of a manual body into a manual sync, base64 or not', () => {
    for (const base64 of [false, true]) {
      const t = functionUrlTrigger(event({ body: '{"lbsync":"resync","dryRun":true}', base64 }));
      expect(t).toEqual({
        trigger: {
          kind: 'sync',
          detail: 'manual',
          request: { reason: 'manual', force: false, dryRun: true },
        },
      });
    }
  });

  it.each([
    ['a GET', event({ method: 'GET', body: '{}' }), 405, /use POST/],
    ['a URL without IAM auth', event({ iam: false, body: '{"lbsync":"resync"}' }), 401, /AWS_IAM/],
    ['a body that is not JSON', event({ body: 'resync please' }), 400, /must be JSON/],
  ])('refuses %s with %i', (_name, e, status, message) => {
    const t = functionUrlTrigger(e);
    expect('refused' in t && t.refused.statusCode).toBe(status);
    expect('refused' in t && JSON.parse(t.refused.body).error.message).toMatch(message);
  });

  it('answers with the status and body of the HTTP functions, in the keys of the response format only', () => {
    const r = functionUrlResponse({ ok: false, outcome: 'failed', retryable: true });
    expect(r.statusCode).toBe(503);
    expect(JSON.parse(r.body)).toEqual({ ok: false, outcome: 'failed', retryable: true });
    expect(Object.keys(r).sort()).toEqual(['body', 'headers', 'statusCode']);
  });
});
