/*
 * The shell text an Azure action Run Command (RunShellScript) carries to an
 * LB VM. Scripts and payloads travel as quoted heredocs, so the shell expands
 * nothing in them; every argument is single-quoted. The wrapper prints only
 * the apply script's result line on stdout (and a short stderr tail),
 * because Run Command returns just the last 4,096 bytes of each stream.
 */

/** Single-quote a word for POSIX sh. */
export function shellQuote(word: string): string {
  return `'${word.replace(/'/g, `'\\''`)}'`;
}

/** Where the apply script gets its payload. */
export type PayloadDelivery =
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
  // biome-ignore lint/suspicious/noTemplateCurlyInString: shell parameter expansion, not a JS template
  'd=$(mktemp -d "${TMPDIR:-/tmp}/lbsync.XXXXXX") || exit 70\n' +
  'trap \'rm -rf "$d"\' EXIT\n';

function runScript(args: string): string {
  return (
    `sh "$d/run.sh" ${args} >"$d/out" 2>"$d/err"\n` +
    'rc=$?\n' +
    'tail -c 1500 "$d/err" >&2\n' +
    `if grep -q '"lbsync' "$d/out"; then grep '"lbsync' "$d/out" | tail -n 1; else tail -c 1500 "$d/out"; fi\n` +
    'exit $rc\n'
  );
}

/** A command that runs `script` with `args` and no payload (`--status`). */
export function scriptCommand(script: string, args: readonly string[]): string {
  return (
    PROLOGUE +
    heredoc('run.sh', 'LBSYNC_SCRIPT_EOF', script) +
    runScript(args.map(shellQuote).join(' '))
  );
}

/** A command that delivers a payload (inline or by URL) and runs the apply script on it. */
export function applyCommand(
  applyScript: string,
  args: readonly string[],
  payload: PayloadDelivery,
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
      '  tail -c 1000 "$d/curl" >&2\n' +
      `  echo ${shellQuote(failed)}\n` +
      '  exit 5\n' +
      'fi\n';
  }
  return (
    PROLOGUE +
    heredoc('run.sh', 'LBSYNC_SCRIPT_EOF', applyScript) +
    fetch +
    runScript(`--payload "$d/payload" ${args.map(shellQuote).join(' ')}`)
  );
}

/**
 * Split Run Command's message into the two streams. RunShellScript on Linux
 * reports `Enable succeeded: \n[stdout]\n...\n[stderr]\n...`.
 */
export function splitRunCommandMessage(message: string): {
  readonly stdout: string;
  readonly stderr: string;
} {
  const o = message.indexOf('[stdout]\n');
  const e = message.lastIndexOf('\n[stderr]\n');
  if (o < 0) return { stdout: message, stderr: '' };
  const stdout = message.slice(o + '[stdout]\n'.length, e > o ? e : undefined);
  const stderr = e > o ? message.slice(e + '\n[stderr]\n'.length) : '';
  return { stdout, stderr };
}
