import { z } from 'zod';
import { type ProviderDescriptor, sourceSection, transportSection } from '../../core/provider.js';
import { specFields } from '../../core/spec.js';

/*
 * The AWS provider's spec sections and event constants. No SDK here: every
 * function bundle reads this to validate specs; adapters/aws/factory.ts builds
 * the adapters and carries the SDK clients.
 */

const { safeId, tagMap } = specFields;

const region = z.string().regex(/^[a-z]{2}(-[a-z]+)+-\d$/, 'must be an AWS region like eu-west-1');

/** `workers: { source: aws-asg, region, autoScalingGroups }`: members of Auto Scaling groups. */
export const asgSourceSchema = z.strictObject({
  source: z.literal('aws-asg'),
  region,
  autoScalingGroups: z
    .array(safeId('Auto Scaling group name'))
    .min(1, 'name at least one Auto Scaling group')
    .max(50, 'at most 50 groups'),
});

/** `loadBalancers: { transport: ssm, ... }`: LB instances reached with SSM Run Command. */
export const ssmTransportSchema = z
  .strictObject({
    transport: z.literal('ssm'),
    /** Region of the LB instances; default: the aws-asg source's region, else AWS_REGION. */
    region: region.optional(),
    instanceIds: z
      .array(
        z.string().regex(/^i-[0-9a-f]{8,17}$/, 'must be an EC2 instance id like i-0abc12345678'),
      )
      .max(50, 'at most 50 instance ids')
      .optional(),
    tags: tagMap.optional(),
    /**
     * Where payloads too large for one SendCommand go (S3, fetched by the LB
     * through a short-lived presigned URL). Without it, an oversized payload is an error.
     */
    staging: z
      .strictObject({
        bucket: z.string().regex(/^[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]$/, 'must be an S3 bucket name'),
        prefix: z
          .string()
          .regex(/^[A-Za-z0-9._/-]{0,200}$/, 'must be letters, digits, . _ / -')
          .default('lbsync/'),
        urlExpiresSeconds: z.number().int().min(60).max(3600).default(300),
      })
      .optional(),
    /** Seconds to wait for one Run Command to finish on an LB. */
    commandTimeoutSeconds: z.number().int().min(10).max(900).default(120),
    /** EventBridge bus for the AWS function's per-run summary event; null sends none. */
    reportBus: z
      .string()
      .regex(/^[A-Za-z0-9._/:-]{1,1600}$/, 'must be an event bus name or ARN')
      .nullable()
      .default('default'),
  })
  .refine((lb) => (lb.instanceIds?.length ?? 0) > 0 || Object.keys(lb.tags ?? {}).length > 0, {
    message: 'name LB instances by instanceIds or tags',
  });

/** The aws-asg source section. */
export type AsgSourceSpec = z.output<typeof asgSourceSchema>;
/** The ssm transport section. */
export type SsmTransportSpec = z.output<typeof ssmTransportSchema>;

/** The Auto Scaling detail-types the AWS function acts on (events.ts; the stack's rule matches them). */
export const AWS_DETAIL_TYPES: readonly string[] = [
  'EC2 Instance Launch Successful',
  'EC2 Instance Launch Unsuccessful',
  'EC2 Instance Terminate Successful',
  'EC2 Instance Terminate Unsuccessful',
  'EC2 Instance-launch Lifecycle Action',
  'EC2 Instance-terminate Lifecycle Action',
];

/** The AWS provider. */
export const awsProvider: ProviderDescriptor = {
  name: 'aws',
  cloud: 'aws',
  sources: { 'aws-asg': asgSourceSchema },
  transports: { ssm: ssmTransportSchema },
  packages: ['@aws-sdk/*', '@smithy/*'],
  describe: {
    'aws-asg':
      'instances of EC2 Auto Scaling groups (DescribeAutoScalingGroups + DescribeInstances)',
    ssm: 'SSM Run Command (AWS-RunShellScript) on the LB instances; large payloads staged in S3',
  },
  legacy: {
    key: 'aws',
    workers: (old) => ({ source: 'aws-asg', ...(old as object) }),
    loadBalancers: (old) => ({ transport: 'ssm', ...(old as object) }),
  },
};

/** The spec's aws-asg workers section, or undefined when the workers come from elsewhere. */
export const asgSection = (spec: {
  readonly workers: { readonly source: string };
}): AsgSourceSpec | undefined => sourceSection<AsgSourceSpec>(spec, 'aws-asg');

/** The spec's ssm section, or undefined when the LBs are reached otherwise. */
export const ssmSection = (spec: {
  readonly loadBalancers: { readonly transport: string };
}): SsmTransportSpec | undefined => transportSection<SsmTransportSpec>(spec, 'ssm');
