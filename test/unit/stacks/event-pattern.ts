/*
 * A small EventBridge pattern matcher for the subset the AWS stack uses:
 * nested objects of arrays of literal values (strings, numbers, booleans,
 * null). A field matches when its value (or, for an array, any element)
 * equals one of the listed literals; every field of the pattern must match.
 * Content filters (prefix, anything-but, numeric, exists …) are outside the
 * subset and throw, so a pattern using them cannot pass by accident.
 */

/** The pattern uses a feature this matcher does not implement. */
export class UnsupportedPatternError extends Error {
  readonly retryable = false;
  override readonly name = 'UnsupportedPatternError';
}

type Literal = string | number | boolean | null;

function isLiteral(v: unknown): v is Literal {
  return v === null || ['string', 'number', 'boolean'].includes(typeof v);
}

function fieldMatches(allowed: readonly unknown[], value: unknown, path: string): boolean {
  for (const a of allowed) {
    if (!isLiteral(a))
      throw new UnsupportedPatternError(`${path}: content filter ${JSON.stringify(a)}`);
  }
  const values = Array.isArray(value) ? value : [value];
  return values.some((v) => isLiteral(v) && allowed.some((a) => a === v));
}

/** True when `event` matches `pattern` (subset above). */
export function matchesEventPattern(pattern: unknown, event: unknown, path = ''): boolean {
  if (typeof pattern !== 'object' || pattern === null || Array.isArray(pattern)) {
    throw new UnsupportedPatternError(`${path || '(root)'}: a pattern level must be an object`);
  }
  if (typeof event !== 'object' || event === null || Array.isArray(event)) return false;
  const e = event as Record<string, unknown>;
  for (const [key, want] of Object.entries(pattern)) {
    const here = path === '' ? key : `${path}.${key}`;
    if (!(key in e)) return false;
    if (Array.isArray(want)) {
      if (want.length === 0) throw new UnsupportedPatternError(`${here}: empty array`);
      if (!fieldMatches(want, e[key], here)) return false;
    } else if (!matchesEventPattern(want, e[key], here)) {
      return false;
    }
  }
  return true;
}
