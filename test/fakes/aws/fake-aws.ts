import { randomUUID } from 'node:crypto';
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { FakeEks } from './eks.js';
import { FakeSts } from './sts.js';
import { ec2Filters, ec2List, el, esc, members } from './xml.js';

/*
 * A protocol-level AWS fake: one HTTP server on 127.0.0.1 that the real SDK v3
 * clients talk to (endpoint override, SigV4-signed requests).
 *
 *   POST /  X-Amz-Target: AmazonSSM.*         SSM, JSON 1.1
 *   POST /  X-Amz-Target: AWSEvents.*         EventBridge, JSON 1.1
 *   POST /  Action=…&Version=2011-01-01       Auto Scaling, Query/XML
 *   POST /  Action=…&Version=2016-11-15       EC2, EC2 Query/XML
 *   PUT/GET /<bucket>/<key>                   S3, path style (GET also by presigned URL)
 *   POST /2015-03-31/functions/<f>/invocations  Lambda Invoke (runs a registered handler)
 *   GET  /clusters/<name>                     EKS DescribeCluster, REST-JSON (eks.ts)
 *   GET  /?Action=GetCallerIdentity&X-Amz-…   STS through a presigned URL, as EKS replays
 *                                             it (sts.ts verifies the SigV4 signature)
 *
 * State: groups (members, lifecycle states, warm pool, hooks, pending
 * lifecycle actions), EC2 instances (IPs, tags, eventual visibility), LB
 * instances managed by SSM (each bound to an executor such as an LbVm, which
 * really runs the pushed script), commands, buckets, put events.
 *
 * Faults are opt-in: `fail(api, code, count)` answers the next `count` calls
 * of `api` with that error in the protocol's own format; command delays,
 * failed commands, InvocationDoesNotExist for the first polls, pagination
 * page sizes and EC2 eventual consistency are options or per-object settings.
 */

/** Runs a Run Command's script on a "VM" (LbVm satisfies it). */
export interface CommandExecutor {
  exec(
    script: string,
    opts?: { readonly stdin?: string; readonly timeoutMs?: number },
  ): Promise<{ readonly code: number; readonly stdout: string; readonly stderr: string }>;
}

/** Options for `FakeAws.start`. */
export interface FakeAwsOptions {
  readonly port: number;
  readonly host?: string;
  /**
   * Limit on SendCommand's serialized `Parameters`, in bytes. SSM documents
   * are limited to 64 KB (MaxDocumentSizeExceeded) and parameters are
   * substituted into the document, so the fake refuses parameters over
   * 64 KiB with that error. The real per-parameter limit is undocumented.
   */
  readonly maxParameterBytes?: number;
  /** GetCommandInvocation answers InvocationDoesNotExist for this many first polls of each invocation. */
  readonly invocationNotFoundPolls?: number;
  /** Delay between SendCommand and the script starting (delivery), ms. */
  readonly commandDelayMs?: number;
  /** Page size caps, to exercise pagination with few objects. */
  readonly asgPageSize?: number;
  readonly ec2PageSize?: number;
  /** Reject requests whose SigV4 credential scope names another service (default true). */
  readonly checkSigningService?: boolean;
}

/** A group member as Auto Scaling shows it. */
export interface FakeMember {
  readonly id: string;
  lifecycleState: string;
  health: 'Healthy' | 'Unhealthy';
  readonly zone: string;
}

/** An EC2 instance as DescribeInstances shows it. */
export interface FakeInstance {
  readonly id: string;
  privateIp: string | undefined;
  state: 'pending' | 'running' | 'stopped' | 'terminated';
  readonly tags: Record<string, string>;
  /** DescribeInstances calls that still do not show it (eventual consistency). */
  hiddenForCalls: number;
}

/** A pending lifecycle action (an instance in Pending:Wait or Terminating:Wait). */
export interface FakeLifecycleAction {
  readonly token: string;
  readonly group: string;
  readonly hook: string;
  readonly instanceId: string;
  readonly transition:
    | 'autoscaling:EC2_INSTANCE_LAUNCHING'
    | 'autoscaling:EC2_INSTANCE_TERMINATING';
  readonly origin: 'EC2' | 'AutoScalingGroup' | 'WarmPool';
  readonly destination: 'EC2' | 'AutoScalingGroup' | 'WarmPool';
}

/** A completed lifecycle action, with when it was completed. */
export interface FakeCompletion extends FakeLifecycleAction {
  readonly result: string;
  readonly at: number;
}

interface FakeGroup {
  readonly name: string;
  readonly members: Map<string, FakeMember>;
  readonly warmPool: Map<string, FakeMember>;
  readonly hooks: Map<string, { readonly heartbeat: number; readonly transition: string }>;
}

interface FakeLb {
  readonly id: string;
  readonly executor: CommandExecutor;
  managed: boolean;
}

interface FakeInvocation {
  readonly commandId: string;
  readonly instanceId: string;
  status: string;
  statusDetails: string;
  responseCode: number;
  stdout: string;
  stderr: string;
  polls: number;
  readonly script: string;
  readonly sentAt: number;
  startedAt?: number;
  endedAt?: number;
}

/** One SendCommand as the fake saw it. */
export interface FakeCommand {
  readonly commandId: string;
  readonly instanceIds: readonly string[];
  readonly parameterBytes: number;
  readonly comment: string;
  readonly at: number;
}

/** One API request as the fake saw it. */
export interface FakeRequest {
  readonly service: string;
  readonly api: string;
  readonly at: number;
}

/** A forced command result for one LB instance. */
export interface CommandFault {
  readonly status: 'Failed' | 'TimedOut' | 'Cancelled';
  readonly statusDetails?: string;
  readonly stderr?: string;
  readonly responseCode?: number;
  /** How many commands to affect; Infinity by default. */
  count?: number;
}

type LambdaHandler = (event: unknown) => Promise<unknown>;

class FakeApiError extends Error {
  public constructor(
    public readonly code: string,
    message: string,
    public readonly status = 400,
  ) {
    super(message);
    this.name = 'FakeApiError';
  }
}

const SIGNING: Record<string, string> = {
  ssm: 'ssm',
  events: 'events',
  autoscaling: 'autoscaling',
  ec2: 'ec2',
  s3: 's3',
  lambda: 'lambda',
  eks: 'eks',
};

/** The fake; start with `FakeAws.start`, stop in afterAll. */
export class FakeAws {
  /** Every API request, in order. */
  public readonly requests: FakeRequest[] = [];
  /** Every SendCommand. */
  public readonly commands: FakeCommand[] = [];
  /** Every CompleteLifecycleAction that found an action. */
  public readonly completions: FakeCompletion[] = [];
  /** Every PutEvents entry. */
  public readonly events: {
    source: string;
    detailType: string;
    detail: unknown;
    bus: string;
    at: number;
  }[] = [];
  /** Every GET of a staged object. */
  public readonly objectGets: { bucket: string; key: string; at: number }[] = [];
  /** STS: the identities whose keys verify, and the GetCallerIdentity calls. */
  public readonly sts = new FakeSts();
  /** EKS: clusters, their access entries, and the API server's authenticator. */
  public readonly eks = new FakeEks(
    () => this.url,
    () => this.sts.now(),
  );

  private readonly groups = new Map<string, FakeGroup>();
  private readonly instances = new Map<string, FakeInstance>();
  private readonly lbs = new Map<string, FakeLb>();
  private readonly actions = new Map<string, FakeLifecycleAction>();
  private readonly invocations = new Map<string, FakeInvocation>();
  private readonly buckets = new Map<string, Map<string, Buffer>>();
  private readonly faults: { api: string; code: string; status: number; remaining: number }[] = [];
  private readonly commandFaults = new Map<string, CommandFault>();
  private readonly functions = new Map<string, LambdaHandler>();
  private readonly running = new Set<Promise<void>>();
  private commandDelayMs: number;
  /** Serve staged objects with one byte changed (a corrupted download). */
  public corruptObjects = false;

  private constructor(
    private readonly server: Server,
    private readonly options: FakeAwsOptions,
  ) {
    this.commandDelayMs = options.commandDelayMs ?? 20;
  }

  /** Start listening. */
  public static async start(options: FakeAwsOptions): Promise<FakeAws> {
    let fake: FakeAws | undefined;
    const server = createServer((req, res) => {
      void fake?.handle(req, res);
    });
    fake = new FakeAws(server, options);
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject);
      server.listen(options.port, options.host ?? '127.0.0.1', () => resolve());
    });
    return fake;
  }

  /** Base URL for SDK `endpoint` / `AWS_ENDPOINT_URL`. */
  public get url(): string {
    const a = this.server.address() as AddressInfo;
    return `http://${a.address}:${a.port}`;
  }

  /** Stop the server and wait for running commands. */
  public async stop(): Promise<void> {
    await Promise.allSettled([...this.running]);
    await new Promise<void>((resolve) => {
      this.server.closeAllConnections();
      this.server.close(() => resolve());
    });
  }

  // ---- state ---------------------------------------------------------------

  /** Create an Auto Scaling group with optional lifecycle hooks. */
  public addGroup(
    name: string,
    hooks: readonly { name: string; heartbeat?: number; transition: 'launch' | 'terminate' }[] = [],
  ): void {
    const g: FakeGroup = { name, members: new Map(), warmPool: new Map(), hooks: new Map() };
    for (const h of hooks) {
      g.hooks.set(h.name, {
        heartbeat: h.heartbeat ?? 3600,
        transition:
          h.transition === 'launch'
            ? 'autoscaling:EC2_INSTANCE_LAUNCHING'
            : 'autoscaling:EC2_INSTANCE_TERMINATING',
      });
    }
    this.groups.set(name, g);
  }

  /** Add an EC2 instance to a group (state InService unless given). */
  public addMember(
    group: string,
    id: string,
    privateIp: string | undefined,
    opts: {
      lifecycleState?: string;
      health?: 'Healthy' | 'Unhealthy';
      hiddenForCalls?: number;
      zone?: string;
    } = {},
  ): void {
    const g = this.group(group);
    g.members.set(id, {
      id,
      lifecycleState: opts.lifecycleState ?? 'InService',
      health: opts.health ?? 'Healthy',
      zone: opts.zone ?? 'eu-west-1a',
    });
    this.instances.set(id, {
      id,
      privateIp,
      state: 'running',
      tags: { 'aws:autoscaling:groupName': group },
      hiddenForCalls: opts.hiddenForCalls ?? 0,
    });
  }

  /** Put a stopped instance in the group's warm pool (not listed by DescribeAutoScalingGroups). */
  public addWarm(group: string, id: string, privateIp: string): void {
    this.group(group).warmPool.set(id, {
      id,
      lifecycleState: 'Warmed:Stopped',
      health: 'Healthy',
      zone: 'eu-west-1a',
    });
    this.instances.set(id, { id, privateIp, state: 'stopped', tags: {}, hiddenForCalls: 0 });
  }

  /** Change a member's lifecycle state or health. */
  public setMember(
    group: string,
    id: string,
    patch: { lifecycleState?: string; health?: 'Healthy' | 'Unhealthy' },
  ): void {
    const m = this.group(group).members.get(id);
    if (m === undefined) throw new Error(`no member ${id} in ${group}`);
    if (patch.lifecycleState !== undefined) m.lifecycleState = patch.lifecycleState;
    if (patch.health !== undefined) m.health = patch.health;
  }

  /** Remove a member as a completed termination does (instance stays visible as terminated). */
  public terminate(group: string, id: string): void {
    this.group(group).members.delete(id);
    const inst = this.instances.get(id);
    if (inst !== undefined) inst.state = 'terminated';
  }

  /** Members of a group, as DescribeAutoScalingGroups would list them. */
  public membersOf(group: string): readonly FakeMember[] {
    return [...this.group(group).members.values()];
  }

  /**
   * Start a lifecycle action the way Auto Scaling does: the instance enters
   * Pending:Wait / Terminating:Wait and a token is issued. Returns the action,
   * from which tests build the EventBridge event.
   */
  public beginLifecycleAction(
    group: string,
    instanceId: string,
    transition: 'launch' | 'terminate',
    opts: {
      hook?: string;
      origin?: FakeLifecycleAction['origin'];
      destination?: FakeLifecycleAction['destination'];
    } = {},
  ): FakeLifecycleAction {
    const g = this.group(group);
    const hookName =
      opts.hook ??
      [...g.hooks.entries()].find(([, h]) =>
        h.transition.endsWith(transition === 'launch' ? 'LAUNCHING' : 'TERMINATING'),
      )?.[0];
    if (hookName === undefined) throw new Error(`group ${group} has no ${transition} hook`);
    const action: FakeLifecycleAction = {
      token: randomUUID(),
      group,
      hook: hookName,
      instanceId,
      transition:
        transition === 'launch'
          ? 'autoscaling:EC2_INSTANCE_LAUNCHING'
          : 'autoscaling:EC2_INSTANCE_TERMINATING',
      origin: opts.origin ?? (transition === 'launch' ? 'EC2' : 'AutoScalingGroup'),
      destination: opts.destination ?? (transition === 'launch' ? 'AutoScalingGroup' : 'EC2'),
    };
    const fromWarm = g.warmPool.get(instanceId);
    if (transition === 'launch' && fromWarm !== undefined) {
      // Leaving the warm pool: the instance joins the group and starts.
      g.warmPool.delete(instanceId);
      g.members.set(instanceId, { ...fromWarm, lifecycleState: 'Pending:Wait' });
      const inst = this.instances.get(instanceId);
      if (inst !== undefined) inst.state = 'running';
    } else if (fromWarm !== undefined) {
      // A warm instance being terminated never was in the group.
      fromWarm.lifecycleState = 'Warmed:Terminating:Wait';
    } else if (transition === 'terminate' && action.destination === 'WarmPool') {
      // Scale-in back to the warm pool: as AWS does, the group no longer lists
      // the instance (DescribeWarmPool shows it Warmed:Pending:Wait), though it
      // still runs and still holds the sessions the LBs sent it.
      const m = g.members.get(instanceId);
      if (m === undefined) throw new Error(`no member ${instanceId} in ${group}`);
      g.members.delete(instanceId);
      g.warmPool.set(instanceId, { ...m, lifecycleState: 'Warmed:Pending:Wait' });
    } else {
      const m = g.members.get(instanceId);
      if (m === undefined) throw new Error(`no member ${instanceId} in ${group}`);
      m.lifecycleState = transition === 'launch' ? 'Pending:Wait' : 'Terminating:Wait';
    }
    this.actions.set(action.token, action);
    return action;
  }

  /** Register an LB instance: EC2 knows it (with tags); SSM manages it unless `managed` is false. */
  public addLbInstance(
    id: string,
    executor: CommandExecutor,
    opts: { tags?: Record<string, string>; managed?: boolean; privateIp?: string } = {},
  ): void {
    this.lbs.set(id, { id, executor, managed: opts.managed ?? true });
    this.instances.set(id, {
      id,
      privateIp: opts.privateIp ?? '10.9.0.10',
      state: 'running',
      tags: opts.tags ?? {},
      hiddenForCalls: 0,
    });
  }

  /** Mark an LB instance managed (agent online) or not. */
  public setManaged(id: string, managed: boolean): void {
    const lb = this.lbs.get(id);
    if (lb === undefined) throw new Error(`no LB instance ${id}`);
    lb.managed = managed;
  }

  /** Create an S3 bucket. */
  public addBucket(name: string): void {
    this.buckets.set(name, new Map());
  }

  /** Keys stored in a bucket. */
  public objects(bucket: string): readonly string[] {
    return [...(this.buckets.get(bucket)?.keys() ?? [])];
  }

  /** Register a function for Lambda Invoke. */
  public addFunction(name: string, handler: LambdaHandler): void {
    this.functions.set(name, handler);
  }

  // ---- faults --------------------------------------------------------------

  /** Answer the next `count` calls of `api` (or '*' for every API) with error `code`. */
  public fail(api: string, code: string, count: number, status?: number): void {
    this.faults.push({ api, code, remaining: count, status: status ?? defaultStatus(code) });
  }

  /** Clear all pending API faults. */
  public clearFaults(): void {
    this.faults.length = 0;
  }

  /** Force the next commands on an LB instance to end this way (not running the script). */
  public failCommands(instanceId: string, fault: CommandFault | null): void {
    if (fault === null) this.commandFaults.delete(instanceId);
    else
      this.commandFaults.set(instanceId, {
        ...fault,
        count: fault.count ?? Number.POSITIVE_INFINITY,
      });
  }

  /** Delay before a command starts running (slow delivery). */
  public setCommandDelay(ms: number): void {
    this.commandDelayMs = ms;
  }

  /** Count of requests for one API. */
  public count(api: string): number {
    return this.requests.filter((r) => r.api === api).length;
  }

  // ---- HTTP ----------------------------------------------------------------

  private async handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const chunks: Buffer[] = [];
    for await (const c of req) chunks.push(c as Buffer);
    const body = Buffer.concat(chunks);
    const url = new URL(req.url ?? '/', 'http://fake');
    try {
      if (req.method === 'POST' && url.pathname === '/') {
        const target = req.headers['x-amz-target'];
        if (typeof target === 'string') {
          await this.json(req, res, target, body);
          return;
        }
        await this.query(req, res, new URLSearchParams(body.toString('utf8')));
        return;
      }
      if (
        req.method === 'GET' &&
        url.pathname === '/' &&
        url.searchParams.has('X-Amz-Signature') &&
        (url.searchParams.get('X-Amz-Credential') ?? '').includes('/sts/')
      ) {
        this.requests.push({ service: 'sts', api: 'GetCallerIdentity', at: Date.now() });
        const a = this.sts.handle({
          method: 'GET',
          host: req.headers.host ?? '',
          path: url.pathname,
          query: url.searchParams,
          headers: req.headers,
          body,
        });
        send(res, a.status, a.contentType, a.body);
        return;
      }
      const cluster = /^\/clusters\/([^/]+)$/.exec(url.pathname);
      if (req.method === 'GET' && cluster?.[1] !== undefined && this.signedFor(req, 'eks')) {
        this.describeCluster(res, decodeURIComponent(cluster[1]));
        return;
      }
      const lambda = /^\/2015-03-31\/functions\/([^/]+)\/invocations$/.exec(url.pathname);
      if (req.method === 'POST' && lambda?.[1] !== undefined) {
        await this.invoke(req, res, decodeURIComponent(lambda[1]), body);
        return;
      }
      if (req.method === 'PUT' || req.method === 'GET') {
        this.s3(req, res, url, body);
        return;
      }
      send(res, 404, 'text/plain', 'not found');
    } catch (err) {
      send(res, 500, 'text/plain', String(err));
    }
  }

  private signedFor(req: IncomingMessage, service: string): boolean {
    if (this.options.checkSigningService === false) return true;
    const auth = req.headers.authorization ?? '';
    const m = /^AWS4-HMAC-SHA256 Credential=[^/]+\/\d{8}\/[^/]+\/([^/]+)\/aws4_request/.exec(auth);
    return m?.[1] === SIGNING[service];
  }

  private takeFault(api: string): { code: string; status: number } | null {
    for (const f of this.faults) {
      if ((f.api === api || f.api === '*') && f.remaining > 0) {
        f.remaining--;
        return f;
      }
    }
    return null;
  }

  // JSON 1.1: SSM and EventBridge.
  private async json(
    req: IncomingMessage,
    res: ServerResponse,
    target: string,
    body: Buffer,
  ): Promise<void> {
    const [prefix, api = ''] = target.split('.');
    const service = prefix === 'AmazonSSM' ? 'ssm' : prefix === 'AWSEvents' ? 'events' : '';
    const reply = (status: number, obj: unknown): void =>
      send(res, status, 'application/x-amz-json-1.1', JSON.stringify(obj));
    if (service === '') {
      reply(400, { __type: 'UnknownOperationException', message: target });
      return;
    }
    if (!this.signedFor(req, service)) {
      reply(403, {
        __type: 'InvalidSignatureException',
        message: 'credential scope names another service',
      });
      return;
    }
    this.requests.push({ service, api, at: Date.now() });
    const fault = this.takeFault(api);
    if (fault !== null) {
      reply(fault.status, { __type: fault.code, message: `injected ${fault.code}` });
      return;
    }
    const input = JSON.parse(body.toString('utf8') || '{}') as Record<string, unknown>;
    try {
      if (service === 'ssm' && api === 'SendCommand') reply(200, this.sendCommand(input));
      else if (service === 'ssm' && api === 'GetCommandInvocation')
        reply(200, this.getInvocation(input));
      else if (service === 'events' && api === 'PutEvents') reply(200, this.putEvents(input));
      else reply(400, { __type: 'UnknownOperationException', message: `${target} is not faked` });
    } catch (err) {
      if (err instanceof FakeApiError)
        reply(err.status, { __type: err.code, message: err.message });
      else throw err;
    }
  }

  // Query: Auto Scaling (2011-01-01) and EC2 (2016-11-15).
  private async query(
    req: IncomingMessage,
    res: ServerResponse,
    p: URLSearchParams,
  ): Promise<void> {
    const api = p.get('Action') ?? '';
    const service = p.get('Version') === '2016-11-15' ? 'ec2' : 'autoscaling';
    const requestId = randomUUID();
    const xml = (status: number, text: string): void => send(res, status, 'text/xml', text);
    const error = (status: number, code: string, message: string): void =>
      service === 'ec2'
        ? xml(
            status,
            `<Response><Errors><Error>${el('Code', code)}${el('Message', message)}</Error></Errors>${el('RequestID', requestId)}</Response>`,
          )
        : xml(
            status,
            `<ErrorResponse><Error><Type>${status >= 500 ? 'Receiver' : 'Sender'}</Type>${el('Code', code)}${el('Message', message)}</Error>${el('RequestId', requestId)}</ErrorResponse>`,
          );
    if (!this.signedFor(req, service)) {
      error(403, 'SignatureDoesNotMatch', 'credential scope names another service');
      return;
    }
    this.requests.push({ service, api, at: Date.now() });
    const fault = this.takeFault(api);
    if (fault !== null) {
      error(fault.status, fault.code, `injected ${fault.code}`);
      return;
    }
    try {
      const meta = `<ResponseMetadata>${el('RequestId', requestId)}</ResponseMetadata>`;
      const wrap = (inner: string): string =>
        `<${api}Response><${api}Result>${inner}</${api}Result>${meta}</${api}Response>`;
      if (service === 'autoscaling' && api === 'DescribeAutoScalingGroups')
        xml(200, wrap(this.describeGroups(p)));
      else if (service === 'autoscaling' && api === 'DescribeLifecycleHooks')
        xml(200, wrap(this.describeHooks(p)));
      else if (service === 'autoscaling' && api === 'CompleteLifecycleAction')
        xml(200, wrap(this.completeAction(p)));
      else if (service === 'ec2' && api === 'DescribeInstances')
        xml(
          200,
          `<DescribeInstancesResponse>${el('requestId', requestId)}${this.describeInstances(p)}</DescribeInstancesResponse>`,
        );
      else error(400, 'InvalidAction', `${api} is not faked`);
    } catch (err) {
      if (err instanceof FakeApiError) error(err.status, err.code, err.message);
      else throw err;
    }
  }

  // ---- Auto Scaling --------------------------------------------------------

  private describeGroups(p: URLSearchParams): string {
    const names = members(p, 'AutoScalingGroupNames');
    const max = Math.min(Number(p.get('MaxRecords') ?? 50), 100, this.options.asgPageSize ?? 100);
    const start = Number(p.get('NextToken') ?? 0);
    const all = (names.length > 0 ? names : [...this.groups.keys()]).filter((n) =>
      this.groups.has(n),
    );
    const page = all.slice(start, start + max);
    const next = start + max < all.length ? String(start + max) : undefined;
    const groups = page
      .map((n) => {
        const g = this.group(n);
        const insts = [...g.members.values()]
          .map(
            (m) =>
              `<member>${el('InstanceId', m.id)}${el('InstanceType', 'm7g.large')}${el('AvailabilityZone', m.zone)}${el('LifecycleState', m.lifecycleState)}${el('HealthStatus', m.health)}${el('ProtectedFromScaleIn', false)}</member>`,
          )
          .join('');
        return `<member>${el('AutoScalingGroupName', n)}${el('MinSize', 0)}${el('MaxSize', 5000)}${el('DesiredCapacity', g.members.size)}<Instances>${insts}</Instances></member>`;
      })
      .join('');
    return `<AutoScalingGroups>${groups}</AutoScalingGroups>${el('NextToken', next)}`;
  }

  private describeHooks(p: URLSearchParams): string {
    const g = this.group(p.get('AutoScalingGroupName') ?? '');
    const wanted = members(p, 'LifecycleHookNames');
    const hooks = [...g.hooks.entries()]
      .filter(([n]) => wanted.length === 0 || wanted.includes(n))
      .map(
        ([n, h]) =>
          `<member>${el('LifecycleHookName', n)}${el('AutoScalingGroupName', g.name)}${el('LifecycleTransition', h.transition)}${el('HeartbeatTimeout', h.heartbeat)}${el('GlobalTimeout', Math.min(h.heartbeat * 100, 172800))}${el('DefaultResult', 'ABANDON')}</member>`,
      )
      .join('');
    return `<LifecycleHooks>${hooks}</LifecycleHooks>`;
  }

  private completeAction(p: URLSearchParams): string {
    const group = p.get('AutoScalingGroupName') ?? '';
    const hook = p.get('LifecycleHookName') ?? '';
    const result = p.get('LifecycleActionResult') ?? '';
    const token = p.get('LifecycleActionToken');
    const instanceId = p.get('InstanceId');
    if (result !== 'CONTINUE' && result !== 'ABANDON') {
      throw new FakeApiError('ValidationError', `Invalid LifecycleActionResult ${result}`);
    }
    const action =
      token !== null
        ? this.actions.get(token)
        : [...this.actions.values()].find(
            (a) => a.group === group && a.hook === hook && a.instanceId === instanceId,
          );
    if (action === undefined || action.group !== group || action.hook !== hook) {
      throw new FakeApiError(
        'ValidationError',
        `No active Lifecycle Action found with ${token !== null ? `token ${token}` : `instance ID ${instanceId}`}`,
      );
    }
    this.actions.delete(action.token);
    this.completions.push({ ...action, result, at: Date.now() });
    const g = this.group(group);
    const id = action.instanceId;
    if (action.transition === 'autoscaling:EC2_INSTANCE_LAUNCHING') {
      const m = g.members.get(id);
      if (m !== undefined) {
        if (result === 'CONTINUE') m.lifecycleState = 'InService';
        else this.terminate(group, id);
      }
    } else if (action.origin === 'WarmPool') {
      g.warmPool.delete(id);
      const inst = this.instances.get(id);
      if (inst !== undefined) inst.state = 'terminated';
    } else if (action.destination === 'WarmPool') {
      const m = g.members.get(id) ?? g.warmPool.get(id);
      g.members.delete(id);
      if (m !== undefined) g.warmPool.set(id, { ...m, lifecycleState: 'Warmed:Stopped' });
      const inst = this.instances.get(id);
      if (inst !== undefined) inst.state = 'stopped';
    } else {
      this.terminate(group, id);
    }
    return '';
  }

  // ---- EC2 -----------------------------------------------------------------

  private describeInstances(p: URLSearchParams): string {
    const ids = ec2List(p, 'InstanceId');
    const maxRaw = p.get('MaxResults');
    if (ids.length > 0 && maxRaw !== null) {
      throw new FakeApiError(
        'InvalidParameterCombination',
        'The parameter instancesSet cannot be used with the parameter maxResults',
      );
    }
    const filters = ec2Filters(p);
    let pool: FakeInstance[];
    if (ids.length > 0) {
      const missing = ids.filter((id) => {
        const inst = this.instances.get(id);
        return inst === undefined || inst.hiddenForCalls > 0;
      });
      for (const id of ids) {
        const inst = this.instances.get(id);
        if (inst !== undefined && inst.hiddenForCalls > 0) inst.hiddenForCalls--;
      }
      if (missing.length > 0) {
        throw new FakeApiError(
          'InvalidInstanceID.NotFound',
          missing.length === 1
            ? `The instance ID '${missing[0]}' does not exist`
            : `The instance IDs '${missing.join(', ')}' do not exist`,
        );
      }
      pool = ids.map((id) => this.instances.get(id) as FakeInstance);
    } else {
      pool = [...this.instances.values()];
    }
    const matched = pool.filter((inst) =>
      filters.every((f) => {
        if (f.name === 'instance-id') return f.values.includes(inst.id);
        if (f.name === 'instance-state-name') return f.values.includes(inst.state);
        if (f.name.startsWith('tag:')) {
          const v = inst.tags[f.name.slice(4)];
          return v !== undefined && f.values.includes(v);
        }
        throw new FakeApiError('InvalidParameterValue', `The filter '${f.name}' is invalid`);
      }),
    );
    // Eventual consistency: a freshly launched instance is not listed yet.
    const visible = matched.filter((inst) => {
      if (inst.hiddenForCalls > 0 && ids.length === 0) {
        inst.hiddenForCalls--;
        return false;
      }
      return true;
    });
    const max =
      maxRaw === null ? visible.length : Math.min(Number(maxRaw), this.options.ec2PageSize ?? 1000);
    if (maxRaw !== null && (Number(maxRaw) < 5 || Number(maxRaw) > 1000)) {
      throw new FakeApiError(
        'InvalidParameterValue',
        'Value for parameter maxResults is invalid. Expecting a value between 5 and 1000',
      );
    }
    const start = Number(p.get('NextToken') ?? 0);
    const page = visible.slice(start, start + max);
    const next = start + max < visible.length ? String(start + max) : undefined;
    const items = page
      .map((inst) => {
        const tags = Object.entries(inst.tags)
          .map(([k, v]) => `<item>${el('key', k)}${el('value', v)}</item>`)
          .join('');
        const code = { pending: 0, running: 16, stopped: 80, terminated: 48 }[inst.state];
        return `<item>${el('reservationId', `r-${inst.id.slice(2)}`)}<instancesSet><item>${el('instanceId', inst.id)}${el('privateIpAddress', inst.privateIp)}<instanceState>${el('code', code)}${el('name', inst.state)}</instanceState><tagSet>${tags}</tagSet></item></instancesSet></item>`;
      })
      .join('');
    return `<reservationSet>${items}</reservationSet>${el('nextToken', next)}`;
  }

  // ---- SSM -----------------------------------------------------------------

  private sendCommand(input: Record<string, unknown>): unknown {
    if (input.DocumentName !== 'AWS-RunShellScript') {
      throw new FakeApiError(
        'InvalidDocument',
        `Document ${String(input.DocumentName)} is not faked`,
      );
    }
    const params = (input.Parameters ?? {}) as Record<string, string[]>;
    const parameterBytes = Buffer.byteLength(JSON.stringify(params));
    const limit = this.options.maxParameterBytes ?? 65_536;
    if (parameterBytes > limit) {
      throw new FakeApiError(
        'MaxDocumentSizeExceeded',
        `The size limit of a document is 64 KB (parameters are ${parameterBytes} bytes)`,
      );
    }
    const commands = params.commands;
    if (!Array.isArray(commands) || commands.length === 0) {
      throw new FakeApiError('InvalidParameters', 'commands is required');
    }
    let ids = Array.isArray(input.InstanceIds) ? (input.InstanceIds as string[]) : [];
    if (ids.length > 50) throw new FakeApiError('ValidationException', 'InstanceIds: at most 50');
    const targets = Array.isArray(input.Targets)
      ? (input.Targets as { Key: string; Values: string[] }[])
      : [];
    for (const t of targets) {
      if (!t.Key.startsWith('tag:')) continue;
      const key = t.Key.slice(4);
      for (const inst of this.instances.values()) {
        const v = inst.tags[key];
        if (v !== undefined && t.Values.includes(v) && this.lbs.has(inst.id))
          ids = [...ids, inst.id];
      }
    }
    const unmanaged = ids.filter((id) => this.lbs.get(id)?.managed !== true);
    if (ids.length === 0 || unmanaged.length > 0) {
      throw new FakeApiError(
        'InvalidInstanceId',
        `Instances [[${unmanaged.join(', ')}]] not in a valid state for account 123456789012`,
      );
    }
    const commandId = randomUUID();
    const execTimeout = Number(params.executionTimeout?.[0] ?? 3600);
    const script = commands.join('\n');
    const now = Date.now();
    this.commands.push({
      commandId,
      instanceIds: ids,
      parameterBytes,
      comment: String(input.Comment ?? ''),
      at: now,
    });
    for (const id of ids) {
      const inv: FakeInvocation = {
        commandId,
        instanceId: id,
        status: 'Pending',
        statusDetails: 'Pending',
        responseCode: -1,
        stdout: '',
        stderr: '',
        polls: 0,
        script,
        sentAt: now,
      };
      this.invocations.set(`${commandId}/${id}`, inv);
      const run = this.execute(inv, execTimeout);
      this.running.add(run);
      void run.finally(() => this.running.delete(run));
    }
    return {
      Command: {
        CommandId: commandId,
        DocumentName: 'AWS-RunShellScript',
        InstanceIds: ids,
        Status: 'Pending',
        StatusDetails: 'Pending',
        RequestedDateTime: now / 1000,
        TargetCount: ids.length,
      },
    };
  }

  private async execute(inv: FakeInvocation, execTimeoutSeconds: number): Promise<void> {
    await new Promise((r) => setTimeout(r, this.commandDelayMs));
    const fault = this.commandFaults.get(inv.instanceId);
    if (fault !== undefined && (fault.count ?? 0) > 0) {
      fault.count = (fault.count ?? 1) - 1;
      inv.status = fault.status;
      inv.statusDetails = fault.statusDetails ?? fault.status;
      inv.responseCode = fault.responseCode ?? (fault.status === 'Failed' ? 1 : -1);
      inv.stderr = fault.stderr ?? '';
      inv.endedAt = Date.now();
      return;
    }
    const lb = this.lbs.get(inv.instanceId);
    if (lb === undefined) return;
    inv.status = 'InProgress';
    inv.statusDetails = 'InProgress';
    inv.startedAt = Date.now();
    const r = await lb.executor.exec(inv.script, { timeoutMs: execTimeoutSeconds * 1000 });
    // The service keeps the first 24,000 characters of stdout, 8,000 of stderr.
    inv.stdout = r.stdout.slice(0, 24_000);
    inv.stderr = r.stderr.slice(0, 8_000);
    inv.responseCode = r.code;
    inv.status = r.code === 0 ? 'Success' : 'Failed';
    inv.statusDetails = inv.status;
    inv.endedAt = Date.now();
  }

  private getInvocation(input: Record<string, unknown>): unknown {
    const inv = this.invocations.get(`${String(input.CommandId)}/${String(input.InstanceId)}`);
    if (inv === undefined)
      throw new FakeApiError(
        'InvocationDoesNotExist',
        'An error occurred (InvocationDoesNotExist)',
      );
    inv.polls++;
    if (inv.polls <= (this.options.invocationNotFoundPolls ?? 0)) {
      throw new FakeApiError(
        'InvocationDoesNotExist',
        'An error occurred (InvocationDoesNotExist)',
      );
    }
    const done = inv.status !== 'Pending' && inv.status !== 'InProgress';
    return {
      CommandId: inv.commandId,
      InstanceId: inv.instanceId,
      DocumentName: 'AWS-RunShellScript',
      PluginName: 'aws:runShellScript',
      Status: inv.status,
      StatusDetails: inv.statusDetails,
      ResponseCode: inv.responseCode,
      // Output is empty until the command finishes, as documented.
      StandardOutputContent: done ? inv.stdout : '',
      StandardErrorContent: done ? inv.stderr : '',
      ExecutionStartDateTime:
        inv.startedAt === undefined ? '' : new Date(inv.startedAt).toISOString(),
      ExecutionEndDateTime: inv.endedAt === undefined ? '' : new Date(inv.endedAt).toISOString(),
    };
  }

  /** Every invocation with its comment and timing, in send order. */
  public invocationLog(): readonly {
    readonly instanceId: string;
    readonly comment: string;
    readonly status: string;
    readonly sentAt: number;
    readonly endedAt: number | undefined;
  }[] {
    const comments = new Map(this.commands.map((c) => [c.commandId, c.comment]));
    return [...this.invocations.values()].map((i) => ({
      instanceId: i.instanceId,
      comment: comments.get(i.commandId) ?? '',
      status: i.status,
      sentAt: i.sentAt,
      endedAt: i.endedAt,
    }));
  }

  /** How long each finished command took from SendCommand to its end, ms. */
  public commandDurations(): readonly number[] {
    return [...this.invocations.values()]
      .filter((i) => i.endedAt !== undefined)
      .map((i) => (i.endedAt ?? 0) - i.sentAt);
  }

  // ---- EventBridge ---------------------------------------------------------

  private putEvents(input: Record<string, unknown>): unknown {
    const entries = Array.isArray(input.Entries)
      ? (input.Entries as Record<string, unknown>[])
      : [];
    if (entries.length > 10) throw new FakeApiError('ValidationException', 'at most 10 entries');
    const out = entries.map((e) => {
      const detail = String(e.Detail ?? '{}');
      if (Buffer.byteLength(detail) > 256 * 1024) {
        return {
          ErrorCode: 'ValidationException',
          ErrorMessage: 'Total size of the entries in the request is over the limit',
        };
      }
      this.events.push({
        source: String(e.Source),
        detailType: String(e.DetailType),
        detail: JSON.parse(detail),
        bus: String(e.EventBusName ?? 'default'),
        at: Date.now(),
      });
      return { EventId: randomUUID() };
    });
    return { FailedEntryCount: out.filter((o) => 'ErrorCode' in o).length, Entries: out };
  }

  // ---- S3 ------------------------------------------------------------------

  private s3(req: IncomingMessage, res: ServerResponse, url: URL, body: Buffer): void {
    const [, bucket = '', ...rest] = url.pathname.split('/');
    const key = decodeURIComponent(rest.join('/'));
    const xmlError = (status: number, code: string, message: string): void =>
      send(
        res,
        status,
        'application/xml',
        `<Error>${el('Code', code)}${el('Message', message)}</Error>`,
      );
    const presigned = url.searchParams.has('X-Amz-Signature');
    if (!presigned && !this.signedFor(req, 's3')) {
      xmlError(403, 'SignatureDoesNotMatch', 'credential scope names another service');
      return;
    }
    if (presigned) {
      const date = url.searchParams.get('X-Amz-Date') ?? '';
      const expires = Number(url.searchParams.get('X-Amz-Expires') ?? 0);
      const m = /^(\d{4})(\d{2})(\d{2})T(\d{2})(\d{2})(\d{2})Z$/.exec(date);
      const n = (k: number): number => Number(m?.[k] ?? 0);
      const signedAt = m === null ? 0 : Date.UTC(n(1), n(2) - 1, n(3), n(4), n(5), n(6));
      if (
        !(url.searchParams.get('X-Amz-Credential') ?? '').includes('/s3/aws4_request') ||
        Date.now() > signedAt + expires * 1000
      ) {
        xmlError(403, 'AccessDenied', 'Request has expired');
        return;
      }
    }
    const api = req.method === 'PUT' ? 'PutObject' : 'GetObject';
    this.requests.push({ service: 's3', api, at: Date.now() });
    const fault = this.takeFault(api);
    if (fault !== null) {
      xmlError(fault.status, fault.code, `injected ${fault.code}`);
      return;
    }
    const store = this.buckets.get(bucket);
    if (store === undefined) {
      xmlError(404, 'NoSuchBucket', 'The specified bucket does not exist');
      return;
    }
    if (req.method === 'PUT') {
      store.set(key, body);
      res.writeHead(200, { etag: `"${randomUUID()}"` });
      res.end();
      return;
    }
    const obj = store.get(key);
    if (obj === undefined) {
      xmlError(404, 'NoSuchKey', 'The specified key does not exist.');
      return;
    }
    this.objectGets.push({ bucket, key, at: Date.now() });
    let out = obj;
    if (this.corruptObjects) {
      out = Buffer.from(obj);
      const at = out.length - 10;
      out[at] = out[at] === 0x41 ? 0x42 : 0x41;
    }
    send(res, 200, 'application/octet-stream', out);
  }

  // ---- EKS -----------------------------------------------------------------

  private describeCluster(res: ServerResponse, name: string): void {
    this.requests.push({ service: 'eks', api: 'DescribeCluster', at: Date.now() });
    const error = (status: number, code: string, message: string): void =>
      send(res, status, 'application/json', JSON.stringify({ message }), {
        'x-amzn-errortype': code,
      });
    const fault = this.takeFault('DescribeCluster');
    if (fault !== null) {
      error(fault.status, fault.code, `injected ${fault.code}`);
      return;
    }
    const found = this.eks.describe(name);
    if (found === null) {
      error(404, 'ResourceNotFoundException', `No cluster found for name: ${name}.`);
      return;
    }
    send(res, 200, 'application/json', JSON.stringify(found));
  }

  // ---- Lambda --------------------------------------------------------------

  private async invoke(
    req: IncomingMessage,
    res: ServerResponse,
    name: string,
    body: Buffer,
  ): Promise<void> {
    if (!this.signedFor(req, 'lambda')) {
      send(
        res,
        403,
        'application/json',
        JSON.stringify({ message: 'credential scope names another service' }),
      );
      return;
    }
    this.requests.push({ service: 'lambda', api: 'Invoke', at: Date.now() });
    const fn = this.functions.get(name.split(':').pop() ?? name);
    if (fn === undefined) {
      res.writeHead(404, {
        'content-type': 'application/json',
        'x-amzn-errortype': 'ResourceNotFoundException',
      });
      res.end(JSON.stringify({ Type: 'User', message: `Function not found: ${name}` }));
      return;
    }
    const event = JSON.parse(body.toString('utf8') || 'null') as unknown;
    try {
      const result = await fn(event);
      send(res, 200, 'application/json', JSON.stringify(result ?? null), {
        'x-amz-executed-version': '$LATEST',
      });
    } catch (err) {
      const e = err as Error;
      send(
        res,
        200,
        'application/json',
        JSON.stringify({ errorType: e.name ?? 'Error', errorMessage: e.message ?? String(err) }),
        { 'x-amz-function-error': 'Unhandled', 'x-amz-executed-version': '$LATEST' },
      );
    }
  }

  private group(name: string): FakeGroup {
    const g = this.groups.get(name);
    if (g === undefined)
      throw new FakeApiError('ValidationError', `AutoScalingGroup name not found - ${esc(name)}`);
    return g;
  }
}

function defaultStatus(code: string): number {
  if (code === 'RequestLimitExceeded' || code === 'ServiceUnavailable') return 503;
  if (/Internal|ServerError/.test(code)) return 500;
  return 400;
}

function send(
  res: ServerResponse,
  status: number,
  type: string,
  body: string | Buffer,
  headers: Record<string, string> = {},
): void {
  res.writeHead(status, { 'content-type': type, 'x-amzn-requestid': randomUUID(), ...headers });
  res.end(body);
}
