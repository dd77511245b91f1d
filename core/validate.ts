import { BlockList, isIPv4, isIPv6, SocketAddress } from 'node:net';
import { InputError } from './errors.js';

/**
 * Everything that reaches a config file or a shell command passes through
 * these checks first. They are allow-lists: anything outside is refused with
 * the offending value quoted (JSON-escaped so control characters show).
 *
 * Over 300 lines on purpose: the address, bind and duration rules are one
 * allow-list, read together with the README table that documents them.
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

// ---------------------------------------------------------------------------
// Addresses

function ranges(
  list: readonly (readonly [string, number, 'ipv4' | 'ipv6', string])[],
): readonly { readonly match: BlockList; readonly why: string }[] {
  return list.map(([net, prefix, family, why]) => {
    const match = new BlockList();
    match.addSubnet(net, prefix, family);
    return { match, why };
  });
}

/*
 * Ranges no worker can be reached at. Order matters: the first match names
 * the reason. Loopback (127.0.0.0/8, ::1) is allowed on purpose: the demo and
 * the tests run workers on 127.0.x.y, and a single-host setup is legitimate;
 * a cloud API never reports a loopback address as an instance's private IP.
 * A subnet's directed broadcast (10.0.0.255 in a /24) cannot be told apart
 * from a host without the prefix length, so only the limited broadcast
 * 255.255.255.255 (inside 240.0.0.0/4) is refused.
 */
const UNSPECIFIED_WHY =
  'is unspecified: to HAProxy, server 0.0.0.0 or :: means "the client\'s original destination", so the LB would connect to itself';
const V4_REFUSED = ranges([
  ['0.0.0.0', 32, 'ipv4', UNSPECIFIED_WHY],
  ['0.0.0.0', 8, 'ipv4', 'is in 0.0.0.0/8 ("this network"), which is not a destination'],
  [
    '169.254.0.0',
    16,
    'ipv4',
    'is link-local (169.254.0.0/16; 169.254.169.254 is the cloud metadata server)',
  ],
  ['224.0.0.0', 4, 'ipv4', 'is multicast (224.0.0.0/4); TCP cannot connect to it'],
  [
    '240.0.0.0',
    4,
    'ipv4',
    'is reserved (240.0.0.0/4, with the broadcast address 255.255.255.255); TCP cannot connect to it',
  ],
]);
const V6_REFUSED = ranges([
  ['::', 128, 'ipv6', UNSPECIFIED_WHY],
  [
    '::ffff:0:0',
    96,
    'ipv6',
    'is an IPv4-mapped IPv6 address: write the IPv4 address itself (::ffff:10.0.0.1 is 10.0.0.1)',
  ],
  ['fe80::', 10, 'ipv6', 'is link-local (fe80::/10) and needs a zone id, which lbsync refuses'],
  ['ff00::', 8, 'ipv6', 'is multicast (ff00::/8); TCP cannot connect to it'],
]);
// ::1 is loopback; the rest of ::/96 is the deprecated IPv4-compatible form (RFC 4291).
const V4_COMPATIBLE = ranges([
  ['::', 96, 'ipv6', 'is a deprecated IPv4-compatible IPv6 address: write the IPv4 address itself'],
]);

/** The one spelling of an IPv6 address (RFC 5952: lowercase, longest zero run compressed). */
function canonicalIPv6(address: string): string {
  return new SocketAddress({ address, family: 'ipv6' }).address;
}

/** A literal address read strictly: canonical IPv4 dotted decimal, or any valid IPv6 without zone. */
type ReadAddress =
  | { readonly ok: true; readonly family: 'ipv4' | 'ipv6'; readonly address: string }
  | { readonly ok: false; readonly problem: string };

function readAddress(value: string): ReadAddress {
  if (isIPv4(value)) return { ok: true, family: 'ipv4', address: value };
  if (/^\d{1,3}(?:\.\d{1,3}){3}$/.test(value) && value.split('.').every((o) => Number(o) <= 255)) {
    // glibc's inet_aton, which HAProxy falls back to, reads 010 as octal (8).
    return {
      ok: false,
      problem: `${quote(value)} has a leading zero, which HAProxy may read as octal (010 is 8): write ${value
        .split('.')
        .map((o) => String(Number(o)))
        .join('.')} if that is meant`,
    };
  }
  if (isIPv6(value)) {
    if (value.includes('%')) {
      return { ok: false, problem: `${quote(value)} has a zone id (%...), which lbsync refuses` };
    }
    return { ok: true, family: 'ipv6', address: canonicalIPv6(value) };
  }
  return { ok: false, problem: `${quote(value)} is not an IPv4 or IPv6 address` };
}

function refusedWhy(family: 'ipv4' | 'ipv6', address: string): string | null {
  if (family === 'ipv4') return V4_REFUSED.find((r) => r.match.check(address, 'ipv4'))?.why ?? null;
  const hit = V6_REFUSED.find((r) => r.match.check(address, 'ipv6'));
  if (hit !== undefined) return hit.why;
  if (address !== '::1' && V4_COMPATIBLE[0]?.match.check(address, 'ipv6')) {
    return V4_COMPATIBLE[0].why;
  }
  return null;
}

/**
 * Why `value` cannot be a worker (server) address, or null when it can. A
 * worker address is a literal unicast IPv4 or IPv6 address: not unspecified,
 * multicast, reserved, link-local, IPv4-mapped, and without a zone id.
 */
export function workerAddressProblem(value: string): string | null {
  const read = readAddress(value);
  if (!read.ok) return read.problem;
  const why = refusedWhy(read.family, read.address);
  return why === null ? null : `${quote(value)} ${why}`;
}

/** Throw `InputError` unless `value` is a usable worker address; returns its canonical spelling. */
export function canonicalWorkerAddress(value: string, what: string): string {
  const read = readAddress(value);
  if (!read.ok) throw new InputError(`${what}: ${read.problem}`);
  const why = refusedWhy(read.family, read.address);
  if (why !== null) throw new InputError(`${what}: ${quote(value)} ${why}`);
  return read.address;
}

// ---------------------------------------------------------------------------
// Binds

/** A listen address in its one canonical form, for comparing binds. */
export interface CanonicalBind {
  readonly family: 'ipv4' | 'ipv6';
  /** Canonical address; `0.0.0.0` or `::` for a wildcard. */
  readonly address: string;
  /** `:80`, `*:80`, `0.0.0.0:80` (every IPv4 address) or `[::]:80` (every IPv6 and IPv4 one). */
  readonly wildcard: boolean;
  readonly port: number;
  /** One spelling per listener: `0.0.0.0:80`, `10.0.0.1:80`, `[::1]:80`. */
  readonly key: string;
}

/** Either a canonical bind or why the text is not one. */
export type ReadBind =
  | { readonly ok: true; readonly bind: CanonicalBind }
  | { readonly ok: false; readonly problem: string };

/** The shape of a bind before its parts are checked: `[address]:port`. */
export const BIND_SHAPE = /^(?:\[([^\]]*)\]|([^:[\]]*))?:([^:]*)$/;

/**
 * Read a bind (`services[].bind`, `stats.bind`) as HAProxy will: `:port` and
 * `*:port` listen on every IPv4 address, `a.b.c.d:port` on one, `[v6]:port`
 * on one IPv6 address, `[::]:port` on every IPv6 and (dual-stack, HAProxy's
 * default) every IPv4 address. IPv4 must be canonical dotted decimal; ports
 * are 1-65535 without leading zeros.
 */
export function readBind(value: string): ReadBind {
  const m = BIND_SHAPE.exec(value);
  if (m === null) {
    return {
      ok: false,
      problem: 'must be "[address]:port", for example ":80", "10.0.0.5:443" or "[::]:80"',
    };
  }
  const [, v6, v4 = '', portText = ''] = m;
  if (!/^[1-9]\d{0,4}$/.test(portText) || Number(portText) > 65535) {
    return {
      ok: false,
      problem: /^0\d+$/.test(portText)
        ? `port must be 1-65535, without leading zeros (found ${quote(portText)})`
        : `port must be 1-65535 (found ${quote(portText)})`,
    };
  }
  const port = Number(portText);
  if (v6 === undefined && (v4 === '' || v4 === '*')) {
    return { ok: true, bind: bindOf('ipv4', '0.0.0.0', port) };
  }
  const text = v6 ?? v4;
  const read = readAddress(text);
  if (!read.ok) return { ok: false, problem: `address ${read.problem}` };
  if (v6 !== undefined && read.family !== 'ipv6') {
    return { ok: false, problem: `address ${quote(text)} in brackets must be IPv6` };
  }
  if (v6 === undefined && read.family !== 'ipv4') {
    return {
      ok: false,
      problem: `IPv6 address ${quote(text)} must be in brackets: "[${text}]:${port}"`,
    };
  }
  const wildcard = read.address === '0.0.0.0' || read.address === '::';
  if (!wildcard) {
    const why = refusedWhy(read.family, read.address);
    if (why !== null) return { ok: false, problem: `address ${quote(text)} ${why}` };
  }
  return { ok: true, bind: bindOf(read.family, read.address, port) };
}

function bindOf(family: 'ipv4' | 'ipv6', address: string, port: number): CanonicalBind {
  return {
    family,
    address,
    wildcard: address === '0.0.0.0' || address === '::',
    port,
    key: family === 'ipv6' ? `[${address}]:${port}` : `${address}:${port}`,
  };
}

/** Throw `InputError` unless `value` is a valid bind; returns it canonical. */
export function canonicalBind(value: string, what: string): CanonicalBind {
  const read = readBind(value);
  if (!read.ok) throw new InputError(`${what}: ${quote(value)}: ${read.problem}`);
  return read.bind;
}

/**
 * True when one connection could be accepted by either listener. HAProxy
 * binds with SO_REUSEPORT, so the kernel lets both bind: the same listener
 * twice splits the port's connections between two frontends, and a wildcard
 * beside a specific address silently loses that address's connections (the
 * more specific socket wins). Both are refused.
 */
export function bindsOverlap(a: CanonicalBind, b: CanonicalBind): boolean {
  if (a.port !== b.port) return false;
  if (a.key === b.key) return true;
  const covers = (w: CanonicalBind, o: CanonicalBind): boolean =>
    w.wildcard && (w.family === o.family || w.family === 'ipv6');
  return covers(a, b) || covers(b, a);
}

/** How a canonical bind reads in a message: `0.0.0.0:80 (every IPv4 address)`. */
export function describeBind(b: CanonicalBind): string {
  if (!b.wildcard) return b.key;
  return `${b.key} (every ${b.family === 'ipv4' ? 'IPv4' : 'IPv6 and IPv4'} address)`;
}

// ---------------------------------------------------------------------------
// Durations

/**
 * HAProxy's timer limit: every time value (timeouts, `inter`, `hard-stop-after`)
 * must fit in a signed 32-bit count of milliseconds, ~24.8 days; one more
 * fails `haproxy -c` with "timer overflow".
 */
export const MAX_HAPROXY_TIMER_MS = 2_147_483_647;

const UNIT_MS: Readonly<Record<string, number>> = {
  ms: 1,
  s: 1000,
  m: 60_000,
  h: 3_600_000,
  d: 86_400_000,
};

/** The shape of a duration before its bounds are checked. */
export const DURATION_SHAPE = /^(\d{1,10})(ms|s|m|h|d)$/;

/**
 * Why `value` is not a duration HAProxy accepts, or null when it is: digits
 * without a leading zero, a unit (ms, s, m, h, d), from 1ms to 2147483647ms.
 * Zero is refused: HAProxy reads a zero timeout as "none" and a zero `inter` is
 * an error.
 */
export function durationProblem(value: string): string | null {
  const m = DURATION_SHAPE.exec(value);
  if (m === null) return 'must be a duration like "500ms", "30s", "5m", "1h", "2d"';
  const [, digits = '', unit = ''] = m;
  if (digits.length > 1 && digits.startsWith('0')) {
    return `must not have a leading zero (found ${quote(value)})`;
  }
  const ms = Number(digits) * (UNIT_MS[unit] ?? Number.NaN);
  if (ms < 1) return 'must be at least 1ms (HAProxy reads 0 as no timeout)';
  if (ms > MAX_HAPROXY_TIMER_MS) {
    return `must be at most 2147483647ms (~24.8 days), HAProxy's timer limit (found ${quote(value)})`;
  }
  return null;
}

/** Milliseconds of a valid duration (see `durationProblem`); null when invalid. */
export function durationMs(value: string): number | null {
  if (durationProblem(value) !== null) return null;
  const m = DURATION_SHAPE.exec(value) as RegExpExecArray;
  return Number(m[1]) * (UNIT_MS[m[2] as string] as number);
}
