import type { ProfileName, TuningSpec } from './spec.js';

/** Resolved tuning: every knob the template reads, after profile + overrides. */
export interface Tuning {
  readonly maxconn: number;
  readonly balance: 'roundrobin' | 'leastconn' | 'source' | 'first';
  readonly timeouts: {
    readonly connect: string;
    readonly client: string;
    readonly server: string;
    readonly tunnel: string;
    readonly httpKeepAlive: string;
    readonly clientFin: string;
  };
  readonly tcpKeepAlive: boolean;
  readonly httpKeepAlive: boolean;
  /**
   * Connection retries, each on another worker (`option redispatch 1`), so a
   * dead worker costs a client a retry instead of an error in the seconds
   * before its health check marks it down.
   */
  readonly retries: number;
  readonly serverMaxconn?: number;
}

/**
 * Tuning presets. `web`: browsers behind an ingress, short requests, keep-alive.
 * `api`: many short calls with uneven cost, so least-connections and tighter
 * timeouts. `iot`: huge numbers of long-lived, mostly idle device connections,
 * so high maxconn, hour-long timeouts and TCP keep-alive to spot dead peers.
 * Every profile redispatches failed connections to another worker: `web` and
 * `api` retry twice (short requests; fail fast after three workers), `iot`
 * three times (a device's reconnect costs more than a retry).
 */
export const PROFILES: Readonly<Record<ProfileName, Tuning>> = {
  web: {
    maxconn: 50_000,
    balance: 'roundrobin',
    timeouts: {
      connect: '5s',
      client: '60s',
      server: '60s',
      tunnel: '1h',
      httpKeepAlive: '10s',
      clientFin: '30s',
    },
    tcpKeepAlive: true,
    httpKeepAlive: true,
    retries: 2,
  },
  api: {
    maxconn: 100_000,
    balance: 'leastconn',
    timeouts: {
      connect: '3s',
      client: '30s',
      server: '30s',
      tunnel: '10m',
      httpKeepAlive: '30s',
      clientFin: '10s',
    },
    tcpKeepAlive: true,
    httpKeepAlive: true,
    retries: 2,
  },
  iot: {
    maxconn: 500_000,
    balance: 'leastconn',
    timeouts: {
      connect: '5s',
      client: '1h',
      server: '1h',
      tunnel: '24h',
      httpKeepAlive: '60s',
      clientFin: '30s',
    },
    tcpKeepAlive: true,
    httpKeepAlive: false,
    retries: 3,
  },
};

/** The profile's tuning with the spec's per-field overrides applied. */
export function resolveTuning(profile: ProfileName, overrides: TuningSpec): Tuning {
  const base = PROFILES[profile];
  return {
    maxconn: overrides.maxconn ?? base.maxconn,
    balance: overrides.balance ?? base.balance,
    timeouts: { ...base.timeouts, ...stripUndefined(overrides.timeouts ?? {}) },
    tcpKeepAlive: overrides.tcpKeepAlive ?? base.tcpKeepAlive,
    httpKeepAlive: overrides.httpKeepAlive ?? base.httpKeepAlive,
    retries: overrides.retries ?? base.retries,
    ...(overrides.serverMaxconn !== undefined ? { serverMaxconn: overrides.serverMaxconn } : {}),
  };
}

function stripUndefined<T extends object>(o: T): Partial<T> {
  return Object.fromEntries(Object.entries(o).filter(([, v]) => v !== undefined)) as Partial<T>;
}
