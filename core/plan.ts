import type { LiveState, Worker } from './model.js';
import type { RenderedConfig } from './render.js';
import type { CoreSpec } from './spec.js';

/**
 * What a sync would do to one LB, computed without I/O.
 *
 *   live sha == desired sha            -> noop  (in sync; no reload)
 *   guards fail and not forced         -> refuse
 *   otherwise                          -> apply
 *
 * `added`/`removed` are exact when the transport could read the live worker
 * ids; otherwise they are null and only counts are known.
 */
export interface LbPlan {
  readonly action: 'apply' | 'noop' | 'refuse';
  readonly reason: string;
  readonly added: readonly string[] | null;
  readonly removed: readonly string[] | null;
  readonly draining: readonly string[];
  readonly liveServers: number;
  readonly desiredServers: number;
  /** Config sections (`backend be_http`, `global` …) that differ, when the live text is known. */
  readonly sectionsChanged: readonly string[] | null;
  /** Server changes the LB made (a real sync: the LB plans; counts from its result line). */
  readonly changes?: { readonly added: number; readonly removed: number; readonly drained: number };
}

/** Inputs to `planLb`. */
export interface PlanInput {
  readonly desired: RenderedConfig;
  /** Canonical workers (see `canonicalWorkers`) the config was rendered from. */
  readonly workers: readonly Worker[];
  readonly live: LiveState;
  readonly guards: CoreSpec['guards'];
  readonly serviceCount: number;
  readonly force: boolean;
  /** How this caller forces past a guard, appended to a refusal (`use --force`). */
  readonly forceHint?: string;
}

/** The guard that needs no live state: too few serving workers; `null` when it passes. */
export function checkMinWorkers(
  workers: readonly Worker[],
  guards: Pick<CoreSpec['guards'], 'minWorkers'>,
): string | null {
  const serving = workers.filter((w) => w.state === 'serving').length;
  const { minWorkers } = guards;
  if (serving >= minWorkers) return null;
  return serving === 0
    ? `refusing an empty worker set (guards.minWorkers=${minWorkers})`
    : `only ${serving} serving workers, below guards.minWorkers=${minWorkers}`;
}

/** Result of checking the guards; `null` when they pass. */
export function checkGuards(input: Omit<PlanInput, 'desired' | 'force'>): string | null {
  const serving = input.workers.filter((w) => w.state === 'serving');
  const { maxRemovalPercent } = input.guards;
  const few = checkMinWorkers(input.workers, input.guards);
  if (few !== null) return few;
  const liveWorkers =
    input.live.workerIds?.length ??
    (input.serviceCount > 0 ? Math.floor(input.live.servers / input.serviceCount) : 0);
  if (liveWorkers === 0) return null;
  let lost: number;
  if (input.live.workerIds !== undefined) {
    const keep = new Set(serving.map((w) => w.id));
    lost = input.live.workerIds.filter((id) => !keep.has(id)).length;
  } else {
    lost = Math.max(0, liveWorkers - serving.length);
  }
  const pct = (lost / liveWorkers) * 100;
  if (pct > maxRemovalPercent) {
    return `would remove ${lost} of ${liveWorkers} live workers (${pct.toFixed(0)}% > guards.maxRemovalPercent=${maxRemovalPercent})`;
  }
  return null;
}

/** Plan one LB: noop when in sync, refuse when a guard trips (unless forced), else apply. */
export function planLb(input: PlanInput): LbPlan {
  const { desired, live, workers } = input;
  const draining = workers.filter((w) => w.state === 'draining').map((w) => w.id);
  let added: string[] | null = null;
  let removed: string[] | null = null;
  if (live.workerIds !== undefined) {
    const liveSet = new Set(live.workerIds);
    const desiredSet = new Set(workers.map((w) => w.id));
    added = workers.map((w) => w.id).filter((id) => !liveSet.has(id));
    removed = live.workerIds.filter((id) => !desiredSet.has(id)).sort();
  }
  const sectionsChanged = live.text === undefined ? null : diffSections(live.text, desired.text);
  const base = {
    added,
    removed,
    draining,
    liveServers: live.servers,
    desiredServers: desired.servers,
    sectionsChanged,
  };
  if (live.sha256 === desired.sha256) {
    return { ...base, action: 'noop', reason: 'in sync' };
  }
  const refusal = checkGuards(input);
  if (refusal !== null) {
    if (!input.force) {
      return {
        ...base,
        action: 'refuse',
        reason: `${refusal}; ${input.forceHint ?? 'use --force to apply anyway'}`,
      };
    }
    return { ...base, action: 'apply', reason: `forced past guard: ${refusal}` };
  }
  return {
    ...base,
    action: 'apply',
    reason: live.generation === 0 ? 'first sync' : 'config differs',
  };
}

/** Split a config into named sections: `global`, `defaults`, `frontend fe_x`, `backend be_x`. */
export function splitSections(text: string): ReadonlyMap<string, string> {
  const out = new Map<string, string>();
  let name = '(header)';
  let body: string[] = [];
  for (const line of text.split('\n')) {
    if (/^[a-z]/.test(line)) {
      if (body.length > 0 || out.has(name)) out.set(name, body.join('\n'));
      name = line.trim().replace(/\s+/g, ' ');
      body = [];
    } else if (!line.startsWith('#')) {
      body.push(line);
    }
  }
  out.set(name, body.join('\n'));
  return out;
}

/** Names of sections added, removed or changed between two configs, sorted. */
export function diffSections(liveText: string, desiredText: string): readonly string[] {
  const a = splitSections(liveText);
  const b = splitSections(desiredText);
  const names = new Set([...a.keys(), ...b.keys()]);
  return [...names].filter((n) => a.get(n) !== b.get(n)).sort();
}

/** Worker ids named by `server` lines of the first backend in a config. */
export function workerIdsOf(text: string): readonly string[] {
  const ids: string[] = [];
  let seenBackend = false;
  for (const line of text.split('\n')) {
    if (line.startsWith('backend ')) {
      if (seenBackend) break;
      seenBackend = true;
      continue;
    }
    const m = seenBackend ? /^\s+server\s+(\S+)\s/.exec(line) : null;
    if (m?.[1] !== undefined) ids.push(m[1]);
  }
  return ids.sort();
}
