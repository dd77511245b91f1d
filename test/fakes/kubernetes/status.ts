/*
 * `Status` bodies exactly as kube-apiserver writes them (k8s.io/apimachinery
 * pkg/api/errors and the apiserver's responsewriters), so clients parse the
 * same reasons, codes and messages they would meet on a real cluster.
 */

/** A meta/v1 Status failure. */
export interface StatusBody {
  readonly kind: 'Status';
  readonly apiVersion: 'v1';
  readonly metadata: { readonly continue?: string };
  readonly status: 'Failure' | 'Success';
  readonly message: string;
  readonly reason?: string;
  readonly details?: {
    readonly name?: string;
    readonly group?: string;
    readonly kind?: string;
    readonly retryAfterSeconds?: number;
    readonly causes?: readonly { reason: string; message: string; field: string }[];
  };
  readonly code: number;
}

/** A failure Status with `code`, `reason` and `message`. */
export function status(
  code: number,
  reason: string,
  message: string,
  details?: StatusBody['details'],
  metadata: StatusBody['metadata'] = {},
): StatusBody {
  return {
    kind: 'Status',
    apiVersion: 'v1',
    metadata,
    status: 'Failure',
    message,
    reason,
    ...(details === undefined ? {} : { details }),
    code,
  };
}

/** What an authorization decision is about (the apiserver's authorizer.Attributes). */
export interface RequestAttributes {
  readonly verb: string;
  readonly apiGroup: string;
  readonly resource: string;
  readonly subresource?: string;
  readonly namespace?: string;
  readonly name?: string;
  /** Set for non-resource requests (/api, /version, ...). */
  readonly path?: string;
}

/** 401, as the authentication filter writes it. */
export function unauthorized(): StatusBody {
  return status(401, 'Unauthorized', 'Unauthorized');
}

/** 403 with the RBAC message: `services is forbidden: User "u" cannot list resource ...`. */
export function forbidden(user: string, a: RequestAttributes): StatusBody {
  if (a.path !== undefined) {
    return status(
      403,
      'Forbidden',
      `forbidden: User "${user}" cannot ${a.verb} path "${a.path}"`,
      {},
    );
  }
  const resource = a.subresource === undefined ? a.resource : `${a.resource}/${a.subresource}`;
  const scope =
    a.namespace === undefined ? 'at the cluster scope' : `in the namespace "${a.namespace}"`;
  const why = `User "${user}" cannot ${a.verb} resource "${resource}" in API group "${a.apiGroup}" ${scope}`;
  const qualified = a.apiGroup === '' ? a.resource : `${a.resource}.${a.apiGroup}`;
  const subject = a.name === undefined ? qualified : `${qualified} "${a.name}"`;
  return status(403, 'Forbidden', `${subject} is forbidden: ${why}`, {
    ...(a.name === undefined ? {} : { name: a.name }),
    ...(a.apiGroup === '' ? {} : { group: a.apiGroup }),
    kind: a.resource,
  });
}

/** 404 for a named object. */
export function notFound(resource: string, name: string): StatusBody {
  return status(404, 'NotFound', `${resource} "${name}" not found`, { name, kind: resource });
}

/** 404 for a path the fake does not serve. */
export function pathNotFound(): StatusBody {
  return status(404, 'NotFound', 'the server could not find the requested resource', {});
}

/** 409 on a stale resourceVersion. */
export function conflict(resource: string, name: string): StatusBody {
  return status(
    409,
    'Conflict',
    `Operation cannot be fulfilled on ${resource} "${name}": the object has been modified; please apply your changes to the latest version and try again`,
    { name, kind: resource },
  );
}

/** 409 on create of an existing name. */
export function alreadyExists(resource: string, name: string): StatusBody {
  return status(409, 'AlreadyExists', `${resource} "${name}" already exists`, {
    name,
    kind: resource,
  });
}

/** 422 with field causes, as validation writes it. */
export function invalid(
  kind: string,
  name: string,
  causes: readonly { field: string; message: string; reason?: string }[],
): StatusBody {
  const list = causes.map((c) => `${c.field}: ${c.message}`).join(', ');
  return status(422, 'Invalid', `${kind} "${name}" is invalid: ${list}`, {
    name,
    kind,
    causes: causes.map((c) => ({
      reason: c.reason ?? 'FieldValueInvalid',
      message: c.message,
      field: c.field,
    })),
  });
}

/** 400. */
export function badRequest(message: string): StatusBody {
  return status(400, 'BadRequest', message);
}

/** 415 for a PATCH content type the server does not take. */
export function unsupportedMediaType(type: string): StatusBody {
  return status(
    415,
    'UnsupportedMediaType',
    `the body of the request was in an unknown format - accepted media types include: application/json-patch+json, application/merge-patch+json, application/apply-patch+yaml, application/strategic-merge-patch+json (got ${type})`,
  );
}

/** 410 for a continue token older than the compaction window. */
export function continueExpired(freshContinue?: string): StatusBody {
  return status(
    410,
    'Expired',
    'The provided continue parameter is too old to display a consistent list result. You can start a new list without the continue parameter, or use the continue token in this response to retrieve the remainder of the results. Continuing with the provided token results in an inconsistent list - objects that were created, modified, or deleted between the time the first chunk was returned and now may show up in the list.',
    undefined,
    freshContinue === undefined ? {} : { continue: freshContinue },
  );
}

/** 410 for a watch from a compacted resourceVersion (sent as an in-stream ERROR event). */
export function tooOldResourceVersion(requested: number, oldest: number): StatusBody {
  return status(410, 'Expired', `too old resource version: ${requested} (${oldest})`);
}

/** 429, as API Priority and Fairness writes it. */
export function tooManyRequests(retryAfterSeconds: number): StatusBody {
  return status(429, 'TooManyRequests', 'Too many requests, please try again later.', {
    retryAfterSeconds,
  });
}

/** 5xx. */
export function serverError(code: number): StatusBody {
  if (code === 503)
    return status(
      503,
      'ServiceUnavailable',
      'the server is currently unable to handle the request',
    );
  if (code === 504)
    return status(
      504,
      'Timeout',
      'the server was unable to return a response in the time allotted, but may still be processing the request',
    );
  return status(code, 'InternalError', 'Internal error occurred: injected fault');
}

/** A request the apiserver refuses; `body` is the Status to send. */
export class ApiFailure extends Error {
  public constructor(public readonly body: StatusBody) {
    super(body.message);
    this.name = 'ApiFailure';
  }
}
