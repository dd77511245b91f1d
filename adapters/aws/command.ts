/*
 * The shell text an SSM Run Command (AWS-RunShellScript) carries to an LB.
 * Scripts and payloads travel as quoted heredocs, so nothing in them is
 * expanded by the shell; every argument is single-quoted. The wrapper keeps
 * only the script's result line on stdout, because GetCommandInvocation
 * returns just the first 24,000 characters of output and the result line is
 * the last one.
 */

/** Single-quote a word for POSIX sh. */
export function shellQuote(word: string): string {
  return `'${word.replace(/'/g, `'\\''`)}'`;
}

/** Where the apply script gets its payload. */
export type PayloadSource =
  | { readonly kind: 'inline'; readonly text: string }
  | { readonly kind: 'url'; readonly url: string; readonly timeoutSeconds: number };

function heredoc(file: string, marker: string, text: string): string {
  if (text.split('\n').includes(marker)) {
    throw new Error(`text contains the heredoc marker ${marker}`);
  }
  return `cat >"$d/${file}" <<'${marker}'\n${text}${text.endsWith('\n') ? '' : '\n'}${marker}\n`;
}

const PROLOGUE =
  'set -u\n' +
  // Shell parameter expansion, not a JS template: TMPDIR falls back to /tmp.
  `d=$(mktemp -d "$\{TMPDIR:-/tmp}/lbsync.XXXXXX") || exit 70\n` +
  'trap \'rm -rf "$d"\' EXIT\n';

function runScript(args: readonly string[]): string {
  return (
    `sh "$d/run.sh" ${args.map(shellQuote).join(' ')} >"$d/out" 2>"$d/err"\n` +
    'rc=$?\n' +
    'tail -c 4000 "$d/err" >&2\n' +
    `if grep -q '"lbsync' "$d/out"; then grep '"lbsync' "$d/out" | tail -n 1; else tail -c 2000 "$d/out"; fi\n` +
    'exit $rc\n'
  );
}

/** A command that runs `script` with `args` (status, drain: no payload). */
export function scriptCommand(script: string, args: readonly string[]): string {
  return PROLOGUE + heredoc('run.sh', 'LBSYNC_SCRIPT_EOF', script) + runScript(args);
}

/** A command that delivers a payload (inline or by URL) and runs the apply script on it. */
export function applyCommand(
  applyScript: string,
  args: readonly string[],
  payload: PayloadSource,
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
      '  tail -c 2000 "$d/curl" >&2\n' +
      `  echo ${shellQuote(failed)}\n` +
      '  exit 5\n' +
      'fi\n';
  }
  return (
    PROLOGUE +
    heredoc('run.sh', 'LBSYNC_SCRIPT_EOF', applyScript) +
    fetch +
    runScript(['--payload', '$PAYLOAD', ...args]).replace(`'$PAYLOAD'`, '"$d/payload"')
  );
}
