/*
 * The shell text a Run Command-style transport (SSM, Azure Run Command)
 * carries to an LB: the apply script and its payload travel as quoted
 * heredocs, so the shell expands nothing in them, and every argument is
 * single-quoted. The wrapper prints only the script's result line on stdout
 * (plus a bounded stderr tail), because these services return only part of
 * the output and the result line is the last one.
 */

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

const PROLOGUE =
  'set -u\n' +
  // biome-ignore lint/suspicious/noTemplateCurlyInString: shell parameter expansion, not a JS template
  'd=$(mktemp -d "${TMPDIR:-/tmp}/lbsync.XXXXXX") || exit 70\n' +
  'trap \'rm -rf "$d"\' EXIT\n';

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
    PROLOGUE +
    heredoc('run.sh', 'LBSYNC_SCRIPT_EOF', script) +
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
    const failed = JSON.stringify({
      lbsync: 1,
      result: 'failed',
      generation: 0,
      sha256: '',
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
    PROLOGUE +
    heredoc('run.sh', 'LBSYNC_SCRIPT_EOF', applyScript) +
    fetch +
    runScript(`--payload "$d/payload" ${args.map(shellQuote).join(' ')}`, limits)
  );
}
