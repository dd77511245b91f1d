import { z } from 'zod';

/*
 * Per-Service settings from annotations under `lbsync.io/`. Values are checked
 * strictly and never guessed: a bad value of a known key refuses the Service
 * (its message names the key and the allowed values), and a key lbsync does not
 * know is reported as a warning — most often a typo the user wants to hear of.
 */

/** Every annotation key lbsync reads starts with this. */
export const ANNOTATION_PREFIX = 'lbsync.io/';

/** HAProxy refuses timers above this many milliseconds (2^31 - 1). */
export const HAPROXY_MAX_TIMER_MS = 2_147_483_647;

const UNIT_MS = { ms: 1, s: 1_000, m: 60_000, h: 3_600_000, d: 86_400_000 } as const;

/** Milliseconds of an HAProxy duration (`500ms`, `30s`, `5m`, `1h`, `2d`); null when malformed or out of range. */
export function parseDuration(text: string): number | null {
  const m = /^(\d{1,10})(ms|s|m|h|d)$/.exec(text);
  if (m === null) return null;
  const ms = Number(m[1]) * UNIT_MS[m[2] as keyof typeof UNIT_MS];
  return ms >= 1 && ms <= HAPROXY_MAX_TIMER_MS ? ms : null;
}

const DURATION_HELP =
  'is not an HAProxy duration: digits then ms, s, m, h or d (e.g. 30s), from 1ms to 2147483647ms (about 24.8 days)';

const oneOf = <const T extends readonly [string, ...string[]]>(values: T) =>
  z.enum(values, { error: `is not one of ${values.join(', ')}` }).optional();
const duration = z
  .string()
  .refine((v) => parseDuration(v) !== null, DURATION_HELP)
  .optional();

const annotationSchema = z.object({
  'lbsync.io/mode': oneOf(['tcp', 'http']),
  'lbsync.io/proxy-protocol': oneOf(['none', 'v1', 'v2']),
  'lbsync.io/profile': oneOf(['web', 'api', 'iot']),
  'lbsync.io/timeout-connect': duration,
  'lbsync.io/timeout-client': duration,
  'lbsync.io/timeout-server': duration,
  'lbsync.io/timeout-tunnel': duration,
});

/** The annotation keys lbsync understands. */
export const KNOWN_ANNOTATIONS: readonly string[] = Object.keys(annotationSchema.shape);

/** What a Service's annotations ask for; absent fields fall back to the defaults. */
export interface AnnotationSettings {
  readonly mode?: 'tcp' | 'http';
  readonly proxyProtocol?: 'none' | 'v1' | 'v2';
  readonly profile?: 'web' | 'api' | 'iot';
  readonly timeouts?: {
    readonly connect?: string;
    readonly client?: string;
    readonly server?: string;
    readonly tunnel?: string;
  };
}

/** One annotation lbsync could not use. */
export interface AnnotationProblem {
  readonly key: string;
  /** true: the Service is refused; false: reported, the Service still syncs. */
  readonly blocking: boolean;
  readonly message: string;
}

/** Read the `lbsync.io/` annotations of one Service. */
export function readAnnotations(annotations: Readonly<Record<string, string>> | undefined): {
  readonly settings: AnnotationSettings;
  readonly problems: readonly AnnotationProblem[];
} {
  const ours = Object.entries(annotations ?? {}).filter(([k]) => k.startsWith(ANNOTATION_PREFIX));
  const problems: AnnotationProblem[] = ours
    .filter(([k]) => !KNOWN_ANNOTATIONS.includes(k))
    .map(([key]) => ({
      key,
      blocking: false,
      message: `annotation ${key} is unknown and ignored (known: ${KNOWN_ANNOTATIONS.join(', ')})`,
    }));
  const parsed = annotationSchema.safeParse(Object.fromEntries(ours));
  if (!parsed.success) {
    for (const issue of parsed.error.issues) {
      const key = String(issue.path[0]);
      const value = JSON.stringify(annotations?.[key] ?? '');
      problems.push({
        key,
        blocking: true,
        message: `annotation ${key}: ${value} ${issue.message}`,
      });
    }
    return { settings: {}, problems };
  }
  const a = parsed.data;
  const timeouts = stripUndefined({
    connect: a['lbsync.io/timeout-connect'],
    client: a['lbsync.io/timeout-client'],
    server: a['lbsync.io/timeout-server'],
    tunnel: a['lbsync.io/timeout-tunnel'],
  });
  const settings: AnnotationSettings = {
    ...stripUndefined({
      mode: a['lbsync.io/mode'],
      proxyProtocol: a['lbsync.io/proxy-protocol'],
      profile: a['lbsync.io/profile'],
    }),
    ...(Object.keys(timeouts).length > 0 ? { timeouts } : {}),
  };
  return { settings, problems };
}

function stripUndefined<T extends object>(o: T): { [K in keyof T]?: Exclude<T[K], undefined> } {
  return Object.fromEntries(Object.entries(o).filter(([, v]) => v !== undefined)) as {
    [K in keyof T]?: Exclude<T[K], undefined>;
  };
}
