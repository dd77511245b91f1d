import { AutoScalingClient } from '@aws-sdk/client-auto-scaling';
import { EC2Client } from '@aws-sdk/client-ec2';
import { EventBridgeClient } from '@aws-sdk/client-eventbridge';
import { S3Client } from '@aws-sdk/client-s3';
import { SSMClient } from '@aws-sdk/client-ssm';

/** The SDK clients the AWS path uses, built once per cold start. */
export interface AwsClients {
  readonly autoScaling: AutoScalingClient;
  readonly ec2: EC2Client;
  readonly ssm: SSMClient;
  readonly eventBridge: EventBridgeClient;
  readonly s3: S3Client;
}

/**
 * Settings layered over the SDK's own configuration. Everything left out
 * comes from the standard chain (credentials, `AWS_ENDPOINT_URL`,
 * `AWS_ENDPOINT_URL_SSM`, `AWS_MAX_ATTEMPTS`, …), so the same code runs in
 * Lambda, on a laptop and against a local fake.
 */
export interface AwsClientOptions {
  readonly region: string;
  /** One endpoint for every service (tests); normally unset. */
  readonly endpoint?: string;
  readonly credentials?: { readonly accessKeyId: string; readonly secretAccessKey: string };
  readonly maxAttempts?: number;
}

/** Build the clients for a region. */
export function createAwsClients(
  options: AwsClientOptions,
  env: NodeJS.ProcessEnv = process.env,
): AwsClients {
  const base = {
    region: options.region,
    ...(options.endpoint !== undefined ? { endpoint: options.endpoint } : {}),
    ...(options.credentials !== undefined ? { credentials: { ...options.credentials } } : {}),
    ...(options.maxAttempts !== undefined ? { maxAttempts: options.maxAttempts } : {}),
  };
  // A custom S3 endpoint (MinIO, a local fake) rarely has per-bucket DNS
  // names, so address buckets by path there; real S3 keeps virtual hosts.
  const customS3 =
    options.endpoint !== undefined ||
    (env.AWS_ENDPOINT_URL_S3 ?? env.AWS_ENDPOINT_URL ?? '') !== '';
  return {
    autoScaling: new AutoScalingClient(base),
    ec2: new EC2Client(base),
    ssm: new SSMClient(base),
    eventBridge: new EventBridgeClient(base),
    s3: new S3Client({ ...base, forcePathStyle: customS3 }),
  };
}

/** Close the clients' sockets (CLI and tests; Lambda keeps them warm). */
export function destroyAwsClients(clients: AwsClients): void {
  clients.autoScaling.destroy();
  clients.ec2.destroy();
  clients.ssm.destroy();
  clients.eventBridge.destroy();
  clients.s3.destroy();
}
