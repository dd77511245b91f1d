import { isIPv4, isIPv6 } from 'node:net';
import { InputError } from '../../core/errors.js';
import { quote } from '../../core/validate.js';

/**
 * A listen address in one canonical spelling, `<addr>:<port>`: `*` for every
 * wildcard (`:80`, `*:80`, `0.0.0.0:80`, `[::]:80`), IPv6 bracketed and
 * compressed. Two binds clash when their ports match and their addresses are
 * equal or either is `*` (HAProxy would bind both with SO_REUSEPORT and split
 * traffic between them, which is worse than failing).
 */
export type BindKey = string;

const BIND = /^(?:\[([0-9a-fA-F:.]+)\]|((?:\d{1,3}\.){3}\d{1,3})|\*)?:(\d{1,5})$/;

/** The canonical key of a bind string as the spec and ServiceDef spell it. */
export function bindKey(bind: string): BindKey {
  const m = BIND.exec(bind);
  const port = Number(m?.[3]);
  if (m === null || !(port >= 1 && port <= 65535)) {
    throw new InputError(`bind ${quote(bind)} is not "[address]:port"`);
  }
  const [, v6, v4] = m;
  if (v6 !== undefined) {
    if (!isIPv6(v6))
      throw new InputError(`bind ${quote(bind)}: ${quote(v6)} is not an IPv6 address`);
    const addr = canonicalIpv6(v6);
    return addr === '::' ? `*:${port}` : `[${addr}]:${port}`;
  }
  if (v4 !== undefined) {
    if (!isIPv4(v4))
      throw new InputError(`bind ${quote(bind)}: ${quote(v4)} is not an IPv4 address`);
    return v4 === '0.0.0.0' ? `*:${port}` : `${v4}:${port}`;
  }
  return `*:${port}`;
}

/** The ServiceDef bind for a port at an optional address: `:80`, `10.0.0.5:80`, `[fd00::5]:80`. */
export function bindFor(address: string | undefined, port: number): string {
  if (address === undefined) return `:${port}`;
  return isIPv6(address) ? `[${canonicalIpv6(address)}]:${port}` : `${address}:${port}`;
}

/** Binds already taken on the LB, each with a note naming its holder for error messages. */
export class BindTable {
  private readonly byPort = new Map<string, Map<string, string>>();

  /** Record `key` as held by `holder`. */
  public add(key: BindKey, holder: string): void {
    const [addr, port] = splitKey(key);
    let addrs = this.byPort.get(port);
    if (addrs === undefined) {
      addrs = new Map();
      this.byPort.set(port, addrs);
    }
    addrs.set(addr, holder);
  }

  /** The holder of a bind that clashes with `key`, or undefined when it is free. */
  public holderOf(key: BindKey): string | undefined {
    const [addr, port] = splitKey(key);
    const addrs = this.byPort.get(port);
    if (addrs === undefined) return undefined;
    if (addr === '*') return addrs.values().next().value;
    return addrs.get(addr) ?? addrs.get('*');
  }

  /** A copy, so one caller's claims do not leak into another run. */
  public clone(): BindTable {
    const copy = new BindTable();
    for (const [port, addrs] of this.byPort) copy.byPort.set(port, new Map(addrs));
    return copy;
  }
}

function splitKey(key: BindKey): [string, string] {
  const i = key.lastIndexOf(':');
  return [key.slice(0, i), key.slice(i + 1)];
}

/** RFC 5952 compressed lowercase IPv6, as the WHATWG URL parser writes hosts. */
export function canonicalIpv6(address: string): string {
  return new URL(`http://[${address}]/`).hostname.slice(1, -1);
}

/**
 * Parse a CIDR as upstream's utilnet.ParseIPNets does (trimmed, host bits
 * masked off, so `10.1.2.3/8` becomes `10.0.0.0/8`); null when malformed.
 * Addresses are strict literals: no leading zeros, no zone ids.
 */
export function parseCidr(text: string): string | null {
  const m = /^([0-9a-fA-F:.]+)\/(\d{1,3})$/.exec(text.trim());
  if (m === null) return null;
  const [, addr = '', bits = ''] = m;
  const prefix = Number(bits);
  if (bits.length > 1 && bits.startsWith('0')) return null;
  if (isIPv4(addr) && prefix <= 32) {
    const n = addr.split('.').reduce((acc, o) => acc * 256 + Number(o), 0);
    const masked = prefix === 0 ? 0 : n - (n % 2 ** (32 - prefix));
    const octets = [24, 16, 8, 0].map((s) => Math.floor(masked / 2 ** s) % 256);
    return `${octets.join('.')}/${prefix}`;
  }
  if (isIPv6(addr) && prefix <= 128) {
    const groups = expandIpv6(canonicalIpv6(addr));
    const masked = groups.map((g, i) => {
      const keep = Math.max(0, Math.min(16, prefix - i * 16));
      return keep === 0 ? 0 : g & (0xffff << (16 - keep)) & 0xffff;
    });
    return `${canonicalIpv6(masked.map((g) => g.toString(16)).join(':'))}/${prefix}`;
  }
  return null;
}

// Input is already canonical (hex groups only; the URL parser folds an
// embedded IPv4 tail into two groups), so only `::` needs expanding.
function expandIpv6(canonical: string): number[] {
  const [head = '', tail] = canonical.split('::');
  const h = head === '' ? [] : head.split(':');
  const t = tail === undefined || tail === '' ? [] : tail.split(':');
  const zeros = tail === undefined ? [] : Array<string>(8 - h.length - t.length).fill('0');
  return [...h, ...zeros, ...t].map((g) => Number.parseInt(g, 16));
}
