import { isIPv4, isIPv6 } from 'node:net';
import { InputError } from './errors.js';

/**
 * Everything that reaches a config file or a shell command passes through
 * these checks first. They are allow-lists: anything outside is refused with
 * the offending value quoted (JSON-escaped so control characters show).
 */

/** Identifiers safe as HAProxy names and shell words: ids, names, tag keys. */
export const SAFE_ID = /^[A-Za-z0-9][A-Za-z0-9._:-]{0,127}$/;

/** Describe a value for an error message without letting control characters through. */
export function quote(value: unknown): string {
  return JSON.stringify(String(value));
}

/** Throw unless `value` is a safe identifier. `what` names the field for the error. */
export function assertSafeId(value: string, what: string): string {
  if (!SAFE_ID.test(value)) {
    throw new InputError(
      `${what}: ${quote(value)} is not a safe identifier (letters, digits, '.', '_', ':', '-'; at most 128; must start with a letter or digit)`,
    );
  }
  return value;
}

/** Throw unless `value` is a literal IPv4 or IPv6 address (no hostnames, no zone ids). */
export function assertIpAddress(value: string, what: string): string {
  if (!(isIPv4(value) || (isIPv6(value) && !value.includes('%')))) {
    throw new InputError(`${what}: ${quote(value)} is not an IP address`);
  }
  return value;
}

/** HAProxy needs IPv6 server addresses in brackets when a port follows. */
export function hostPort(address: string, port: number): string {
  return isIPv6(address) ? `[${address}]:${port}` : `${address}:${port}`;
}
