import { z } from 'zod';
import { SAFE_ID } from '../../core/validate.js';

/*
 * The spec's optional top-level `kubernetes:` section, to be added to the spec
 * schema so it is validated and lands in the generated JSON Schema. It imports
 * only zod and core/validate, never the adapter: core/ is lint-banned from
 * importing adapters/, so wiring it into core/spec.ts means moving this file
 * to core/ unchanged.
 */

/** The loadBalancerClass lbsync owns unless the spec names another. */
export const DEFAULT_LOAD_BALANCER_CLASS = 'lbsync.io/haproxy';

// A label-style qualified name, as the API server validates spec.loadBalancerClass.
const QUALIFIED_NAME =
  /^(?:[a-z0-9]([-a-z0-9]*[a-z0-9])?(?:\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*\/)?[A-Za-z0-9]([-A-Za-z0-9_.]{0,61}[A-Za-z0-9])?$/;
const DNS_SUBDOMAIN = /^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$/;

const filePath = (what: string) =>
  z
    .string({ error: `${what} must be a file path` })
    .min(1, `${what} must be a file path`)
    .max(4096, `${what} is too long`)
    .regex(/^[^\p{Cc}]+$/u, `${what} must not contain control characters`);

const caData = z
  .string({ error: 'must be a base64-encoded PEM certificate' })
  .refine(
    (v) =>
      /^[A-Za-z0-9+/=\s]+$/.test(v) &&
      Buffer.from(v, 'base64').toString('latin1').includes('-----BEGIN CERTIFICATE-----'),
    'must be a base64-encoded PEM certificate (as in a kubeconfig certificate-authority-data)',
  );

const ipLiteral = z.union([z.ipv4(), z.ipv6()], { error: 'must be an IPv4 or IPv6 address' });

const eksCluster = z.strictObject({
  name: z.string().regex(/^[0-9A-Za-z][A-Za-z0-9_-]{0,99}$/, 'must be an EKS cluster name'),
  region: z
    .string()
    .regex(/^[a-z]{2}(-[a-z]+)+-\d$/, 'must be an AWS region like eu-west-1')
    .optional(),
});
const aksCluster = z.strictObject({
  resourceGroup: z.string().regex(SAFE_ID, 'must be a resource group name'),
  name: z
    .string()
    .regex(/^[a-zA-Z0-9]([-_a-zA-Z0-9]{0,61}[a-zA-Z0-9])?$/, 'must be an AKS cluster name'),
  subscriptionId: z.uuid('must be a subscription id (uuid)').optional(),
});
const gkeCluster = z.strictObject({
  name: z.string().regex(/^[a-z]([-a-z0-9]{0,38}[a-z0-9])?$/, 'must be a GKE cluster name'),
  location: z
    .string()
    .regex(
      /^[a-z]+-[a-z]+\d+(-[a-z])?$/,
      'must be a zone or region like europe-west1-b or europe-west1',
    ),
  project: z
    .string()
    .regex(/^[a-z][a-z0-9-]{4,28}[a-z0-9]$/, 'must be a GCP project id')
    .optional(),
});
const managedCluster = z.union(
  [
    z.strictObject({ eks: eksCluster }),
    z.strictObject({ aks: aksCluster }),
    z.strictObject({ gke: gkeCluster }),
  ],
  { error: 'must be exactly one of { eks: {...} }, { aks: {...} } or { gke: {...} }' },
);

const ingressEntry = z.union(
  [
    z.strictObject({ ip: ipLiteral }),
    z.strictObject({
      hostname: z
        .string()
        .max(253)
        .regex(DNS_SUBDOMAIN, 'must be a lowercase DNS name like lb.example.com'),
    }),
  ],
  { error: 'must be { ip: <address> } or { hostname: <dns name> }' },
);

/** The `kubernetes:` section of the spec. */
export const kubernetesSpecSchema = z
  .strictObject({
    /** API server URL, with `caData` or `caFile` (the function's own cluster, given explicitly). */
    endpoint: z
      .url({ protocol: /^https$/, error: 'must be an https URL' })
      .refine((u) => new URL(u).username === '' && new URL(u).password === '', {
        message: 'must not carry credentials',
      })
      .optional(),
    caData: caData.optional(),
    caFile: filePath('caFile').optional(),
    /** Bearer token file for `endpoint` (local runs; the functions mint their own tokens). */
    tokenFile: filePath('tokenFile').optional(),
    /** A kubeconfig file, as kubectl reads it (CLI and local runs). */
    kubeconfig: filePath('kubeconfig').optional(),
    context: z
      .string()
      .min(1, 'must be a kubeconfig context name')
      .max(253)
      .regex(/^[^\p{Cc}]+$/u, 'must not contain control characters')
      .optional(),
    /** A managed cluster found by name through its cloud's API (endpoint and CA come from there). */
    cluster: managedCluster.optional(),
    loadBalancerClass: z
      .string({ error: 'must be a string' })
      .max(253)
      .regex(QUALIFIED_NAME, 'must be a label-style name like lbsync.io/haproxy')
      .default(DEFAULT_LOAD_BALANCER_CLASS),
    discoverServices: z.boolean({ error: 'must be true or false' }).default(true),
    bindAddress: ipLiteral.optional(),
    nodeEligibility: z.boolean({ error: 'must be true or false' }).default(true),
    ignoreExcludeLabel: z.boolean({ error: 'must be true or false' }).default(false),
    ingress: z.array(ingressEntry).min(1, 'list at least one address').max(32).optional(),
  })
  .superRefine((k, ctx) => {
    const ways = [
      k.endpoint !== undefined ? 'endpoint' : undefined,
      k.kubeconfig !== undefined ? 'kubeconfig' : undefined,
      k.cluster !== undefined ? 'cluster' : undefined,
    ].filter((w) => w !== undefined);
    if (ways.length !== 1) {
      ctx.addIssue({
        code: 'custom',
        path: [],
        message:
          ways.length === 0
            ? 'set one of endpoint (+ caData or caFile), kubeconfig, or cluster'
            : `set only one of endpoint, kubeconfig, cluster (got ${ways.join(', ')})`,
      });
    }
    const onlyWith = (field: keyof typeof k, owner: 'endpoint' | 'kubeconfig'): void => {
      if (k[field] !== undefined && k[owner] === undefined) {
        ctx.addIssue({ code: 'custom', path: [field], message: `only allowed with ${owner}` });
      }
    };
    onlyWith('caData', 'endpoint');
    onlyWith('caFile', 'endpoint');
    onlyWith('tokenFile', 'endpoint');
    onlyWith('context', 'kubeconfig');
    if (k.endpoint !== undefined && (k.caData === undefined) === (k.caFile === undefined)) {
      ctx.addIssue({
        code: 'custom',
        path: ['endpoint'],
        message: 'set exactly one of caData or caFile with endpoint',
      });
    }
    if (k.ignoreExcludeLabel && !k.nodeEligibility) {
      ctx.addIssue({
        code: 'custom',
        path: ['ignoreExcludeLabel'],
        message: 'has no effect when nodeEligibility is false',
      });
    }
  });

/** A validated `kubernetes:` section with defaults applied. */
export type KubernetesSpec = z.output<typeof kubernetesSpecSchema>;
/** The managed cluster reference (`kubernetes.cluster`). */
export type ManagedClusterSpec = NonNullable<KubernetesSpec['cluster']>;
/** One entry of `kubernetes.ingress`. */
export type IngressSpec = NonNullable<KubernetesSpec['ingress']>[number];
