import * as gcp from '@pulumi/gcp';
import * as pulumi from '@pulumi/pulumi';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { decideAuditLogEvent } from '../../../adapters/gcp/event.js';
import { loadSpec, parseSpec, type Spec } from '../../../adapters/spec.js';
import {
  GCP_AUDIT_LOG_EVENT,
  GCP_AUDIT_METHODS,
  GCP_ENTRY_POINTS,
  type GcpStackOptions,
  gcpStack,
} from '../../../stacks/gcp.js';
import { StackConfigError } from '../../../stacks/shared.js';
import { eventFixture, fixtureNames, fixturePath } from '../../helpers/fixtures.js';
import { installMocks, type Recorder, settle, stubPackage } from './pulumi-mocks.js';

const fixtures: readonly { readonly file: string; readonly event: Record<string, unknown> }[] =
  fixtureNames('events/gcp', '.json').map((file) => ({ file, event: eventFixture('gcp', file) }));

// The project, zones and groups of the fixtures (test/fixtures/events/gcp/README.md).
function spec(lbExtra = ''): Spec {
  return parseSpec(`
name: demo
cloud: gcp
workers:
  gcp:
    project: lbsync-demo
    groups:
      - { name: web-a, zone: europe-west1-b }
      - { name: web-r, region: europe-west1 }
loadBalancers:
  gcp:
${lbExtra}
    instances:
      - { name: lb-1, zone: europe-west1-b }
      - { name: lb-2, zone: europe-west1-c }
services:
  - { name: http, bind: ":80", nodePort: 30080 }
`);
}

/** A spec the stack tests deploy or refuse (test/fixtures/stacks/). */
const stackFixture = (name: string): Promise<Spec> => loadSpec(fixturePath(`stacks/${name}.yaml`));

const T = {
  fn: 'gcp:cloudfunctionsv2/function:Function',
  trigger: 'gcp:eventarc/trigger:Trigger',
  role: 'gcp:projects/iAMCustomRole:IAMCustomRole',
  projectMember: 'gcp:projects/iAMMember:IAMMember',
  instanceMember: 'gcp:compute/instanceIAMMember:InstanceIAMMember',
  runInvoker: 'gcp:cloudrunv2/serviceIamMember:ServiceIamMember',
  job: 'gcp:cloudscheduler/job:Job',
  object: 'gcp:storage/bucketObject:BucketObject',
  saMember: 'gcp:serviceaccount/iAMMember:IAMMember',
  api: 'gcp:projects/service:Service',
} as const;

/** Eventarc filters are exact matches on CloudEvent attributes. */
function deliveredBy(
  filters: readonly { attribute: string; value: string }[],
  event: Record<string, unknown>,
): boolean {
  return filters.every((f) => event[f.attribute] === f.value);
}

describe('GCP stack (Pulumi mocks, real @pulumi/gcp)', () => {
  let rec: Recorder;
  let pkg: ReturnType<typeof stubPackage>;

  beforeAll(async () => {
    rec = await installMocks();
    pkg = stubPackage('gcp');
  });
  afterAll(() => pkg.remove());
  beforeEach(() => rec.reset());

  function render(s: Spec, options: GcpStackOptions = {}): Promise<Record<string, string>> {
    return settle(gcpStack({ pulumi, gcp, spec: s, packageDir: pkg.dir, options }));
  }

  function fn(kind: 'event' | 'resync') {
    const f = rec.ofType(T.fn).find((x) => x.inputs.name === `lbsync-demo-${kind}`);
    if (f === undefined) throw new Error(`no ${kind} function`);
    return f.inputs;
  }

  /** Every Eventarc filter set: the event function's own trigger plus the standalone ones. */
  function triggerFilters(): { attribute: string; value: string }[][] {
    const own = fn('event').eventTrigger;
    return [
      [{ attribute: 'type', value: own.eventType }, ...own.eventFilters],
      ...rec.ofType(T.trigger).map((t) => t.inputs.matchingCriterias),
    ];
  }

  it('deploys a Node 22 CloudEvent function and an HTTP function from one archive', async () => {
    await render(spec());
    const event = fn('event');
    const http = fn('resync');
    expect(event.buildConfig).toMatchObject({
      runtime: 'nodejs22',
      entryPoint: GCP_ENTRY_POINTS.event,
    });
    expect(http.buildConfig).toMatchObject({
      runtime: 'nodejs22',
      entryPoint: GCP_ENTRY_POINTS.http,
    });
    const object = rec.one(T.object).inputs;
    expect(await object.source.path).toBe(pkg.dir);
    for (const f of [event, http]) {
      expect(f.buildConfig.source.storageSource.object).toBe(object.name);
      expect(f.location).toBe('europe-west1');
      expect(f.serviceConfig.serviceAccountEmail).toBe(
        'lbsync-fn-demo@lbsync-demo.iam.gserviceaccount.com',
      );
      expect(f.serviceConfig.maxInstanceCount).toBe(1);
    }
    expect(event.serviceConfig.ingressSettings).toBe('ALLOW_INTERNAL_ONLY');
  });

  it('hands both functions the validated spec in LBSYNC_SPEC', async () => {
    const s = spec();
    await render(s);
    for (const kind of ['event', 'resync'] as const) {
      const env = fn(kind).serviceConfig.environmentVariables;
      expect(Object.keys(env)).toEqual(['LBSYNC_SPEC']);
      expect(parseSpec(env.LBSYNC_SPEC)).toEqual(s);
    }
  });

  it('delivers every fixture event the handler acts on, and none it ignores', async () => {
    const s = spec();
    await render(s);
    const filters = triggerFilters();
    let acted = 0;
    for (const f of fixtures) {
      const delivered = filters.some((fs) => deliveredBy(fs, f.event));
      const decision = decideAuditLogEvent(f.event, s.workers);
      if (decision.action === 'sync') {
        acted++;
        expect(delivered, f.file).toBe(true);
      }
    }
    expect(acted).toBeGreaterThanOrEqual(4);
    // The function's own setMetadata pushes must never come back as triggers.
    const own = fixtures.find((f) => f.file === 'instance-set-metadata.json');
    expect(own).toBeDefined();
    expect(filters.some((fs) => deliveredBy(fs, own?.event ?? {}))).toBe(false);
  });

  it('subscribes only to audit-log methods the handler acts on', async () => {
    const s = spec();
    await render(s);
    const template = fixtures.find((f) => f.file === 'mig-resize.json')?.event ?? {};
    const instance = fixtures.find((f) => f.file === 'instance-insert-first.json')?.event ?? {};
    const methods = triggerFilters().map(
      (fs) => fs.find((x) => x.attribute === 'methodName')?.value,
    );
    expect([...methods].sort()).toEqual([...GCP_AUDIT_METHODS].sort());
    for (const fs of triggerFilters()) {
      expect(fs).toContainEqual({ attribute: 'type', value: GCP_AUDIT_LOG_EVENT });
      expect(fs).toContainEqual({ attribute: 'serviceName', value: 'compute.googleapis.com' });
    }
    for (const method of GCP_AUDIT_METHODS) {
      const base = method.includes('instances.') ? instance : template;
      const data = base.data as { protoPayload: Record<string, unknown> };
      let resourceName = String(data.protoPayload.resourceName);
      if (method.includes('regionInstanceGroupManagers')) {
        resourceName = 'projects/lbsync-demo/regions/europe-west1/instanceGroupManagers/web-r';
      }
      const event = {
        ...base,
        methodName: method,
        data: { ...data, protoPayload: { ...data.protoPayload, methodName: method, resourceName } },
      };
      expect(decideAuditLogEvent(event, s.workers).action, method).toBe('sync');
    }
  });

  it('routes the standalone triggers to the event function through the trigger account', async () => {
    await render(spec());
    const triggers = rec.ofType(T.trigger);
    expect(triggers).toHaveLength(GCP_AUDIT_METHODS.length - 1);
    for (const t of triggers) {
      expect(t.inputs.destination).toEqual({
        cloudRunService: { service: 'lbsync-demo-event', region: 'europe-west1' },
      });
      expect(t.inputs.serviceAccount).toBe('lbsync-tr-demo@lbsync-demo.iam.gserviceaccount.com');
    }
    expect(fn('event').eventTrigger).toMatchObject({
      retryPolicy: 'RETRY_POLICY_RETRY',
      serviceAccountEmail: 'lbsync-tr-demo@lbsync-demo.iam.gserviceaccount.com',
    });
  });

  it('grants the function custom roles only: MIG reads on the project, pushes on each LB instance', async () => {
    await render(spec());
    const roles: Record<string, string[]> = Object.fromEntries(
      rec.ofType(T.role).map((r) => [r.inputs.roleId, r.inputs.permissions]),
    );
    expect(roles).toEqual({
      lbsyncReader_demo: [
        'compute.instanceGroupManagers.get',
        'compute.instances.list',
        'compute.zoneOperations.get',
      ],
      lbsyncPusher_demo: [
        'compute.instances.get',
        'compute.instances.setMetadata',
        'compute.instances.getGuestAttributes',
      ],
    });
    for (const perms of Object.values(roles)) for (const p of perms) expect(p).not.toContain('*');
    const pushes = rec.ofType(T.instanceMember).map((m) => m.inputs);
    expect(pushes.map((p) => `${p.zone}/${p.instanceName}`).sort()).toEqual([
      'europe-west1-b/lb-1',
      'europe-west1-c/lb-2',
    ]);
    for (const p of pushes) {
      expect(p.role).toBe('projects/lbsync-demo/roles/lbsyncPusher_demo');
      expect(p.member).toBe('serviceAccount:lbsync-fn-demo@lbsync-demo.iam.gserviceaccount.com');
    }
    const projectGrants = rec
      .ofType(T.projectMember)
      .map((m) => [m.inputs.member.split('@')[0], m.inputs.role]);
    expect(projectGrants.sort()).toEqual([
      ['serviceAccount:lbsync-fn-demo', 'projects/lbsync-demo/roles/lbsyncReader_demo'],
      ['serviceAccount:lbsync-tr-demo', 'roles/eventarc.eventReceiver'],
    ]);
    const invokers = rec
      .ofType(T.runInvoker)
      .map((m) => [m.inputs.name, m.inputs.role, m.inputs.member]);
    expect(invokers.sort()).toEqual([
      [
        'lbsync-demo-event',
        'roles/run.invoker',
        'serviceAccount:lbsync-tr-demo@lbsync-demo.iam.gserviceaccount.com',
      ],
      [
        'lbsync-demo-resync',
        'roles/run.invoker',
        'serviceAccount:lbsync-tr-demo@lbsync-demo.iam.gserviceaccount.com',
      ],
    ]);
    expect(rec.ofType(T.saMember)).toEqual([]);
  });

  it('grants actAs only on the LB VMs service account when one is named', async () => {
    await render(spec(), { lbServiceAccountEmail: 'lb-vm@lbsync-demo.iam.gserviceaccount.com' });
    expect(rec.one(T.saMember).inputs).toMatchObject({
      serviceAccountId:
        'projects/lbsync-demo/serviceAccounts/lb-vm@lbsync-demo.iam.gserviceaccount.com',
      role: 'roles/iam.serviceAccountUser',
    });
  });

  it('puts the LB grants in the LB project when it differs', async () => {
    await render(spec('    project: lbsync-edge'));
    const pushes = rec.ofType(T.instanceMember).map((m) => m.inputs);
    for (const p of pushes) {
      expect(p.project).toBe('lbsync-edge');
      expect(p.role).toBe('projects/lbsync-edge/roles/lbsyncPusher_demo');
    }
    const ops = rec.ofType(T.role).find((r) => r.inputs.roleId === 'lbsyncOperations_demo');
    expect(ops?.inputs).toMatchObject({
      project: 'lbsync-edge',
      permissions: ['compute.zoneOperations.get'],
    });
  });

  it('schedules an authenticated resync POST with retries', async () => {
    const out = await render(spec(), { schedule: '*/2 * * * *' });
    const job = rec.one(T.job).inputs;
    expect(job.schedule).toBe('*/2 * * * *');
    expect(job.retryConfig).toMatchObject({ retryCount: 2 });
    expect(job.httpTarget.uri).toBe(out.resyncUrl);
    expect(job.httpTarget.httpMethod).toBe('POST');
    expect(JSON.parse(Buffer.from(job.httpTarget.body, 'base64').toString())).toEqual({
      lbsync: 'resync',
      force: false,
      dryRun: false,
    });
    expect(job.httpTarget.oidcToken).toEqual({
      serviceAccountEmail: 'lbsync-tr-demo@lbsync-demo.iam.gserviceaccount.com',
      audience: out.resyncUrl,
    });
  });
  it.each([
    ['kubernetes', 1],
    ['static', 0],
  ] as const)(
    'deploys a %s-source spec: the resync function, its schedule and the LB pushes, no Eventarc or MIG reads',
    async (source, clusterGrants) => {
      const s = await stackFixture(`gcp-${source}`);
      const out = await render(s);
      // One function, the HTTP resync, in the first LB's region, with the spec.
      const fns = rec.ofType(T.fn).map((f) => f.inputs);
      expect(fns.map((f) => f.name)).toEqual(['lbsync-demo-resync']);
      expect(fns[0]?.buildConfig.entryPoint).toBe(GCP_ENTRY_POINTS.http);
      expect(fns[0]?.location).toBe('europe-west1');
      expect(fns[0]?.eventTrigger).toBeUndefined();
      expect(parseSpec(fns[0]?.serviceConfig.environmentVariables.LBSYNC_SPEC)).toEqual(s);
      expect(out.eventFunction).toBeUndefined();
      expect(out.resyncFunction).toBe('lbsync-demo-resync');
      // The scheduler calls it through the trigger account; nothing else does.
      const job = rec.one(T.job).inputs;
      expect(job.httpTarget.uri).toBe(out.resyncUrl);
      expect(job.httpTarget.oidcToken.serviceAccountEmail).toBe(
        'lbsync-tr-demo@lbsync-demo.iam.gserviceaccount.com',
      );
      const invokers = rec
        .ofType(T.runInvoker)
        .filter((m) => String(m.inputs.member).includes('lbsync-tr-demo'))
        .map((m) => m.inputs.name);
      expect(invokers).toEqual(['lbsync-demo-resync']);
      // No event path: no triggers, no event receiver, no Eventarc API.
      expect(rec.ofType(T.trigger)).toEqual([]);
      const projectRoles = rec.ofType(T.projectMember).map((m) => m.inputs.role);
      expect(projectRoles).not.toContain('roles/eventarc.eventReceiver');
      const apis = rec.ofType(T.api).map((a) => a.inputs.service);
      expect(apis).toContain('cloudscheduler.googleapis.com');
      expect(apis).not.toContain('eventarc.googleapis.com');
      // Pushes on each LB instance and the operations wait; no MIG reads.
      const roles: Record<string, string[]> = Object.fromEntries(
        rec.ofType(T.role).map((r) => [r.inputs.roleId, r.inputs.permissions]),
      );
      expect(roles).toEqual({
        lbsyncOperations_demo: ['compute.zoneOperations.get'],
        lbsyncPusher_demo: [
          'compute.instances.get',
          'compute.instances.setMetadata',
          'compute.instances.getGuestAttributes',
        ],
      });
      expect(projectRoles).toContain('projects/lbsync-demo/roles/lbsyncOperations_demo');
      const pushes = rec.ofType(T.instanceMember).map((m) => m.inputs);
      expect(pushes.map((p) => `${p.project}/${p.zone}/${p.instanceName}`).sort()).toEqual([
        'lbsync-demo/europe-west1-b/lb-1',
        'lbsync-demo/europe-west1-c/lb-2',
      ]);
      // The kubernetes source reaches its cluster as before (stacks/gcp-kubernetes.ts).
      expect(projectRoles.filter((r) => r === 'roles/container.clusterViewer')).toHaveLength(
        clusterGrants,
      );
    },
  );

  it('refuses a file source and a local transport, naming the field', async () => {
    const file = await stackFixture('gcp-file');
    expect(() => gcpStack({ pulumi, gcp, spec: file, packageDir: pkg.dir })).toThrow(
      StackConfigError,
    );
    expect(() => gcpStack({ pulumi, gcp, spec: file, packageDir: pkg.dir })).toThrow(
      /^workers\.source: file cannot be deployed: the function receives only the spec/,
    );
    const local = await stackFixture('gcp-local');
    expect(() => gcpStack({ pulumi, gcp, spec: local, packageDir: pkg.dir })).toThrow(
      /^loadBalancers\.transport: the gcp stack reaches the LBs with gcp-metadata, not local/,
    );
    expect(rec.resources).toEqual([]);
  });
});
