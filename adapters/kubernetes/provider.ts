import { z } from 'zod';
import type { ProviderDescriptor } from '../../core/provider.js';
import { kubernetesSpecSchema } from './spec.js';

/*
 * The Kubernetes provider: a top-level `kubernetes:` section (how to reach
 * the cluster, which Services are lbsync's, the node rules) that any worker
 * source and transport can be combined with, and a worker source of its own
 * for fleets known only to the cluster. Cloud-neutral: in every function
 * bundle; each cloud hands it a token provider (it imports no cloud SDK).
 */

/** `workers: { source: kubernetes }`: the cluster's Nodes (InternalIP) are the workers. */
export const kubernetesSourceSchema = z.strictObject({ source: z.literal('kubernetes') });

/** The Kubernetes provider. */
export const kubernetesProvider: ProviderDescriptor = {
  name: 'kubernetes',
  cloud: null,
  packages: ['@kubernetes/*'],
  sources: { kubernetes: kubernetesSourceSchema },
  sections: { kubernetes: kubernetesSpecSchema },
  describe: {
    kubernetes:
      'the Nodes of the cluster in the kubernetes section (InternalIP), eligibility applied',
  },
  refine: (spec, ctx) => {
    const workers = spec.workers as { readonly source?: unknown } | undefined;
    if (workers?.source === 'kubernetes' && spec.kubernetes === undefined) {
      ctx.addIssue({
        code: 'custom',
        path: ['workers', 'source'],
        message: 'the kubernetes source needs a kubernetes section saying how to reach the cluster',
      });
    }
  },
};
