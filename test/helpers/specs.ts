/**
 * The smallest valid spec input: no workers, one LB on this machine, one
 * service, no runtime socket. Tests spread it and change the one field they
 * are about (`{ ...EDGE_SPEC, services: [...] }`).
 */
export const EDGE_SPEC = {
  name: 'edge',
  cloud: 'local',
  workers: { local: { static: [] } },
  loadBalancers: {
    local: [{ name: 'lb', configPath: '/etc/haproxy/haproxy.cfg', stateDir: '/var/lib/lbsync' }],
  },
  services: [{ name: 'http', bind: ':80', nodePort: 30080 }],
  runtimeSocket: null,
} as const;
