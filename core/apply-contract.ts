import { TransportError } from './errors.js';
import type { LbApplySpec, CoreSpec as Spec } from './spec.js';

/*
 * The LB-side contract in one place: the arguments templates/lbsync-apply.sh
 * and templates/lbsync-drain.sh take, the JSON result lines they print, their
 * outcomes and exit codes, and the parsers every transport and test uses. The
 * scripts' headers and README.md ("The apply script") document the same
 * table; test/unit/apply-contract.test.ts runs the shipped scripts against it.
 */

// ---- apply: outcomes and exit codes ------------------------------------------

/** Every result the apply script can print, in its documented order. */
export const APPLY_OUTCOMES = [
  'applied',
  'unchanged',
  'stale',
  'status',
  'invalid',
  'rejected',
  'rolled-back',
  'failed',
  'busy',
  'refused',
] as const;

/** Results the LB-side apply script can report. */
export type ApplyOutcome = (typeof APPLY_OUTCOMES)[number];

/** The exit code the apply script ends with for each result. */
export const APPLY_EXIT_CODES: Readonly<Record<ApplyOutcome, number>> = {
  applied: 0,
  unchanged: 0,
  stale: 0,
  status: 0,
  invalid: 2,
  rejected: 3,
  'rolled-back': 4,
  failed: 5,
  busy: 6,
  refused: 7,
};

/** How an `applied` result reached HAProxy: its runtime API (no reload) or a reload. */
export type ApplyPath = 'runtime' | 'reload';

/** The JSON line the apply script prints last. */
export interface ApplyResult {
  readonly result: ApplyOutcome;
  readonly generation: number;
  readonly sha256: string | null;
  readonly servers: number;
  readonly ms: number;
  readonly message?: string;
  /** `applied` (and a rollback): which path changed HAProxy. */
  readonly via?: ApplyPath;
  /** Server lines (backend/server pairs) added, removed and newly drained (`weight 0`). */
  readonly added?: number;
  readonly removed?: number;
  readonly drained?: number;
  /** `status`: distinct server names in the live config (the live workers). */
  readonly workers?: number;
  /** `refused`: live workers, and how many of them would leave the serving set. */
  readonly liveWorkers?: number;
  readonly leaving?: number;
}

const APPLY_OUTCOME_SET: ReadonlySet<string> = new Set(APPLY_OUTCOMES);
const COUNT_FIELDS = ['added', 'removed', 'drained', 'workers', 'liveWorkers', 'leaving'] as const;

/** The last line of `stdout` that is a JSON object `accept` takes, parsed; null when none. */
function lastJsonLine(
  stdout: string,
  accept: (r: Record<string, unknown>) => boolean,
): Record<string, unknown> | null {
  const lines = stdout.split('\n');
  for (let i = lines.length - 1; i >= 0; i--) {
    const line = (lines[i] ?? '').trim();
    if (!line.startsWith('{')) continue;
    let raw: unknown;
    try {
      raw = JSON.parse(line);
    } catch {
      continue;
    }
    if (typeof raw !== 'object' || raw === null || Array.isArray(raw)) continue;
    const r = raw as Record<string, unknown>;
    if (accept(r)) return r;
  }
  return null;
}

const count = (v: unknown): number | undefined =>
  typeof v === 'number' && Number.isSafeInteger(v) && v >= 0 ? v : undefined;

/**
 * Find and validate the apply script's result: the last line of stdout that
 * is a JSON object with `"lbsync":1` and a known result. Transports may
 * prepend their own noise. Throws a permanent `TransportError` when none.
 */
export function parseApplyResult(stdout: string): ApplyResult {
  const r = lastJsonLine(
    stdout,
    (o) => o.lbsync === 1 && typeof o.result === 'string' && APPLY_OUTCOME_SET.has(o.result),
  );
  if (r === null) {
    const tail = stdout.slice(-300).trim();
    throw new TransportError(
      `the apply script printed no result line${tail ? `; output ended with: ${tail}` : ''}`,
      { retryable: false },
    );
  }
  const extra: Record<string, number | string> = {};
  if (r.via === 'runtime' || r.via === 'reload') extra.via = r.via;
  for (const k of COUNT_FIELDS) {
    const n = count(r[k]);
    if (n !== undefined) extra[k] = n;
  }
  return {
    result: r.result as ApplyOutcome,
    generation: typeof r.generation === 'number' ? r.generation : 0,
    sha256: typeof r.sha256 === 'string' && r.sha256 !== '' ? r.sha256 : null,
    servers: typeof r.servers === 'number' ? r.servers : 0,
    ms: typeof r.ms === 'number' ? r.ms : 0,
    ...(typeof r.message === 'string' && r.message !== '' ? { message: r.message } : {}),
    ...(extra as Partial<ApplyResult>),
  };
}

/** The result line in the script's own format, for results a transport makes up (a failed download). */
export function formatApplyResult(r: ApplyResult): string {
  const { result, generation, sha256, servers, ms, message, ...rest } = r;
  return JSON.stringify({
    lbsync: 1,
    result,
    generation,
    sha256: sha256 ?? '',
    servers,
    ms,
    message: message ?? '',
    ...rest,
  });
}

// ---- apply: arguments ------------------------------------------------------------

/** Where and how the apply script acts on one LB. */
export interface ApplyScriptOptions {
  readonly configPath: string;
  readonly stateDir: string;
  readonly reload: 'auto' | 'systemd' | 'master-socket';
  /** Master CLI socket; the script's default (/run/haproxy-master.sock) when omitted. */
  readonly masterSocket?: string;
  /**
   * Runtime API (stats) socket for the no-reload fast path; the script's
   * default (/run/haproxy/admin.sock) when omitted, `null` for none (every
   * change then reloads).
   */
  readonly runtimeSocket?: string | null;
  /** How long a removed server may take to lose its sessions before the apply reloads instead. */
  readonly removalTimeoutSeconds?: number;
}

/** The script's defaults, which `applyArgs` leaves out when an option is omitted. */
export const APPLY_DEFAULTS = {
  configPath: '/etc/haproxy/haproxy.cfg',
  stateDir: '/var/lib/lbsync',
  reload: 'auto',
  masterSocket: '/run/haproxy-master.sock',
  runtimeSocket: '/run/haproxy/admin.sock',
  removalTimeoutSeconds: 5,
} as const;

/** The flags an apply may be given through a transport (the GCP agent accepts only these). */
export const TRANSPORT_APPLY_FLAGS = [
  '--config',
  '--state-dir',
  '--reload',
  '--master-socket',
  '--runtime-socket',
  '--removal-timeout',
] as const;

/** The script's `--status` flag: print the live state as a `status` result. */
export const STATUS_FLAG = '--status';

/** The apply options a spec describes: `lbApply` plus the spec's `runtimeSocket`. */
export function applyScriptOptions(
  spec: Pick<Spec, 'lbApply' | 'runtimeSocket'>,
): ApplyScriptOptions {
  return { ...spec.lbApply, runtimeSocket: spec.runtimeSocket };
}

/**
 * Arguments for lbsync-apply.sh (values are schema-validated paths). The one
 * encoding every transport uses: Run Command wrappers quote them, the local
 * transport passes them to the shell, the GCP manifest carries them as
 * `arg=` lines (`manifestArgLines`).
 */
export function applyArgs(o: ApplyScriptOptions | LbApplySpec): readonly string[] {
  const opts: ApplyScriptOptions = o;
  const args = ['--config', opts.configPath, '--state-dir', opts.stateDir, '--reload', opts.reload];
  if (opts.masterSocket !== undefined) args.push('--master-socket', opts.masterSocket);
  if (opts.runtimeSocket !== undefined) {
    args.push('--runtime-socket', opts.runtimeSocket ?? 'none');
  }
  if (opts.removalTimeoutSeconds !== undefined) {
    if (!Number.isSafeInteger(opts.removalTimeoutSeconds) || opts.removalTimeoutSeconds < 0) {
      throw new TransportError(
        `removalTimeoutSeconds must be whole seconds, got ${opts.removalTimeoutSeconds}`,
      );
    }
    args.push('--removal-timeout', String(opts.removalTimeoutSeconds));
  }
  return args;
}

/** The value of `--state-dir` in an argument list, or the script's default. */
export function stateDirOf(args: readonly string[]): string {
  const i = args.indexOf('--state-dir');
  const v = i >= 0 ? args[i + 1] : undefined;
  return v !== undefined && /^\/[A-Za-z0-9._/-]{1,200}$/.test(v) ? v : APPLY_DEFAULTS.stateDir;
}

/** The apply arguments as GCP manifest lines (`arg=<word>`, in order), which the agent passes on. */
export function manifestArgLines(o: ApplyScriptOptions | LbApplySpec): readonly string[] {
  return applyArgs(o).map((a) => `arg=${a}`);
}

// ---- drain ---------------------------------------------------------------------------

/** Every result the drain script can print. */
export const DRAIN_OUTCOMES = ['drained', 'timeout', 'absent', 'failed'] as const;

/** `drained`: sessions reached 0; `timeout`: deadline hit; `absent`: the LB does not know the server. */
export type DrainOutcome = (typeof DRAIN_OUTCOMES)[number];

/** The exit code the drain script ends with for each result (2 is bad usage, reported as `failed`). */
export const DRAIN_EXIT_CODES: Readonly<Record<DrainOutcome, number>> = {
  drained: 0,
  absent: 0,
  timeout: 1,
  failed: 5,
};

/** What templates/lbsync-drain.sh reports for one LB. */
export interface DrainResult {
  readonly result: DrainOutcome;
  readonly server: string;
  /** Backends the server was set to drain in. */
  readonly backends: number;
  /** Sessions still open when the script returned. */
  readonly sessions: number;
  readonly ms: number;
  readonly message?: string;
}

/** Options of one drain. */
export interface DrainScriptOptions {
  /** Runtime API (stats) socket. */
  readonly socket: string;
  /** Master CLI socket; sessions held by old workers after a reload count too. */
  readonly masterSocket?: string;
  readonly server: string;
  readonly timeoutSeconds: number;
}

/** Arguments for lbsync-drain.sh. */
export function drainArgs(o: DrainScriptOptions): readonly string[] {
  return [
    '--socket',
    o.socket,
    ...(o.masterSocket !== undefined ? ['--master-socket', o.masterSocket] : []),
    '--server',
    o.server,
    '--timeout',
    String(o.timeoutSeconds),
  ];
}

const DRAIN_OUTCOME_SET: ReadonlySet<string> = new Set(DRAIN_OUTCOMES);

/** Find the drain script's JSON line (`{"lbsyncDrain":1,...}`), the last one on stdout. */
export function parseDrainResult(stdout: string, lb: string, stderr = ''): DrainResult {
  const r = lastJsonLine(
    stdout,
    (o) => o.lbsyncDrain === 1 && typeof o.result === 'string' && DRAIN_OUTCOME_SET.has(o.result),
  );
  if (r === null) {
    throw new TransportError(
      `${lb}: the drain script printed no result line${stderr ? `; stderr: ${stderr.slice(-300).trim()}` : ''}`,
      { retryable: false },
    );
  }
  return {
    result: r.result as DrainOutcome,
    server: typeof r.server === 'string' ? r.server : '',
    backends: typeof r.backends === 'number' ? r.backends : 0,
    sessions: typeof r.sessions === 'number' ? r.sessions : 0,
    ms: typeof r.ms === 'number' ? r.ms : 0,
    ...(typeof r.message === 'string' && r.message !== '' ? { message: r.message } : {}),
  };
}
