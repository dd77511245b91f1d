import type { V1Service } from '@kubernetes/client-node';
import { describe, expect, it } from 'vitest';
import {
  frontendName,
  reservedFromSpec,
  type ServicesFromClusterOptions,
  servicesFromCluster,
} from '../../../adapters/kubernetes/services.js';
import type { HealthCheckDef } from '../../../core/model.js';
import { loadServices, named } from '../../helpers/kubernetes-fixtures.js';

const KUBE_PROXY: HealthCheckDef = {
  port: 10256,
  path: '/healthz',
  interval: '2s',
  rise: 2,
  fall: 2,
};
const cluster = loadServices('services.yaml');
const options: ServicesFromClusterOptions = {
  loadBalancerClass: 'lbsync.io/haproxy',
  defaultHealthCheck: KUBE_PROXY,
  reserved: reservedFromSpec({
    services: [
      { name: 'ssh-bastion', bind: ':2222', nodePort: 32222, mode: 'tcp', proxyProtocol: 'none' },
    ],
    stats: { bind: ':8404', prometheus: true },
  }),
};
const ids = (list: readonly V1Service[]) =>
  list.map((s) => `${s.metadata?.namespace}/${s.metadata?.name}`);
const HAPROXY_NAME = /^[a-z0-9]([a-z0-9-]*[a-z0-9])?$/;

/** A copy of one fixture Service with changes, for cases the fixture file does not list. */
function variant(name: string, change: (s: V1Service) => void): V1Service {
  const s = structuredClone(named(cluster, name));
  change(s);
  return s;
}

describe('servicesFromCluster on the fixture cluster', () => {
  const r = servicesFromCluster(cluster, options);

  it('makes one frontend per TCP port of every accepted Service, oldest first', () => {
    expect(r.services.map((s) => [s.name, s.bind, s.nodePort])).toEqual([
      ['default-web-80', ':80', 30080],
      ['default-web-443', ':443', 30443],
      ['shop-api-8080', ':8080', 31080],
      ['legacy-ranges-9000', ':9000', 30900],
      ['open-everyone-9002', ':9002', 30902],
    ]);
    expect(ids(r.accepted)).toEqual(['default/web', 'shop/api', 'legacy/ranges', 'open/everyone']);
  });

  it('maps a Cluster-policy Service to the spec kube-proxy check and no overrides', () => {
    expect(r.services[0]).toEqual({
      name: 'default-web-80',
      bind: ':80',
      nodePort: 30080,
      mode: 'tcp',
      proxyProtocol: 'none',
      healthCheck: KUBE_PROXY,
      origin: {
        kind: 'kubernetes',
        namespace: 'default',
        name: 'web',
        uid: named(cluster, 'default/web').metadata?.uid,
        port: 80,
      },
    });
  });

  it('maps Local policy, ClientIP affinity, source ranges and lbsync.io annotations', () => {
    expect(r.services[2]).toMatchObject({
      proxyProtocol: 'v2',
      healthCheck: { port: 32001, path: '/healthz', interval: '2s', rise: 2, fall: 2 },
      balance: 'source', // ClientIP beats the api profile's leastconn
      timeouts: { connect: '3s', client: '90s', server: '30s', tunnel: '10m' },
      sourceRanges: ['10.0.0.0/8', '192.168.0.0/16'],
    });
  });

  it('reads the legacy source-range annotation when the field is empty, and 0.0.0.0/0 allows all', () => {
    expect(r.services[3]?.sourceRanges).toEqual(['10.0.0.0/8', '172.16.0.0/12']);
    expect(r.services[4]).not.toHaveProperty('sourceRanges');
  });

  it('refuses, per Service, what it cannot serve and says why', () => {
    expect(r.refused.map((n) => [`${n.namespace}/${n.name}`, n.reason])).toEqual([
      ['dns/coredns-ext', 'UnsupportedProtocol'],
      ['team-b/web', 'PortConflict'],
      ['iot/mqtt', 'MissingNodePort'],
      ['iot/broker', 'InvalidAnnotation'],
      ['iot/broker', 'InvalidAnnotation'],
      ['bad/ranges', 'InvalidSourceRange'],
    ]);
    const msg = (ns: string, reason: string) =>
      r.refused
        .filter((n) => `${n.namespace}/${n.name}` === ns && n.reason === reason)
        .map((n) => n.message);
    expect(msg('dns/coredns-ext', 'UnsupportedProtocol')).toEqual([
      'lbsync balances TCP only; the Service is refused for 53/UDP',
    ]);
    expect(msg('team-b/web', 'PortConflict')).toEqual([
      'port 80 (bind :80) is taken by Service default/web (the older Service keeps a port)',
    ]);
    expect(msg('iot/broker', 'InvalidAnnotation')).toEqual([
      'annotation lbsync.io/proxy-protocol: "v3" is not one of none, v1, v2',
      expect.stringMatching(
        /^annotation lbsync.io\/timeout-tunnel: "30d" is not an HAProxy duration/,
      ),
    ]);
    expect(msg('bad/ranges', 'InvalidSourceRange')[0]).toContain('"10.0.0.0/33" is not a CIDR');
  });

  it('reports an unknown lbsync.io annotation without refusing the Service', () => {
    expect(r.warnings).toEqual([
      expect.objectContaining({
        namespace: 'shop',
        name: 'api',
        reason: 'UnknownAnnotation',
        message: expect.stringContaining('lbsync.io/proxy-protcol is unknown'),
      }),
    ]);
  });

  it('hands back finalizer work: cleanup for deleted or no longer owned, needFinalizer for new', () => {
    expect(ids(r.cleanup)).toEqual(['default/old-site', 'default/now-internal']);
    expect(ids(r.needFinalizer)).toEqual([
      'shop/api',
      'team-b/web',
      'iot/mqtt',
      'iot/broker',
      'legacy/ranges',
      'bad/ranges',
      'open/everyone',
    ]);
  });

  it("never touches Services of other classes, nor the upstream controller's finalizer", () => {
    const all = [...r.accepted, ...r.cleanup, ...r.needFinalizer].map((s) => s.metadata?.name);
    const noticed = [...r.refused, ...r.warnings].map((n) => n.name);
    for (const name of ['cloud-lb', 'metallb', 'nodeport-only', 'gone-unowned']) {
      expect(all).not.toContain(name);
      expect(noticed).not.toContain(name);
    }
  });

  it('gives the same answer whatever order the API lists Services in', () => {
    expect(servicesFromCluster([...cluster].reverse(), options)).toEqual(r);
  });
});

describe('servicesFromCluster binds and names', () => {
  const web = named(cluster, 'default/web');

  it('binds on kubernetes.bindAddress when set, IPv6 in brackets', () => {
    const v4 = servicesFromCluster([web], { ...options, bindAddress: '10.0.0.5' });
    expect(v4.services.map((s) => s.bind)).toEqual(['10.0.0.5:80', '10.0.0.5:443']);
    const v6 = servicesFromCluster([web], { ...options, bindAddress: 'FD00:0::5' });
    expect(v6.services.map((s) => s.bind)).toEqual(['[fd00::5]:80', '[fd00::5]:443']);
  });

  it("refuses a port the spec's static services or stats page hold, on any address", () => {
    const onStats = variant('default/web', (s) => {
      s.spec = { ...s.spec, ports: [{ port: 8404, nodePort: 30404, protocol: 'TCP' }] };
    });
    const r = servicesFromCluster([onStats], { ...options, bindAddress: '10.0.0.5' });
    expect(r.refused[0]?.message).toBe(
      "port 8404 (bind 10.0.0.5:8404) is taken by the spec's stats page",
    );
    const reserved = reservedFromSpec({
      services: [
        {
          name: 'local-only',
          bind: '127.0.0.1:80',
          nodePort: 30001,
          mode: 'tcp',
          proxyProtocol: 'none',
        },
      ],
    });
    expect(servicesFromCluster([web], { ...options, reserved }).refused[0]?.reason).toBe(
      'PortConflict',
    );
  });

  it('lets the next Service take a port that a refused older Service would have held', () => {
    const broken = variant('default/web', (s) => {
      s.metadata = { ...s.metadata, annotations: { 'lbsync.io/mode': 'HTTP' } };
    });
    const r = servicesFromCluster([broken, named(cluster, 'team-b/web')], options);
    expect(r.services.map((s) => s.name)).toEqual(['team-b-web-80']);
    expect(r.refused.map((n) => n.message)).toEqual([
      'annotation lbsync.io/mode: "HTTP" is not one of tcp, http',
    ]);
  });

  it('breaks a creationTimestamp tie by namespace/name', () => {
    const twin = variant('team-b/web', (s) => {
      s.metadata = {
        ...s.metadata,
        namespace: 'aaa',
        creationTimestamp: web.metadata?.creationTimestamp,
      };
    });
    const r = servicesFromCluster([web, twin], options);
    expect(ids(r.accepted)).toEqual(['aaa/web']);
  });

  it('keeps names HAProxy-safe, at most 63 and stable, hashing only when too long', () => {
    const long = variant('default/web', (s) => {
      s.metadata = { ...s.metadata, namespace: 'n'.repeat(63), name: `s${'x'.repeat(62)}` };
    });
    const [a, b] = [servicesFromCluster([long], options), servicesFromCluster([long], options)];
    const name = a.services[0]?.name ?? '';
    expect(name).toMatch(HAPROXY_NAME);
    expect(name.length).toBeLessThanOrEqual(63);
    expect(name).toMatch(/^n{54}-[0-9a-f]{8}$/);
    expect(b.services[0]?.name).toBe(name);
    expect(a.services[1]?.name).not.toBe(name);
  });

  it('suffixes a hash when the plain name is taken by a spec service', () => {
    const taken = new Set(['default-web-80']);
    expect(frontendName('default', 'web', 80, taken)).toMatch(/^default-web-80-[0-9a-f]{8}$/);
    expect(frontendName('default', 'web', 443, taken)).toBe('default-web-443');
  });
});

describe('servicesFromCluster health checks and annotations', () => {
  const api = named(cluster, 'shop/api');
  const web = named(cluster, 'default/web');

  it('checks healthCheckNodePort for Local even when the kube-proxy check is disabled', () => {
    const r = servicesFromCluster([api, web], { ...options, defaultHealthCheck: null });
    expect(r.services.map((s) => s.healthCheck)).toEqual([
      null,
      null,
      { port: 32001, path: '/healthz', interval: '2s', rise: 2, fall: 2 },
    ]);
  });

  it('uses the timing of the spec check for Local services', () => {
    const slow = { ...KUBE_PROXY, interval: '5s', rise: 3, fall: 4 };
    const r = servicesFromCluster([api], { ...options, defaultHealthCheck: slow });
    expect(r.services[0]?.healthCheck).toEqual({
      port: 32001,
      path: '/healthz',
      interval: '5s',
      rise: 3,
      fall: 4,
    });
  });

  it('refuses Local without a healthCheckNodePort rather than sending traffic blind', () => {
    const blind = variant('shop/api', (s) => {
      s.spec = { ...s.spec, healthCheckNodePort: undefined };
    });
    expect(servicesFromCluster([blind], options).refused[0]?.reason).toBe(
      'MissingHealthCheckNodePort',
    );
  });

  it('applies mode, profile and explicit timeouts from annotations', () => {
    const iot = variant('default/web', (s) => {
      s.metadata = {
        ...s.metadata,
        annotations: {
          'lbsync.io/mode': 'http',
          'lbsync.io/profile': 'iot',
          'lbsync.io/timeout-server': '2h',
        },
      };
    });
    expect(servicesFromCluster([iot], options).services[0]).toMatchObject({
      mode: 'http',
      balance: 'leastconn',
      timeouts: { connect: '5s', client: '1h', server: '2h', tunnel: '24h' },
    });
  });

  it('ignores annotations outside lbsync.io/', () => {
    const other = variant('default/web', (s) => {
      s.metadata = {
        ...s.metadata,
        annotations: { 'service.beta.kubernetes.io/aws-load-balancer-type': 'nlb' },
      };
    });
    const r = servicesFromCluster([other], options);
    expect(r.warnings).toEqual([]);
    expect(r.services).toHaveLength(2);
  });
});
