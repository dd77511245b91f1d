import { execFileSync } from 'node:child_process';
import { randomBytes, randomUUID } from 'node:crypto';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import type { IncomingMessage, ServerResponse } from 'node:http';
import { createServer, type Server } from 'node:https';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { LbVm } from '../lb-vm.js';
import { FakeManagedClusters } from './aks.js';

/*
 * A protocol-level fake of the slice of Azure Resource Manager (and Blob
 * storage) lbsync uses, over HTTPS with a self-signed certificate made at
 * start. The real @azure/arm-compute, @azure/arm-network and
 * @azure/storage-blob clients talk to it. It is stateful (scale sets, their
 * VMs and NICs, LB VMs, run commands, blobs) and has opt-in faults. Its Run
 * Command is a real long-running operation (202 + Azure-AsyncOperation +
 * Location) that executes the posted script inside the matching LbVm, one
 * command at a time per VM, and returns only the last 4,096 bytes of output.
 */

/** One scale set VM as the fake models it. */
export interface FakeInstance {
  readonly instanceId: string;
  readonly name: string;
  readonly ip: string;
  provisioningState: 'Succeeded' | 'Creating' | 'Updating' | 'Deleting' | 'Failed';
  power: 'running' | 'starting' | 'stopped' | 'deallocated';
}

/** An injected fault: the next `times` matching requests get `status`. */
export interface FakeFault {
  readonly method?: string;
  /** Matched against the lowercased path (no query). */
  readonly path: RegExp;
  readonly status: number;
  times: number;
  readonly code?: string;
  readonly retryAfterSeconds?: number;
}

interface ScaleSet {
  readonly subscriptionId: string;
  readonly resourceGroup: string;
  readonly name: string;
  readonly orchestration: 'uniform' | 'flexible';
  readonly instances: Map<string, FakeInstance>;
}

/** One network interface of an LB VM (the VM's networkProfile lists them in this order). */
export interface FakeNic {
  readonly name: string;
  /** Private IP of its primary ipConfiguration. */
  ip: string;
  readonly primary?: boolean;
}

interface LbVmEntry {
  readonly subscriptionId: string;
  readonly resourceGroup: string;
  readonly name: string;
  readonly scaleSet?: string;
  readonly instanceId?: string;
  readonly vm: LbVm;
  readonly nics: FakeNic[];
  busyUntil: number;
  running: boolean;
  failNext: number;
}

interface Operation {
  readonly id: string;
  status: 'InProgress' | 'Succeeded' | 'Failed';
  result?: unknown;
  error?: { code: string; message: string };
}

/** What the fake saw; tests assert on the wire traffic. */
export interface SeenRequest {
  readonly method: string;
  readonly path: string;
  readonly query: string;
  readonly status: number;
  readonly at: number;
  readonly scriptBytes?: number;
}

/** Options for `FakeArm.start`. */
export interface FakeArmOptions {
  readonly port: number;
  /** Items per page for list operations (paging via nextLink). */
  readonly pageSize?: number;
  /** Reject Run Command scripts larger than this (bytes of the joined script). */
  readonly maxScriptBytes?: number;
  /** Minimum Run Command duration (the real service takes ~20 s). */
  readonly runCommandMinMs?: number;
}

const OUTPUT_LIMIT = 4096;
const LOCATION = 'westeurope';
/** The storage account the fake serves, path-style like Azurite. */
export const FAKE_STORAGE_ACCOUNT = 'lbsyncstage';

/** The fake ARM + Blob server. */
export class FakeArm {
  /** Requests seen, in order. */
  public readonly requests: SeenRequest[] = [];
  /** Items per page for list operations. */
  public pageSize: number;
  /** Reject Run Command scripts above this many bytes (400, like an oversized request). */
  public maxScriptBytes: number;
  /** Minimum Run Command duration. */
  public runCommandMinMs: number;
  /** The blobs stored, by `container/name`. */
  public readonly blobs = new Map<string, Buffer>();
  /** Corrupt one byte of every blob download (a bad download must be refused on the LB). */
  public tamperBlobReads = false;
  /** AKS managed clusters (GET, listClusterUserCredential). */
  public readonly managedClusters = new FakeManagedClusters();
  /** Which bearer tokens ARM accepts (default: any); tests plug in the Entra fake's check. */
  public acceptToken: (token: string) => boolean = () => true;

  private readonly scaleSets = new Map<string, ScaleSet>();
  private readonly lbs = new Map<string, LbVmEntry>();
  private readonly operations = new Map<string, Operation>();
  private readonly faults: FakeFault[] = [];
  private readonly delegationOid = randomUUID();
  private readonly running = new Set<Promise<void>>();

  private constructor(
    private readonly server: Server,
    private readonly dir: string,
    /** Base URL (https://127.0.0.1:port). */
    public readonly url: string,
    /** The self-signed certificate (PEM), to trust in clients. */
    public readonly caPem: string,
    /** Where the certificate is on disk (for curl inside LB VMs). */
    public readonly caFile: string,
    options: FakeArmOptions,
  ) {
    this.pageSize = options.pageSize ?? 500;
    this.maxScriptBytes = options.maxScriptBytes ?? 256 * 1024;
    this.runCommandMinMs = options.runCommandMinMs ?? 0;
  }

  /** Make a certificate, listen on 127.0.0.1:`port`. */
  public static async start(options: FakeArmOptions): Promise<FakeArm> {
    const dir = mkdtempSync(join(tmpdir(), 'lbsync-fake-arm-'));
    const key = join(dir, 'key.pem');
    const cert = join(dir, 'cert.pem');
    execFileSync(
      'openssl',
      [
        'req',
        '-x509',
        '-newkey',
        'ec',
        '-pkeyopt',
        'ec_paramgen_curve:prime256v1',
        '-nodes',
        '-keyout',
        key,
        '-out',
        cert,
        '-days',
        '1',
        '-subj',
        '/CN=127.0.0.1',
        '-addext',
        'subjectAltName=IP:127.0.0.1',
      ],
      { stdio: 'ignore' },
    );
    const caPem = readFileSync(cert, 'utf8');
    let fake: FakeArm | undefined;
    const server = createServer({ key: readFileSync(key), cert: caPem }, (req, res) => {
      void fake?.handle(req, res);
    });
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject);
      server.listen(options.port, '127.0.0.1', () => resolve());
    });
    fake = new FakeArm(server, dir, `https://127.0.0.1:${options.port}`, caPem, cert, options);
    return fake;
  }

  /** Blob account URL (path-style). */
  public get storageAccountUrl(): string {
    return `${this.url}/${FAKE_STORAGE_ACCOUNT}`;
  }

  /** Add a scale set. */
  public addScaleSet(
    subscriptionId: string,
    resourceGroup: string,
    name: string,
    orchestration: 'uniform' | 'flexible',
  ): void {
    this.scaleSets.set(key(resourceGroup, name), {
      subscriptionId,
      resourceGroup,
      name,
      orchestration,
      instances: new Map(),
    });
  }

  /** Scale out: add a VM (running, Succeeded unless told otherwise). */
  public addInstance(
    resourceGroup: string,
    scaleSet: string,
    i: Pick<FakeInstance, 'instanceId' | 'ip'> & Partial<FakeInstance>,
  ): void {
    const ss = this.scaleSet(resourceGroup, scaleSet);
    const name =
      i.name ??
      (ss.orchestration === 'uniform'
        ? `${scaleSet}_${i.instanceId}`
        : `${scaleSet}_${i.instanceId}`);
    ss.instances.set(i.instanceId, {
      instanceId: i.instanceId,
      name,
      ip: i.ip,
      provisioningState: i.provisioningState ?? 'Succeeded',
      power: i.power ?? 'running',
    });
  }

  /** Scale in: remove a VM. */
  public removeInstance(resourceGroup: string, scaleSet: string, instanceId: string): void {
    this.scaleSet(resourceGroup, scaleSet).instances.delete(instanceId);
  }

  /** Change a VM's state in place (provisioning, power). */
  public updateInstance(
    resourceGroup: string,
    scaleSet: string,
    instanceId: string,
    patch: Partial<Pick<FakeInstance, 'provisioningState' | 'power'>>,
  ): void {
    const i = this.scaleSet(resourceGroup, scaleSet).instances.get(instanceId);
    if (i === undefined) throw new Error(`no instance ${instanceId}`);
    Object.assign(i, patch);
  }

  /**
   * Register an LB VM (standalone, or a scale set instance) backed by a real
   * LbVm. `ip` gives it one primary NIC with that private IP; `nics` lists
   * several (GET on the VM and on each NIC serve them); neither: no NIC.
   */
  public addLbVm(e: {
    readonly subscriptionId: string;
    readonly resourceGroup: string;
    readonly name: string;
    readonly scaleSet?: string;
    readonly instanceId?: string;
    readonly vm: LbVm;
    readonly ip?: string;
    readonly nics?: readonly FakeNic[];
  }): void {
    const { ip, nics, ...rest } = e;
    const nicName = `${e.scaleSet ?? e.name}-nic`;
    this.lbs.set(this.lbKey(e.resourceGroup, e.name, e.scaleSet, e.instanceId), {
      ...rest,
      nics:
        nics !== undefined
          ? nics.map((n) => ({ ...n }))
          : ip !== undefined
            ? [{ name: nicName, ip, primary: true }]
            : [],
      busyUntil: 0,
      running: false,
      failNext: 0,
    });
  }

  /** Give an LB VM's primary NIC (or its first) another private IP. */
  public setLbVmIp(resourceGroup: string, name: string, ip: string): void {
    const e = this.lb(resourceGroup, name);
    const nic = e.nics.find((n) => n.primary === true) ?? e.nics[0];
    if (nic === undefined) throw new Error(`LB VM ${resourceGroup}/${name} has no NIC`);
    nic.ip = ip;
  }

  /** The next `times` GETs of an LB VM's NICs answer `status` (404: gone, 500: ARM failing). */
  public failNicReads(resourceGroup: string, name: string, status: number, times: number): void {
    const e = this.lb(resourceGroup, name);
    for (const nic of e.nics) {
      this.fault({
        method: 'GET',
        path: new RegExp(`/networkinterfaces/${escapeRegExp(nic.name.toLowerCase())}$`),
        status,
        times,
        ...(status === 404 ? { code: 'NotFound' } : {}),
      });
    }
  }

  /** GETs seen of LB VMs' NICs (standalone and scale set VM NICs). */
  public nicReads(): readonly SeenRequest[] {
    return this.requests.filter(
      (r) => r.method === 'GET' && /\/networkinterfaces\/[^/]+$/.test(r.path),
    );
  }

  /** Inject a fault for the next `times` matching requests. */
  public fault(f: FakeFault): void {
    this.faults.push(f);
  }

  /** Keep an LB VM "running another command" for `ms` (Run Command answers 409). */
  public makeBusy(resourceGroup: string, name: string, ms: number): void {
    const e = this.lb(resourceGroup, name);
    e.busyUntil = Date.now() + ms;
  }

  /** The next `times` Run Commands on this LB VM end as failed operations. */
  public failRunCommands(resourceGroup: string, name: string, times: number): void {
    this.lb(resourceGroup, name).failNext = times;
  }

  /** Run Commands POSTed so far, optionally for one VM path fragment. */
  public runCommands(fragment = ''): readonly SeenRequest[] {
    return this.requests.filter(
      (r) =>
        r.method === 'POST' &&
        r.path.endsWith('/runcommand') &&
        r.path.includes(fragment) &&
        r.status === 202,
    );
  }

  /** Stop serving; waits for running commands. */
  public async stop(): Promise<void> {
    await Promise.allSettled([...this.running]);
    this.server.closeAllConnections();
    await new Promise<void>((r) => this.server.close(() => r()));
    rmSync(this.dir, { recursive: true, force: true });
  }

  private scaleSet(resourceGroup: string, name: string): ScaleSet {
    const ss = this.scaleSets.get(key(resourceGroup, name));
    if (ss === undefined) throw new Error(`no scale set ${resourceGroup}/${name}`);
    return ss;
  }

  private lb(resourceGroup: string, name: string): LbVmEntry {
    for (const e of this.lbs.values()) {
      if (e.resourceGroup.toLowerCase() === resourceGroup.toLowerCase() && e.name === name)
        return e;
    }
    throw new Error(`no LB VM ${resourceGroup}/${name}`);
  }

  /** The LB VM one of whose NICs is `nic` in `rg` (standalone VMs, or one scale set VM). */
  private lbWithNic(
    rg: string,
    nic: string,
    scaleSet?: string,
    instanceId?: string,
  ): { readonly e: LbVmEntry; readonly nic: FakeNic } | undefined {
    if (scaleSet !== undefined) {
      const e = this.lbs.get(this.lbKey(rg, '', scaleSet, instanceId));
      const n = e?.nics.find((x) => x.name.toLowerCase() === nic);
      return e !== undefined && n !== undefined ? { e, nic: n } : undefined;
    }
    for (const e of this.lbs.values()) {
      if (e.scaleSet !== undefined || e.resourceGroup.toLowerCase() !== rg) continue;
      const n = e.nics.find((x) => x.name.toLowerCase() === nic);
      if (n !== undefined) return { e, nic: n };
    }
    return undefined;
  }

  private lbKey(rg: string, name: string, scaleSet?: string, instanceId?: string): string {
    return scaleSet !== undefined
      ? `${rg.toLowerCase()}/vmss/${scaleSet.toLowerCase()}/${instanceId}`
      : `${rg.toLowerCase()}/vm/${name.toLowerCase()}`;
  }

  private async handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const u = new URL(req.url ?? '/', this.url);
    const path = u.pathname.toLowerCase();
    const chunks: Buffer[] = [];
    for await (const c of req) chunks.push(c as Buffer);
    const body = Buffer.concat(chunks);
    const method = req.method ?? 'GET';
    let scriptBytes: number | undefined;
    const send = (status: number, payload: unknown, headers: Record<string, string> = {}): void => {
      this.requests.push({
        method,
        path,
        query: u.search,
        status,
        at: Date.now(),
        ...(scriptBytes !== undefined ? { scriptBytes } : {}),
      });
      const text =
        payload === undefined ? '' : Buffer.isBuffer(payload) ? payload : JSON.stringify(payload);
      res.writeHead(status, {
        ...(Buffer.isBuffer(payload) ? {} : { 'content-type': 'application/json; charset=utf-8' }),
        'x-ms-request-id': randomUUID(),
        ...headers,
      });
      res.end(text);
    };
    const armError = (status: number, code: string, message: string, headers = {}): void =>
      send(status, { error: { code, message } }, headers);

    try {
      // Faults first: they stand for the service refusing before doing anything.
      const fault = this.faults.find(
        (f) => f.times > 0 && f.path.test(path) && (f.method === undefined || f.method === method),
      );
      if (fault !== undefined) {
        fault.times--;
        armError(
          fault.status,
          fault.code ?? (fault.status === 429 ? 'TooManyRequests' : 'InjectedFault'),
          `injected ${fault.status}`,
          fault.retryAfterSeconds !== undefined
            ? { 'retry-after': String(fault.retryAfterSeconds) }
            : {},
        );
        return;
      }

      if (path.startsWith(`/${FAKE_STORAGE_ACCOUNT}`)) {
        this.handleBlob(req, u, path, method, body, send);
        return;
      }

      const auth = req.headers.authorization ?? '';
      if (!auth.startsWith('Bearer ')) {
        armError(401, 'AuthenticationFailed', 'missing bearer token');
        return;
      }
      if (!this.acceptToken(auth.slice('Bearer '.length))) {
        armError(401, 'InvalidAuthenticationToken', 'The access token is invalid or expired.');
        return;
      }
      const aks = this.managedClusters.handle(method, path);
      if (aks !== null) {
        send(aks.status, aks.body);
        return;
      }

      let m: RegExpExecArray | null;
      // Async operation status and result (Location) of a run command.
      m =
        /^\/subscriptions\/[^/]+\/providers\/microsoft\.compute\/locations\/[^/]+\/operations\/([^/]+)$/.exec(
          path,
        );
      if (m !== null && method === 'GET') {
        const op = this.operations.get(m[1] ?? '');
        if (op === undefined) {
          armError(404, 'NotFound', 'no such operation');
          return;
        }
        if (u.searchParams.get('monitor') === 'true') {
          if (op.status === 'InProgress') {
            send(202, undefined, { 'retry-after': '0' });
            return;
          }
          if (op.status === 'Failed') {
            send(200, { status: 'Failed', error: op.error });
            return;
          }
          send(200, op.result);
          return;
        }
        send(200, {
          name: op.id,
          status: op.status,
          startTime: new Date().toISOString(),
          ...(op.error !== undefined ? { error: op.error } : {}),
        });
        return;
      }

      const base = '^\\/subscriptions\\/([^/]+)\\/resourcegroups\\/([^/]+)\\/providers';
      // Uniform: VMSS VMs (with instance view) and VMSS NICs.
      m = new RegExp(
        `${base}\\/microsoft\\.compute\\/virtualmachinescalesets\\/([^/]+)\\/virtualmachines$`,
      ).exec(path);
      if (m !== null && method === 'GET') {
        const ss = this.scaleSets.get(key(m[2] ?? '', m[3] ?? ''));
        if (ss === undefined) {
          armError(404, 'ResourceNotFound', 'scale set not found');
          return;
        }
        if (ss.orchestration !== 'uniform') {
          armError(400, 'OperationNotAllowed', 'VMSS VM APIs are not supported for Flexible');
          return;
        }
        const items = [...ss.instances.values()].map((i) => this.vmssVmJson(ss, i));
        this.page(u, items, send);
        return;
      }
      m = new RegExp(
        `${base}\\/microsoft\\.compute\\/virtualmachinescalesets\\/([^/]+)\\/networkinterfaces$`,
      ).exec(path);
      if (m !== null && method === 'GET') {
        const ss = this.scaleSets.get(key(m[2] ?? '', m[3] ?? ''));
        if (ss === undefined) {
          armError(404, 'ResourceNotFound', 'scale set not found');
          return;
        }
        const items = [...ss.instances.values()].map((i) =>
          this.nicJson(ss, i, `${this.vmssId(ss)}/virtualMachines/${i.instanceId}`),
        );
        this.page(u, items, send);
        return;
      }
      // Flexible: VMs filtered by scale set; NICs of a resource group.
      m = new RegExp(`${base}\\/microsoft\\.compute\\/virtualmachines$`).exec(path);
      if (m !== null && method === 'GET') {
        const rg = m[2] ?? '';
        const filter = u.searchParams.get('$filter') ?? '';
        const fm = /virtualMachineScaleSet\/id'?\s+eq\s+'([^']+)'/i.exec(filter);
        const items: unknown[] = [];
        for (const ss of this.scaleSets.values()) {
          if (ss.orchestration !== 'flexible' || ss.resourceGroup.toLowerCase() !== rg) continue;
          if (fm !== null && fm[1]?.toLowerCase() !== this.vmssId(ss).toLowerCase()) continue;
          for (const i of ss.instances.values()) items.push(this.flexVmJson(ss, i));
        }
        this.page(u, items, send);
        return;
      }
      m = new RegExp(`${base}\\/microsoft\\.network\\/networkinterfaces$`).exec(path);
      if (m !== null && method === 'GET') {
        const rg = m[2] ?? '';
        const items: unknown[] = [];
        for (const ss of this.scaleSets.values()) {
          if (ss.orchestration !== 'flexible' || ss.resourceGroup.toLowerCase() !== rg) continue;
          for (const i of ss.instances.values()) {
            items.push(this.nicJson(ss, i, this.flexVmId(ss, i)));
          }
        }
        this.page(u, items, send);
        return;
      }
      // An LB VM (standalone or scale set instance) and its NICs, by name.
      m = new RegExp(`${base}\\/microsoft\\.compute\\/virtualmachines\\/([^/]+)$`).exec(path);
      if (m !== null && method === 'GET') {
        const lb = this.lbs.get(this.lbKey(m[2] ?? '', m[3] ?? ''));
        if (lb === undefined) {
          armError(
            404,
            'ResourceNotFound',
            `The Resource 'Microsoft.Compute/virtualMachines/${m[3]}' was not found.`,
          );
          return;
        }
        send(200, this.lbVmJson(lb));
        return;
      }
      m = new RegExp(
        `${base}\\/microsoft\\.compute\\/virtualmachinescalesets\\/([^/]+)\\/virtualmachines\\/([^/]+)$`,
      ).exec(path);
      if (m !== null && method === 'GET') {
        const lb = this.lbs.get(this.lbKey(m[2] ?? '', '', m[3] ?? '', m[4] ?? ''));
        if (lb === undefined) {
          armError(404, 'ResourceNotFound', 'scale set VM not found');
          return;
        }
        send(200, this.lbVmJson(lb));
        return;
      }
      m = new RegExp(`${base}\\/microsoft\\.network\\/networkinterfaces\\/([^/]+)$`).exec(path);
      const mn = new RegExp(
        `${base}\\/microsoft\\.compute\\/virtualmachinescalesets\\/([^/]+)\\/virtualmachines\\/([^/]+)\\/networkinterfaces\\/([^/]+)$`,
      ).exec(path);
      if ((m !== null || mn !== null) && method === 'GET') {
        const found =
          mn !== null
            ? this.lbWithNic(mn[2] ?? '', mn[5] ?? '', mn[3] ?? '', mn[4] ?? '')
            : this.lbWithNic(m?.[2] ?? '', m?.[3] ?? '');
        if (found === undefined) {
          armError(404, 'NotFound', 'network interface not found');
          return;
        }
        send(200, this.lbNicJson(found.e, found.nic));
        return;
      }
      // Action Run Command on a standalone VM or a uniform scale set instance.
      m = new RegExp(
        `${base}\\/microsoft\\.compute\\/virtualmachines\\/([^/]+)\\/runcommand$`,
      ).exec(path);
      const mv = new RegExp(
        `${base}\\/microsoft\\.compute\\/virtualmachinescalesets\\/([^/]+)\\/virtualmachines\\/([^/]+)\\/runcommand$`,
      ).exec(path);
      if ((m !== null || mv !== null) && method === 'POST') {
        const lbKey =
          mv !== null
            ? this.lbKey(mv[2] ?? '', '', mv[3] ?? '', mv[4] ?? '')
            : this.lbKey(m?.[2] ?? '', m?.[3] ?? '');
        const lb = this.lbs.get(lbKey);
        if (lb === undefined) {
          armError(404, 'ResourceNotFound', 'VM not found');
          return;
        }
        const input = JSON.parse(body.toString('utf8')) as {
          commandId?: string;
          script?: string[];
        };
        if (input.commandId !== 'RunShellScript' || !Array.isArray(input.script)) {
          armError(400, 'InvalidParameter', 'commandId must be RunShellScript with script[]');
          return;
        }
        const script = input.script.join('\n');
        scriptBytes = Buffer.byteLength(script);
        if (scriptBytes > this.maxScriptBytes) {
          armError(
            400,
            'InvalidParameter',
            `script is ${scriptBytes} bytes; at most ${this.maxScriptBytes} are accepted`,
          );
          return;
        }
        if (lb.running || lb.busyUntil > Date.now()) {
          armError(
            409,
            'Conflict',
            'Run command extension execution is in progress. Please wait for completion before invoking a run command.',
          );
          return;
        }
        const op: Operation = { id: randomUUID(), status: 'InProgress' };
        this.operations.set(op.id, op);
        lb.running = true;
        const p = this.execute(lb, op, script).finally(() => {
          lb.running = false;
          this.running.delete(p);
        });
        this.running.add(p);
        const opUrl = `${this.url}/subscriptions/${m?.[1] ?? mv?.[1]}/providers/Microsoft.Compute/locations/${LOCATION}/operations/${op.id}`;
        send(202, undefined, {
          'azure-asyncoperation': `${opUrl}?api-version=2026-03-01`,
          location: `${opUrl}?monitor=true&api-version=2026-03-01`,
          'retry-after': '0',
        });
        return;
      }
      armError(404, 'NotFound', `the fake does not serve ${method} ${path}`);
    } catch (err) {
      armError(500, 'InternalServerError', err instanceof Error ? err.message : String(err));
    }
  }

  private async execute(lb: LbVmEntry, op: Operation, script: string): Promise<void> {
    const started = Date.now();
    if (lb.failNext > 0) {
      lb.failNext--;
      await sleep(Math.max(this.runCommandMinMs, 20));
      op.status = 'Failed';
      op.error = {
        code: 'VMAgentStatusCommunicationError',
        message: 'VM has reported a failure when processing extension RunCommandLinux.',
      };
      return;
    }
    // The VM "trusts" the fake's certificate, as a real VM trusts public CAs,
    // so staged payloads on https URLs download.
    const r = await lb.vm.exec(script, {
      timeoutMs: 120_000,
      env: { CURL_CA_BUNDLE: this.caFile },
    });
    const left = this.runCommandMinMs - (Date.now() - started);
    if (left > 0) await sleep(left);
    const ok = r.code === 0;
    op.result = {
      value: [
        {
          code: `ProvisioningState/${ok ? 'succeeded' : 'failed'}`,
          level: ok ? 'Info' : 'Error',
          displayStatus: ok ? 'Provisioning succeeded' : 'Provisioning failed',
          message: `Enable ${ok ? 'succeeded' : 'failed'}: \n[stdout]\n${tail(r.stdout)}\n[stderr]\n${tail(r.stderr)}\n`,
        },
      ],
    };
    op.status = 'Succeeded';
  }

  private handleBlob(
    req: IncomingMessage,
    u: URL,
    path: string,
    method: string,
    body: Buffer,
    send: (status: number, payload: unknown, headers?: Record<string, string>) => void,
  ): void {
    const rest = path.slice(FAKE_STORAGE_ACCOUNT.length + 2);
    const storageError = (status: number, code: string): void => {
      const xml = `<?xml version="1.0" encoding="utf-8"?><Error><Code>${code}</Code><Message>${code}</Message></Error>`;
      send(status, Buffer.from(xml), {
        'content-type': 'application/xml',
        'x-ms-error-code': code,
      });
    };
    if (method === 'POST' && u.searchParams.get('comp') === 'userdelegationkey') {
      if (!(req.headers.authorization ?? '').startsWith('Bearer ')) {
        storageError(403, 'AuthenticationFailed');
        return;
      }
      const start = new Date().toISOString().replace(/\.\d+Z$/, 'Z');
      const expiry =
        /<Expiry>([^<]+)<\/Expiry>/.exec(body.toString('utf8'))?.[1] ??
        new Date(Date.now() + 3_600_000).toISOString();
      const xml =
        '<?xml version="1.0" encoding="utf-8"?><UserDelegationKey>' +
        `<SignedOid>${this.delegationOid}</SignedOid><SignedTid>${randomUUID()}</SignedTid>` +
        `<SignedStart>${start}</SignedStart><SignedExpiry>${expiry}</SignedExpiry>` +
        '<SignedService>b</SignedService><SignedVersion>2025-01-05</SignedVersion>' +
        `<Value>${randomBytes(32).toString('base64')}</Value></UserDelegationKey>`;
      send(200, Buffer.from(xml), { 'content-type': 'application/xml' });
      return;
    }
    const [container, ...nameParts] = rest.split('/');
    const blobKey = `${container}/${nameParts.join('/')}`;
    if (container === undefined || nameParts.length === 0) {
      storageError(400, 'InvalidUri');
      return;
    }
    if (method === 'PUT') {
      if (!(req.headers.authorization ?? '').startsWith('Bearer ')) {
        storageError(403, 'AuthenticationFailed');
        return;
      }
      if (req.headers['x-ms-blob-type'] !== 'BlockBlob') {
        storageError(400, 'InvalidBlobType');
        return;
      }
      this.blobs.set(blobKey, body);
      send(201, Buffer.alloc(0), {
        etag: `"0x${randomBytes(8).toString('hex')}"`,
        'last-modified': new Date().toUTCString(),
      });
      return;
    }
    if (method === 'DELETE') {
      if (!this.blobs.delete(blobKey)) {
        storageError(404, 'BlobNotFound');
        return;
      }
      send(202, Buffer.alloc(0));
      return;
    }
    if (method === 'GET') {
      // A SAS-like check: a signature from a delegation key this fake issued,
      // read permission, not expired. (The HMAC itself is not recomputed.)
      const q = u.searchParams;
      const expires = Date.parse(q.get('se') ?? '');
      if (
        q.get('sig') === null ||
        !(q.get('sp') ?? '').includes('r') ||
        q.get('skoid') !== this.delegationOid ||
        !(expires > Date.now())
      ) {
        storageError(403, 'AuthenticationFailed');
        return;
      }
      const blob = this.blobs.get(blobKey);
      if (blob === undefined) {
        storageError(404, 'BlobNotFound');
        return;
      }
      let out = blob;
      if (this.tamperBlobReads) {
        out = Buffer.from(blob);
        // Flip a byte of the base64 body (the last line), not of the header.
        const at = out.length - 10;
        out[at] = out[at] === 0x41 ? 0x42 : 0x41;
      }
      send(200, out, { 'content-type': 'application/octet-stream' });
      return;
    }
    storageError(405, 'UnsupportedHttpVerb');
  }

  private page(
    u: URL,
    items: readonly unknown[],
    send: (status: number, payload: unknown) => void,
  ): void {
    const skip = Number(u.searchParams.get('$skiptoken') ?? '0') || 0;
    const value = items.slice(skip, skip + this.pageSize);
    let nextLink: string | undefined;
    if (skip + this.pageSize < items.length) {
      const next = new URL(u.toString());
      next.searchParams.set('$skiptoken', String(skip + this.pageSize));
      nextLink = next.toString();
    }
    send(200, { value, ...(nextLink !== undefined ? { nextLink } : {}) });
  }

  private lbVmId(e: LbVmEntry): string {
    const rg = `/subscriptions/${e.subscriptionId}/resourceGroups/${e.resourceGroup}/providers`;
    return e.scaleSet !== undefined
      ? `${rg}/Microsoft.Compute/virtualMachineScaleSets/${e.scaleSet}/virtualMachines/${e.instanceId}`
      : `${rg}/Microsoft.Compute/virtualMachines/${e.name}`;
  }

  private lbNicId(e: LbVmEntry, nic: FakeNic): string {
    return e.scaleSet !== undefined
      ? `${this.lbVmId(e)}/networkInterfaces/${nic.name}`
      : `/subscriptions/${e.subscriptionId}/resourceGroups/${e.resourceGroup}/providers/Microsoft.Network/networkInterfaces/${nic.name}`;
  }

  private lbVmJson(e: LbVmEntry): unknown {
    return {
      id: this.lbVmId(e),
      name: e.scaleSet !== undefined ? `${e.scaleSet}_${e.instanceId}` : e.name,
      ...(e.instanceId !== undefined ? { instanceId: e.instanceId } : {}),
      location: LOCATION,
      properties: {
        provisioningState: 'Succeeded',
        networkProfile: {
          networkInterfaces: e.nics.map((n) => ({
            id: this.lbNicId(e, n),
            ...(n.primary !== undefined ? { properties: { primary: n.primary } } : {}),
          })),
        },
      },
    };
  }

  private lbNicJson(e: LbVmEntry, nic: FakeNic): unknown {
    const id = this.lbNicId(e, nic);
    return {
      id,
      name: nic.name,
      location: LOCATION,
      properties: {
        provisioningState: 'Succeeded',
        ...(nic.primary !== undefined ? { primary: nic.primary } : {}),
        virtualMachine: { id: this.lbVmId(e) },
        ipConfigurations: [
          {
            id: `${id}/ipConfigurations/ipconfig1`,
            name: 'ipconfig1',
            properties: {
              primary: true,
              privateIPAddress: nic.ip,
              privateIPAllocationMethod: 'Dynamic',
            },
          },
        ],
      },
    };
  }

  private vmssId(ss: ScaleSet): string {
    return `/subscriptions/${ss.subscriptionId}/resourceGroups/${ss.resourceGroup}/providers/Microsoft.Compute/virtualMachineScaleSets/${ss.name}`;
  }

  private flexVmId(ss: ScaleSet, i: FakeInstance): string {
    return `/subscriptions/${ss.subscriptionId}/resourceGroups/${ss.resourceGroup}/providers/Microsoft.Compute/virtualMachines/${i.name}`;
  }

  private statuses(i: FakeInstance): unknown[] {
    return [
      {
        code: `ProvisioningState/${i.provisioningState.toLowerCase()}`,
        level: 'Info',
        displayStatus: `Provisioning ${i.provisioningState.toLowerCase()}`,
      },
      { code: `PowerState/${i.power}`, level: 'Info', displayStatus: `VM ${i.power}` },
    ];
  }

  private vmssVmJson(ss: ScaleSet, i: FakeInstance): unknown {
    return {
      id: `${this.vmssId(ss)}/virtualMachines/${i.instanceId}`,
      name: `${ss.name}_${i.instanceId}`,
      instanceId: i.instanceId,
      location: LOCATION,
      properties: {
        provisioningState: i.provisioningState,
        osProfile: { computerName: i.name },
        instanceView: { statuses: this.statuses(i) },
      },
    };
  }

  private flexVmJson(ss: ScaleSet, i: FakeInstance): unknown {
    return {
      id: this.flexVmId(ss, i),
      name: i.name,
      location: LOCATION,
      properties: {
        provisioningState: i.provisioningState,
        virtualMachineScaleSet: { id: this.vmssId(ss) },
        networkProfile: {
          networkInterfaces: [
            {
              id: `/subscriptions/${ss.subscriptionId}/resourceGroups/${ss.resourceGroup}/providers/Microsoft.Network/networkInterfaces/${i.name}-nic`,
            },
          ],
        },
        instanceView: { statuses: this.statuses(i) },
      },
    };
  }

  private nicJson(ss: ScaleSet, i: FakeInstance, vmId: string): unknown {
    const nicId =
      ss.orchestration === 'uniform'
        ? `${vmId}/networkInterfaces/${ss.name}-nic`
        : `/subscriptions/${ss.subscriptionId}/resourceGroups/${ss.resourceGroup}/providers/Microsoft.Network/networkInterfaces/${i.name}-nic`;
    return {
      id: nicId,
      name: `${i.name}-nic`,
      location: LOCATION,
      properties: {
        provisioningState: 'Succeeded',
        primary: true,
        virtualMachine: { id: vmId },
        ipConfigurations: [
          {
            id: `${nicId}/ipConfigurations/ipconfig1`,
            name: 'ipconfig1',
            properties: {
              primary: true,
              privateIPAddress: i.ip,
              privateIPAllocationMethod: 'Dynamic',
            },
          },
        ],
      },
    };
  }
}

function key(rg: string, name: string): string {
  return `${rg.toLowerCase()}/${name.toLowerCase()}`;
}

function escapeRegExp(s: string): string {
  return s.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
}

function tail(s: string): string {
  const b = Buffer.from(s, 'utf8');
  return b.length <= OUTPUT_LIMIT ? s : b.subarray(b.length - OUTPUT_LIMIT).toString('utf8');
}

function sleep(ms: number): Promise<void> {
  return new Promise((r) => setTimeout(r, ms));
}
