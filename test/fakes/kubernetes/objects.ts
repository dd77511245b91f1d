import { rfc3339 } from './handlers.js';
import type { KubeObject } from './store.js';

/*
 * Builders for the objects tests seed: a Node as a kubelet registers it
 * (labels, providerID, addresses, the usual conditions) and a Service as a
 * user writes it. The fake fills in what the apiserver would (uid,
 * resourceVersion, clusterIP, nodePorts) when they are added.
 */

/** A taint on a node. */
export interface Taint {
  readonly key: string;
  readonly value?: string;
  readonly effect: 'NoSchedule' | 'PreferNoSchedule' | 'NoExecute';
  readonly timeAdded?: string;
}

/** What a test says about a node; the rest is filled in like a kubelet would. */
export interface NodeInit {
  readonly name: string;
  readonly providerID?: string;
  readonly internalIP?: string;
  readonly hostname?: string;
  readonly zone?: string;
  readonly labels?: Readonly<Record<string, string>>;
  readonly taints?: readonly Taint[];
  /** Ready condition: true, false, or 'Unknown' (node lost). Default true. */
  readonly ready?: boolean | 'Unknown';
  readonly unschedulable?: boolean;
}

/** A service port as a user writes it. */
export interface ServicePortInit {
  readonly name?: string;
  readonly protocol?: 'TCP' | 'UDP' | 'SCTP';
  readonly port: number;
  readonly targetPort?: number | string;
  readonly nodePort?: number;
}

/** What a test says about a Service. */
export interface ServiceInit {
  readonly name: string;
  readonly namespace?: string;
  readonly type?: 'ClusterIP' | 'NodePort' | 'LoadBalancer';
  readonly loadBalancerClass?: string;
  readonly ports: readonly ServicePortInit[];
  readonly externalTrafficPolicy?: 'Cluster' | 'Local';
  readonly healthCheckNodePort?: number;
  readonly sessionAffinity?: 'None' | 'ClientIP';
  readonly loadBalancerSourceRanges?: readonly string[];
  readonly annotations?: Readonly<Record<string, string>>;
  readonly labels?: Readonly<Record<string, string>>;
  readonly finalizers?: readonly string[];
  readonly selector?: Readonly<Record<string, string>>;
  readonly ingress?: readonly { ip?: string; hostname?: string; ipMode?: 'VIP' | 'Proxy' }[];
}

function condition(
  type: string,
  status: string,
  reason: string,
  message: string,
): Record<string, string> {
  const now = rfc3339();
  return { type, status, lastHeartbeatTime: now, lastTransitionTime: now, reason, message };
}

/** The Ready condition for `ready`. */
export function readyCondition(ready: boolean | 'Unknown'): Record<string, string> {
  if (ready === 'Unknown')
    return condition(
      'Ready',
      'Unknown',
      'NodeStatusUnknown',
      'Kubelet stopped posting node status.',
    );
  return ready
    ? condition('Ready', 'True', 'KubeletReady', 'kubelet is posting ready status')
    : condition('Ready', 'False', 'KubeletNotReady', 'container runtime network not ready');
}

/** A Node object as the kubelet would register it. */
export function nodeObject(n: NodeInit): KubeObject {
  const hostname = n.hostname ?? n.name;
  return {
    metadata: {
      name: n.name,
      labels: {
        'kubernetes.io/arch': 'amd64',
        'kubernetes.io/os': 'linux',
        'kubernetes.io/hostname': hostname,
        ...(n.zone === undefined ? {} : { 'topology.kubernetes.io/zone': n.zone }),
        ...n.labels,
      },
      annotations: { 'node.alpha.kubernetes.io/ttl': '0' },
    } as unknown as KubeObject['metadata'],
    spec: {
      ...(n.providerID === undefined ? {} : { providerID: n.providerID }),
      ...(n.taints === undefined || n.taints.length === 0
        ? {}
        : { taints: n.taints.map((t) => ({ ...t })) }),
      ...(n.unschedulable === true ? { unschedulable: true } : {}),
    },
    status: {
      addresses: [
        ...(n.internalIP === undefined ? [] : [{ type: 'InternalIP', address: n.internalIP }]),
        { type: 'Hostname', address: hostname },
      ],
      conditions: [
        condition(
          'MemoryPressure',
          'False',
          'KubeletHasSufficientMemory',
          'kubelet has sufficient memory available',
        ),
        condition(
          'DiskPressure',
          'False',
          'KubeletHasNoDiskPressure',
          'kubelet has no disk pressure',
        ),
        condition(
          'PIDPressure',
          'False',
          'KubeletHasSufficientPID',
          'kubelet has sufficient PID available',
        ),
        readyCondition(n.ready ?? true),
      ],
      capacity: { cpu: '2', memory: '8025892Ki', pods: '110' },
      allocatable: { cpu: '1930m', memory: '7111460Ki', pods: '110' },
      nodeInfo: {
        architecture: 'amd64',
        operatingSystem: 'linux',
        osImage: 'Debian GNU/Linux 12 (bookworm)',
        kernelVersion: '6.1.0-28-cloud-amd64',
        containerRuntimeVersion: 'containerd://1.7.24',
        kubeletVersion: 'v1.32.4',
        kubeProxyVersion: 'v1.32.4',
      },
    },
  };
}

/** A Service object as a user writes it (type LoadBalancer unless told). */
export function serviceObject(s: ServiceInit): KubeObject {
  return {
    metadata: {
      name: s.name,
      namespace: s.namespace ?? 'default',
      ...(s.labels === undefined ? {} : { labels: { ...s.labels } }),
      ...(s.annotations === undefined ? {} : { annotations: { ...s.annotations } }),
      ...(s.finalizers === undefined ? {} : { finalizers: [...s.finalizers] }),
    } as unknown as KubeObject['metadata'],
    spec: {
      type: s.type ?? 'LoadBalancer',
      ...(s.loadBalancerClass === undefined ? {} : { loadBalancerClass: s.loadBalancerClass }),
      selector: { ...(s.selector ?? { app: s.name }) },
      ports: s.ports.map((p) => ({ ...p })),
      ...(s.externalTrafficPolicy === undefined
        ? {}
        : { externalTrafficPolicy: s.externalTrafficPolicy }),
      ...(s.healthCheckNodePort === undefined
        ? {}
        : { healthCheckNodePort: s.healthCheckNodePort }),
      ...(s.sessionAffinity === undefined ? {} : { sessionAffinity: s.sessionAffinity }),
      ...(s.loadBalancerSourceRanges === undefined
        ? {}
        : { loadBalancerSourceRanges: [...s.loadBalancerSourceRanges] }),
    },
    status: {
      loadBalancer: s.ingress === undefined ? {} : { ingress: s.ingress.map((i) => ({ ...i })) },
    },
  };
}
