/*
 * The shell text a Run Command-style transport (SSM, Azure Run Command)
 * carries to an LB: the script (gzip + base64, since these services count
 * the command's bytes) and the payload travel as quoted heredocs, so the
 * shell expands nothing in them, and every argument is single-quoted. The wrapper prints only the script's result line on stdout
 * (plus a bounded stderr tail), because these services return only part of
 * the output and the result line is the last one.
 *
 * The wrapper's temp dir (script copy, payload, output) lives under the LB's
 * state dir as `tmp/cmd.<pid>`, not in /tmp: a command killed with SIGKILL
 * never runs its EXIT trap, so every wrapper and every apply (under its
 * lock) sweeps the entries of processes that no longer exist.
 */
import { gzipSync } from 'node:zlib';
import { formatApplyResult, stateDirOf } from './apply-contract.js';

/** Single-quote a word for POSIX sh. */
export function shellQuote(word: string): string {
  return `'${word.replace(/'/g, `'\\''`)}'`;
}

/** Where the apply script gets its payload. */
export type PayloadDelivery =
  | { readonly kind: 'inline'; readonly text: string }
  | { readonly kind: 'url'; readonly url: string; readonly timeoutSeconds: number };

/** How much diagnostic output a command keeps, sized to the service's output limit. */
export interface OutputLimits {
  /** Bytes of the script's stderr passed on. */
  readonly stderrTail: number;
  /** Bytes of stdout passed on when the script printed no result line. */
  readonly stdoutTail: number;
  /** Bytes of curl's stderr passed on when a staged download fails. */
  readonly curlTail: number;
}

function heredoc(file: string, marker: string, text: string): string {
  if (text.split('\n').includes(marker)) {
    throw new Error(`text contains the heredoc marker ${marker}`);
  }
  return `cat >"$d/${file}" <<'${marker}'\n${text}${text.endsWith('\n') ? '' : '\n'}${marker}\n`;
}

const packed = new Map<string, string>();

/** The script as a heredoc of gzip+base64 lines that the LB unpacks into `$d/<file>`. */
function packedScript(file: string, text: string): string {
  let b64 = packed.get(text);
  if (b64 === undefined) {
    b64 = (
      gzipSync(Buffer.from(text, 'utf8'), { level: 9 })
        .toString('base64')
        .match(/.{1,76}/g) ?? []
    ).join('\n');
    // Scripts are few and long-lived (one per process); keep the cache tiny anyway.
    if (packed.size >= 8) packed.clear();
    packed.set(text, b64);
  }
  return (
    `base64 -d <<'LBSYNC_SCRIPT_EOF' | gzip -dc >"$d/${file}"\n${b64}\nLBSYNC_SCRIPT_EOF\n` +
    `[ -s "$d/${file}" ] || { echo 'lbsync: the script did not unpack' >&2; exit 70; }\n`
  );
}

function prologue(args: readonly string[]): string {
  const work = shellQuote(`${stateDirOf(args)}/tmp`);
  return (
    'set -u\n' +
    `w=${work}\n` +
    // biome-ignore lint/suspicious/noTemplateCurlyInString: shell parameter expansion, not a JS template
    '[ -d "$w" ] || mkdir -p -m 700 "$w" 2>/dev/null || w=${TMPDIR:-/tmp}\n' +
    // biome-ignore lint/suspicious/noTemplateCurlyInString: shell parameter expansion, not a JS template
    'for e in "$w"/cmd.[0-9]*; do [ -e "$e" ] || continue; p=${e##*.}; ' +
    'case $p in *[!0-9]*) continue ;; esac; kill -0 "$p" 2>/dev/null || rm -rf "$e"; done\n' +
    'd="$w/cmd.$$"\n' +
    'rm -rf "$d"; mkdir -m 700 "$d" || exit 70\n' +
    'trap \'rm -rf "$d"\' EXIT\n'
  );
}

function runScript(quotedArgs: string, limits: OutputLimits): string {
  return (
    `sh "$d/run.sh" ${quotedArgs} >"$d/out" 2>"$d/err"\n` +
    'rc=$?\n' +
    `tail -c ${limits.stderrTail} "$d/err" >&2\n` +
    `if grep -q '"lbsync' "$d/out"; then grep '"lbsync' "$d/out" | tail -n 1; else tail -c ${limits.stdoutTail} "$d/out"; fi\n` +
    'exit $rc\n'
  );
}

/** A command that runs `script` with `args` and no payload (`--status`, drain). */
export function scriptCommand(
  script: string,
  args: readonly string[],
  limits: OutputLimits,
): string {
  return (
    prologue(args) +
    packedScript('run.sh', script) +
    runScript(args.map(shellQuote).join(' '), limits)
  );
}

/** A command that delivers a payload (inline or by URL) and runs the apply script on it. */
export function applyCommand(
  applyScript: string,
  args: readonly string[],
  payload: PayloadDelivery,
  limits: OutputLimits,
): string {
  let fetch: string;
  if (payload.kind === 'inline') {
    fetch = heredoc('payload', 'LBSYNC_PAYLOAD_EOF', payload.text);
  } else {
    // The payload header carries the config's sha256, which the apply script
    // verifies, so a wrong or truncated download is refused there.
    const failed = formatApplyResult({
      result: 'failed',
      generation: 0,
      sha256: null,
      servers: 0,
      ms: 0,
      message: 'could not download the staged payload',
    });
    fetch =
      `if ! curl -fsS --retry 3 --retry-delay 1 --max-time ${payload.timeoutSeconds} -o "$d/payload" ${shellQuote(payload.url)} 2>"$d/curl"; then\n` +
      `  tail -c ${limits.curlTail} "$d/curl" >&2\n` +
      `  echo ${shellQuote(failed)}\n` +
      '  exit 5\n' +
      'fi\n';
  }
  return (
    prologue(args) +
    packedScript('run.sh', applyScript) +
    fetch +
    runScript(`--payload "$d/payload" ${args.map(shellQuote).join(' ')}`, limits)
  );
}
