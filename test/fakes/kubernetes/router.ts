import { ApiFailure, type ResourceApi, resourceDef } from './handlers.js';
import type { ResourceDef } from './resources.js';
import * as S from './status.js';
import type { WatchRequest } from './watch.js';

/*
 * From an HTTP request to what the apiserver would authorize and run: the
 * resource, namespace, name, subresource and verb (GET on a collection is
 * `list`, or `watch` with ?watch=true), then the handler.
 */

/** A parsed /api/v1 resource request. */
export interface ResourceRoute {
  readonly def: ResourceDef;
  readonly namespace?: string;
  readonly name?: string;
  readonly subresource?: string;
  readonly verb: string;
  readonly attrs: S.RequestAttributes;
}

/** Parse `/api/v1/...` into a resource request; null when the path names nothing the fake serves. */
export function parseRoute(
  method: string,
  pathname: string,
  q: URLSearchParams,
): ResourceRoute | null {
  if (!pathname.startsWith('/api/v1/')) return null;
  const segs = pathname
    .slice('/api/v1/'.length)
    .split('/')
    .filter((s) => s !== '')
    .map(decodeURIComponent);
  let namespace: string | undefined;
  let rest = segs;
  const inner = segs[2] === undefined ? undefined : resourceDef(segs[2]);
  if (segs[0] === 'namespaces' && segs.length >= 3 && inner?.namespaced === true) {
    namespace = segs[1];
    rest = segs.slice(2);
  }
  const [resource = '', name, subresource, ...extra] = rest;
  const def = resourceDef(resource);
  if (def === undefined || extra.length > 0) return null;
  if (def.namespaced && namespace === undefined && name !== undefined) return null;
  if (subresource !== undefined && !def.subresources.includes(subresource)) return null;
  const watch = q.get('watch') === 'true' || q.get('watch') === '1';
  const verb =
    method === 'GET'
      ? name !== undefined
        ? 'get'
        : watch
          ? 'watch'
          : 'list'
      : method === 'POST'
        ? 'create'
        : method === 'PUT'
          ? 'update'
          : method === 'PATCH'
            ? 'patch'
            : method === 'DELETE'
              ? name === undefined
                ? 'deletecollection'
                : 'delete'
              : method.toLowerCase();
  return {
    def,
    ...(namespace === undefined ? {} : { namespace }),
    ...(name === undefined ? {} : { name }),
    ...(subresource === undefined ? {} : { subresource }),
    verb,
    attrs: {
      verb,
      apiGroup: '',
      resource: def.name,
      ...(subresource === undefined ? {} : { subresource }),
      ...(namespace === undefined ? {} : { namespace }),
      ...(name === undefined ? {} : { name }),
    },
  };
}

/** What serving a route produced: a JSON answer, or a watch to stream. */
export type RouteResult =
  | { readonly status: number; readonly body: unknown }
  | { readonly watch: WatchRequest };

/** Run a parsed route. Refusals come back as their Status. */
export function serve(
  api: ResourceApi,
  r: ResourceRoute,
  q: URLSearchParams,
  contentType: string,
  body: unknown,
  maxWatchSeconds: number,
): RouteResult {
  try {
    switch (r.verb) {
      case 'list':
        return { status: 200, body: api.list(r.def, r.namespace, q) };
      case 'watch': {
        const rv = q.get('resourceVersion');
        const timeout = Number(q.get('timeoutSeconds') ?? maxWatchSeconds);
        return {
          watch: {
            resource: r.def,
            ...(r.namespace === undefined ? {} : { namespace: r.namespace }),
            match: api.matcher(r.def, q),
            ...(rv === null || rv === '' || rv === '0' ? {} : { fromResourceVersion: Number(rv) }),
            timeoutMs: Math.min(timeout > 0 ? timeout : maxWatchSeconds, maxWatchSeconds) * 1000,
            bookmarks: q.get('allowWatchBookmarks') === 'true',
          },
        };
      }
      case 'get':
        return { status: 200, body: api.get(r.def, r.namespace, r.name ?? '') };
      case 'create':
        if (r.subresource !== undefined) break;
        return { status: 201, body: api.create(r.def, r.namespace, body) };
      case 'update':
        return {
          status: 200,
          body: api.update(r.def, r.namespace, r.name ?? '', r.subresource, body),
        };
      case 'patch':
        return {
          status: 200,
          body: api.patch(r.def, r.namespace, r.name ?? '', r.subresource, contentType, body),
        };
      case 'delete':
        if (r.subresource !== undefined) break;
        return { status: 200, body: api.delete(r.def, r.namespace, r.name ?? '', body) };
    }
    return {
      status: 405,
      body: S.status(
        405,
        'MethodNotAllowed',
        `the server does not allow this method on the requested resource`,
      ),
    };
  } catch (err) {
    if (err instanceof ApiFailure) return { status: err.body.code, body: err.body };
    throw err;
  }
}
