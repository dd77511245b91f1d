import type * as GcpNamespace from '@pulumi/gcp';
import {
  GCP_AUDIT_LOG_EVENT,
  GCP_AUDIT_METHODS,
  metadataSection,
  migSection,
} from '../adapters/gcp/provider.js';
import type { Spec } from '../adapters/spec.js';
import { type GcpKubernetesOptions, gcpKubernetes } from './gcp-kubernetes.js';
import {
  assertDeployable,
  assertPackage,
  directoryDigest,
  functionEnvironment,
  type PulumiNs,
  StackConfigError,
  type StackResource,
  type StackResult,
} from './shared.js';

/*
 * GCP: Cloud Functions (2nd gen, Node 22) from one source archive:
 *   <name>-event   CloudEvent entry `lbsyncGcpEvent`: Eventarc Cloud Audit Log
 *                  events from Compute Engine (instance insert/delete, MIG
 *                  resize/delete); internal ingress only; only when the
 *                  workers come from gcp-mig
 *   <name>-resync  HTTP entry `lbsyncGcpResync`: Cloud Scheduler, manual
 *                  resync and the cluster watcher; no public invoker, callers
 *                  need roles/run.invoker
 * A function service account with custom roles: pushing (metadata, guest
 * attributes) granted on each LB instance alone, waiting for the metadata
 * operations in the LB project, and, for gcp-mig, reading the MIGs on the
 * worker project. A separate trigger account delivers events and schedules.
 * Any other deployable source (static, kubernetes) gets no event function,
 * no Eventarc triggers and no MIG reads: its changes arrive by the
 * schedule, a manual resync or the cluster watcher.
 *
 * A 2nd gen function's own trigger takes one methodName, so the event
 * function carries the first and standalone Eventarc triggers deliver the
 * others to the same Cloud Run service.
 */

/** The `@pulumi/gcp` namespace (SST's global `gcp`). */
export type GcpNs = typeof GcpNamespace;

/** Entry points registered by functions/gcp.ts with the Functions Framework. */
export const GCP_ENTRY_POINTS = { event: 'lbsyncGcpEvent', http: 'lbsyncGcpResync' } as const;

/** The Eventarc event type and audit-log methods, from the provider (one list for both). */
export { GCP_AUDIT_LOG_EVENT, GCP_AUDIT_METHODS };

/** Permissions read on the worker project (listManagedInstances, instances.list). */
export const GCP_READER_PERMISSIONS: readonly string[] = [
  'compute.instanceGroupManagers.get',
  'compute.instances.list',
  // zoneOperations.wait after setMetadata; operations are project-level.
  'compute.zoneOperations.get',
];

/** Waiting for setMetadata's operations, on the LB project when the reader role is not there. */
export const GCP_OPERATION_PERMISSIONS: readonly string[] = ['compute.zoneOperations.get'];

/** Permissions granted on each LB instance only. */
export const GCP_PUSHER_PERMISSIONS: readonly string[] = [
  'compute.instances.get',
  'compute.instances.setMetadata',
  'compute.instances.getGuestAttributes',
];

/** APIs the deployment needs enabled on the project (Eventarc only for gcp-mig). */
export const GCP_SERVICES: readonly string[] = [
  'cloudfunctions.googleapis.com',
  'run.googleapis.com',
  'cloudbuild.googleapis.com',
  'artifactregistry.googleapis.com',
  'eventarc.googleapis.com',
  'cloudscheduler.googleapis.com',
  'compute.googleapis.com',
];

/** Deployment choices outside the spec. */
export interface GcpStackOptions {
  /**
   * Region of the functions and the scheduler; default the first group's
   * region (gcp-mig), else the first LB instance's.
   */
  readonly region?: string;
  /** Cloud Scheduler cron for the periodic resync; default every 5 minutes. */
  readonly schedule?: string;
  /**
   * The LB VMs' service account: setMetadata on a VM that runs as a service
   * account needs `iam.serviceAccounts.actAs` on it, granted here on that
   * account only. Leave unset for LB VMs without one.
   */
  readonly lbServiceAccountEmail?: string;
  /** Enable the APIs in {@link GCP_SERVICES}; default true (never disabled on removal). */
  readonly enableServices?: boolean;
  /**
   * Serverless VPC Access connector (`projects/<p>/locations/<r>/connectors/<name>`)
   * for both functions, e.g. to reach a private GKE control plane; only
   * private ranges go through it.
   */
  readonly vpcConnector?: string;
  /** GKE access and the cluster watcher (stacks/gcp-kubernetes.ts). */
  readonly kubernetes?: GcpKubernetesOptions;
}

/** Arguments of {@link gcpStack}. */
export interface GcpStackArgs {
  readonly pulumi: PulumiNs;
  readonly gcp: GcpNs;
  readonly spec: Spec;
  /** dist/package/gcp from `npm run build`. */
  readonly packageDir: string;
  readonly options?: GcpStackOptions;
}

/** The region the spec's first group lives in, else the first LB instance's. */
export function defaultGcpRegion(spec: Spec): string {
  const g = migSection(spec)?.groups[0];
  if (g !== undefined) return g.region ?? (g.zone ?? '').replace(/-[a-z]$/, '');
  const lb = metadataSection(spec)?.instances[0];
  if (lb === undefined) throw new StackConfigError('loadBalancers.instances: required');
  return lb.zone.replace(/-[a-z]$/, '');
}

/** Deploy lbsync's GCP path for a validated spec. */
export function gcpStack(args: GcpStackArgs): StackResult {
  const { pulumi, gcp, spec, packageDir } = args;
  const o = args.options ?? {};
  assertDeployable(spec, 'gcp');
  assertPackage(packageDir, 'gcp');
  const lb = metadataSection(spec);
  if (lb === undefined) {
    throw new StackConfigError(
      'loadBalancers.transport: the gcp stack reaches the LBs with gcp-metadata',
    );
  }
  // The event wiring (event function, Eventarc, MIG reads) only for gcp-mig.
  const workers = migSection(spec);
  const project = workers?.project ?? lb.project;
  if (project === undefined) {
    // The spec refuses this already; a spec object built by hand may not.
    throw new StackConfigError(
      `loadBalancers.project: required when workers.source is ${spec.workers.source}, not gcp-mig`,
    );
  }
  const lbProject = lb.project ?? project;
  const region = o.region ?? defaultGcpRegion(spec);
  const name = `lbsync-${spec.name}`;
  if (name.length > 49) {
    // Function (Cloud Run service) names stop at 63 characters, with suffixes.
    throw new StackConfigError('name: at most 42 characters for a GCP deployment');
  }
  const roleSuffix = spec.name.replace(/-/g, '_');
  const resources: StackResource[] = [];
  const keep = <T extends StackResource>(r: T): T => {
    resources.push(r);
    return r;
  };

  const services =
    o.enableServices === false
      ? []
      : GCP_SERVICES.filter(
          (service) => workers !== undefined || service !== 'eventarc.googleapis.com',
        ).map((service) =>
          keep(
            new gcp.projects.Service(`${name}-api-${service.split('.')[0]}`, {
              project,
              service,
              disableOnDestroy: false,
            }),
          ),
        );

  const fnAccount = keep(
    new gcp.serviceaccount.Account(`${name}-fn-sa`, {
      project,
      accountId: `lbsync-fn-${spec.name}`.slice(0, 30).replace(/-$/, ''),
      displayName: `lbsync ${spec.name} function`,
    }),
  );
  const triggerAccount = keep(
    new gcp.serviceaccount.Account(`${name}-trigger-sa`, {
      project,
      accountId: `lbsync-tr-${spec.name}`.slice(0, 30).replace(/-$/, ''),
      displayName: `lbsync ${spec.name} ${workers !== undefined ? 'Eventarc and Scheduler' : 'Scheduler'}`,
    }),
  );
  const fnMember = pulumi.interpolate`serviceAccount:${fnAccount.email}`;
  const triggerMember = pulumi.interpolate`serviceAccount:${triggerAccount.email}`;

  if (workers !== undefined) {
    const reader = keep(
      new gcp.projects.IAMCustomRole(`${name}-reader`, {
        project,
        roleId: `lbsyncReader_${roleSuffix}`,
        title: `lbsync ${spec.name} reader`,
        description: 'List MIG members and their IPs; wait for metadata operations',
        permissions: [...GCP_READER_PERMISSIONS],
      }),
    );
    keep(
      new gcp.projects.IAMMember(`${name}-reader-binding`, {
        project,
        role: reader.name,
        member: fnMember,
      }),
    );
  }
  if (workers === undefined || lbProject !== project) {
    // setMetadata operations live in the LB project; without MIGs no reader role covers them.
    const ops = keep(
      new gcp.projects.IAMCustomRole(`${name}-lb-operations`, {
        project: lbProject,
        roleId: `lbsyncOperations_${roleSuffix}`,
        title: `lbsync ${spec.name} operations`,
        permissions: [...GCP_OPERATION_PERMISSIONS],
      }),
    );
    keep(
      new gcp.projects.IAMMember(`${name}-lb-operations-binding`, {
        project: lbProject,
        role: ops.name,
        member: fnMember,
      }),
    );
  }
  const pusher = keep(
    new gcp.projects.IAMCustomRole(`${name}-pusher`, {
      project: lbProject,
      roleId: `lbsyncPusher_${roleSuffix}`,
      title: `lbsync ${spec.name} pusher`,
      description: 'Write the payload into an LB VM metadata and read the agent result',
      permissions: [...GCP_PUSHER_PERMISSIONS],
    }),
  );
  for (const inst of lb.instances) {
    keep(
      new gcp.compute.InstanceIAMMember(`${name}-push-${inst.zone}-${inst.name}`, {
        project: lbProject,
        zone: inst.zone,
        instanceName: inst.name,
        role: pusher.name,
        member: fnMember,
      }),
    );
  }
  if (o.lbServiceAccountEmail !== undefined) {
    keep(
      new gcp.serviceaccount.IAMMember(`${name}-act-as-lb`, {
        serviceAccountId: `projects/${lbProject}/serviceAccounts/${o.lbServiceAccountEmail}`,
        role: 'roles/iam.serviceAccountUser',
        member: fnMember,
      }),
    );
  }
  if (workers !== undefined) {
    keep(
      new gcp.projects.IAMMember(`${name}-event-receiver`, {
        project,
        role: 'roles/eventarc.eventReceiver',
        member: triggerMember,
      }),
    );
  }

  const bucket = keep(
    new gcp.storage.Bucket(`${name}-source`, {
      project,
      location: region,
      uniformBucketLevelAccess: true,
      publicAccessPrevention: 'enforced',
      forceDestroy: true,
    }),
  );
  // The object name carries the content digest, so a new build redeploys.
  const archive = keep(
    new gcp.storage.BucketObject(`${name}-archive`, {
      bucket: bucket.name,
      name: `lbsync-gcp-${directoryDigest(packageDir)}.zip`,
      source: new pulumi.asset.FileArchive(packageDir),
    }),
  );

  const environmentVariables = functionEnvironment(spec);
  const buildConfig = (entryPoint: string) => ({
    runtime: 'nodejs22',
    entryPoint,
    source: { storageSource: { bucket: bucket.name, object: archive.name } },
  });
  const serviceConfig = (ingressSettings: string) => ({
    serviceAccountEmail: fnAccount.email,
    environmentVariables,
    availableMemory: '512M',
    // 540 s is the limit for event functions; a sync waits for the LB agents.
    timeoutSeconds: 540,
    // One sync at a time per function; a later one sees the latest state anyway.
    maxInstanceCount: 1,
    maxInstanceRequestConcurrency: 1,
    ingressSettings,
    allTrafficOnLatestRevision: true,
    ...(o.vpcConnector !== undefined
      ? { vpcConnector: o.vpcConnector, vpcConnectorEgressSettings: 'PRIVATE_RANGES_ONLY' }
      : {}),
  });
  const [firstMethod, ...otherMethods] = GCP_AUDIT_METHODS;
  const auditFilters = (method: string) => [
    { attribute: 'serviceName', value: 'compute.googleapis.com' },
    { attribute: 'methodName', value: method },
  ];

  const eventFn =
    workers === undefined
      ? undefined
      : keep(
          new gcp.cloudfunctionsv2.Function(
            `${name}-event`,
            {
              project,
              location: region,
              name: `${name}-event`,
              description: `lbsync ${spec.name}: Compute Engine audit-log events`,
              buildConfig: buildConfig(GCP_ENTRY_POINTS.event),
              serviceConfig: serviceConfig('ALLOW_INTERNAL_ONLY'),
              eventTrigger: {
                // Zonal Compute events from any region reach a global trigger.
                triggerRegion: 'global',
                eventType: GCP_AUDIT_LOG_EVENT,
                eventFilters: auditFilters(firstMethod ?? ''),
                serviceAccountEmail: triggerAccount.email,
                retryPolicy: 'RETRY_POLICY_RETRY',
              },
            },
            { dependsOn: services },
          ),
        );
  const httpFn = keep(
    new gcp.cloudfunctionsv2.Function(
      `${name}-resync`,
      {
        project,
        location: region,
        name: `${name}-resync`,
        description: `lbsync ${spec.name}: scheduled and manual resync`,
        buildConfig: buildConfig(GCP_ENTRY_POINTS.http),
        // Cloud Scheduler and operators call from outside the VPC; the
        // platform still demands an identity token with run.invoker.
        serviceConfig: serviceConfig('ALLOW_ALL'),
      },
      { dependsOn: services },
    ),
  );

  for (const [id, fn] of [
    ...(eventFn !== undefined ? [['event', eventFn] as const] : []),
    ['resync', httpFn] as const,
  ]) {
    keep(
      new gcp.cloudrunv2.ServiceIamMember(`${name}-${id}-invoker`, {
        project,
        location: region,
        name: fn.name,
        role: 'roles/run.invoker',
        member: triggerMember,
      }),
    );
  }

  if (eventFn !== undefined) {
    for (const method of otherMethods) {
      keep(
        new gcp.eventarc.Trigger(
          `${name}-${method.split('.').slice(-2).join('-')}`,
          {
            project,
            location: 'global',
            name: `${name}-${method.split('.').slice(-2).join('-')}`.toLowerCase().slice(0, 63),
            matchingCriterias: [
              { attribute: 'type', value: GCP_AUDIT_LOG_EVENT },
              ...auditFilters(method),
            ],
            // A 2nd gen function's Cloud Run service has the function's name.
            destination: { cloudRunService: { service: eventFn.name, region } },
            serviceAccount: triggerAccount.email,
          },
          { dependsOn: services },
        ),
      );
    }
  }

  const k8s = gcpKubernetes({
    gcp,
    spec,
    name,
    project,
    region,
    fnAccount,
    httpFn,
    ...(o.kubernetes !== undefined ? { options: o.kubernetes } : {}),
  });
  resources.push(...k8s.resources);

  const job = keep(
    new gcp.cloudscheduler.Job(
      `${name}-schedule`,
      {
        project,
        region,
        name: `${name}-resync`,
        description: 'Periodic lbsync resync (heals missed events)',
        schedule: o.schedule ?? '*/5 * * * *',
        timeZone: 'Etc/UTC',
        attemptDeadline: '540s',
        retryConfig: { retryCount: 2, minBackoffDuration: '30s', maxBackoffDuration: '120s' },
        httpTarget: {
          uri: httpFn.url,
          httpMethod: 'POST',
          headers: { 'Content-Type': 'application/json' },
          body: Buffer.from('{"lbsync":"resync","force":false,"dryRun":false}').toString('base64'),
          oidcToken: { serviceAccountEmail: triggerAccount.email, audience: httpFn.url },
        },
      },
      { dependsOn: services },
    ),
  );

  return {
    outputs: {
      ...(eventFn !== undefined ? { eventFunction: eventFn.name } : {}),
      resyncFunction: httpFn.name,
      resyncUrl: httpFn.url,
      functionServiceAccount: fnAccount.email,
      schedulerJob: job.name,
      sourceBucket: bucket.name,
      ...k8s.outputs,
    },
    resources,
  };
}
