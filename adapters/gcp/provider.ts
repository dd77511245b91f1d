import { z } from 'zod';
import { type ProviderDescriptor, sourceSection, transportSection } from '../../core/provider.js';
import { specFields } from '../../core/spec.js';

/*
 * The GCP provider's spec sections and event constants. No SDK here: every
 * function bundle reads this; adapters/gcp/factory.ts builds the adapters.
 */

const { dnsName } = specFields;

const project = z.string().regex(/^[a-z][a-z0-9-]{4,28}[a-z0-9]$/, 'must be a GCP project id');
const zone = z.string().regex(/^[a-z]+-[a-z]+\d+-[a-z]$/, 'must be a zone like europe-west1-b');

const group = z
  .strictObject({
    name: dnsName,
    zone: zone.optional(),
    region: z
      .string()
      .regex(/^[a-z]+-[a-z]+\d+$/, 'must be a region like europe-west1')
      .optional(),
  })
  .refine((g) => (g.zone === undefined) !== (g.region === undefined), {
    message: 'set exactly one of zone (zonal MIG) or region (regional MIG)',
  });

/** `workers: { source: gcp-mig, project, groups }`: instances of Managed Instance Groups. */
export const migSourceSchema = z.strictObject({
  source: z.literal('gcp-mig'),
  project,
  groups: z.array(group).min(1, 'name at least one managed instance group').max(50),
});

/** `loadBalancers: { transport: gcp-metadata, instances }`: instance metadata read by the LB agent. */
export const metadataTransportSchema = z.strictObject({
  transport: z.literal('gcp-metadata'),
  /** Project of the LB instances; default: the gcp-mig source's (required with any other source). */
  project: project.optional(),
  instances: z
    .array(z.strictObject({ name: dnsName, zone }))
    .min(1, 'name at least one LB instance')
    .max(50),
});

/** The gcp-mig source section. */
export type MigSourceSpec = z.output<typeof migSourceSchema>;
/** The gcp-metadata transport section. */
export type MetadataTransportSpec = z.output<typeof metadataTransportSchema>;

/** The Eventarc event type of Cloud Audit Log entries. */
export const GCP_AUDIT_LOG_EVENT = 'google.cloud.audit.log.v1.written';

/** Audit-log methods that can change MIG membership; event.ts acts on each, the stack subscribes to each. */
export const GCP_AUDIT_METHODS: readonly string[] = [
  'v1.compute.instances.insert',
  'v1.compute.instances.delete',
  'v1.compute.instanceGroupManagers.resize',
  'v1.compute.instanceGroupManagers.deleteInstances',
  'v1.compute.regionInstanceGroupManagers.resize',
  'v1.compute.regionInstanceGroupManagers.deleteInstances',
  'v1.compute.instanceGroupManagers.recreateInstances',
  'v1.compute.regionInstanceGroupManagers.recreateInstances',
];

/** The GCP provider. */
export const gcpProvider: ProviderDescriptor = {
  name: 'gcp',
  cloud: 'gcp',
  sources: { 'gcp-mig': migSourceSchema },
  transports: { 'gcp-metadata': metadataTransportSchema },
  packages: ['@google-cloud/*', 'google-auth-library'],
  describe: {
    'gcp-mig': 'instances of zonal and regional Managed Instance Groups (Compute API)',
    'gcp-metadata':
      'instance metadata on the LB VMs, applied by the lbsync agent, results in guest attributes',
  },
  // The metadata transport needs the LB instances' project; only gcp-mig gives a default.
  refine: (spec, ctx) => {
    const lb = spec.loadBalancers as { transport?: unknown; project?: unknown } | undefined;
    const workers = spec.workers as { source?: unknown } | undefined;
    if (
      lb?.transport === 'gcp-metadata' &&
      lb.project === undefined &&
      workers?.source !== 'gcp-mig'
    ) {
      ctx.addIssue({
        code: 'custom',
        path: ['loadBalancers', 'project'],
        message: 'required when workers.source is not gcp-mig',
      });
    }
  },
  legacy: {
    key: 'gcp',
    workers: (old) => ({ source: 'gcp-mig', ...(old as object) }),
    loadBalancers: (old) => ({ transport: 'gcp-metadata', ...(old as object) }),
  },
};

/** The spec's gcp-mig workers section, or undefined when the workers come from elsewhere. */
export const migSection = (spec: {
  readonly workers: { readonly source: string };
}): MigSourceSpec | undefined => sourceSection<MigSourceSpec>(spec, 'gcp-mig');

/** The spec's gcp-metadata section, or undefined when the LBs are reached otherwise. */
export const metadataSection = (spec: {
  readonly loadBalancers: { readonly transport: string };
}): MetadataTransportSpec | undefined =>
  transportSection<MetadataTransportSpec>(spec, 'gcp-metadata');
