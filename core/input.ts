import { open } from 'node:fs/promises';
import { isAlias, isNode, LineCounter, parseDocument, visit } from 'yaml';

/*
 * Reading text that may be hostile (a spec, a workers file): the size is
 * bounded before anything is parsed, and YAML is read with the core schema
 * only. What goes wrong comes back as `line L, column C: reason` problems for
 * the caller to wrap in its own typed error; nothing here throws on content.
 */

/** A bounded read: the text, or how large the file was (null when unknown, e.g. a pipe). */
export type BoundedRead =
  | { readonly kind: 'text'; readonly text: string }
  | { readonly kind: 'too-large'; readonly bytes: number | null };

/**
 * Read a UTF-8 file, refusing it once it is larger than `maxBytes`: a regular
 * file by its size before reading, anything else (a FIFO, /dev/stdin) by
 * stopping after `maxBytes + 1` bytes. Errors opening or reading are thrown
 * (they carry `code`, e.g. ENOENT).
 */
export async function readTextFileBounded(path: string, maxBytes: number): Promise<BoundedRead> {
  const handle = await open(path, 'r');
  try {
    const stat = await handle.stat();
    if (stat.isFile() && stat.size > maxBytes) return { kind: 'too-large', bytes: stat.size };
    const chunks: Buffer[] = [];
    let total = 0;
    for (;;) {
      const chunk = Buffer.alloc(Math.min(1 << 16, maxBytes + 1 - total));
      const { bytesRead } = await handle.read(chunk, 0, chunk.length, null);
      if (bytesRead === 0) break;
      chunks.push(chunk.subarray(0, bytesRead));
      total += bytesRead;
      if (total > maxBytes) return { kind: 'too-large', bytes: null };
    }
    return { kind: 'text', text: Buffer.concat(chunks, total).toString('utf8') };
  } finally {
    await handle.close();
  }
}

/** `4194304` as `4 MiB`, for size messages. */
export function formatBytes(bytes: number): string {
  if (bytes >= 1 << 20 && bytes % (1 << 20) === 0) return `${bytes / (1 << 20)} MiB`;
  if (bytes >= 1 << 20) return `${(bytes / (1 << 20)).toFixed(1)} MiB`;
  if (bytes >= 1 << 10) return `${(bytes / (1 << 10)).toFixed(1)} KiB`;
  return `${bytes} bytes`;
}

/**
 * How far aliases may expand: each alias counts the nodes it copies, and the
 * sum over the document may not exceed this. The `yaml` library's default;
 * legitimate specs reuse a few small anchors, a "billion laughs" needs millions.
 */
export const MAX_ALIAS_EXPANSION = 100;

/** Parsed YAML data, or the problems found, each `line L, column C: reason`. */
export type YamlRead =
  | { readonly ok: true; readonly data: unknown }
  | { readonly ok: false; readonly problems: readonly string[] };

/**
 * Parse one YAML document with the core schema only (strings, numbers,
 * booleans, null, maps, lists): YAML 1.1 tags (`!!omap`, `!!set`, `!!binary`,
 * `!!timestamp`), language tags (`!!js/function`) and custom ones (`!foo`)
 * are refused rather than silently read as something else. Duplicate keys,
 * several documents, unresolved aliases and alias bombs are problems too.
 */
export function parseYamlStrict(text: string): YamlRead {
  const lineCounter = new LineCounter();
  const at = (offset: number): string => {
    const pos = lineCounter.linePos(offset);
    return `line ${pos.line}, column ${pos.col}`;
  };
  let doc: ReturnType<typeof parseDocument>;
  try {
    doc = parseDocument(text, {
      schema: 'core',
      resolveKnownTags: false,
      merge: false,
      uniqueKeys: true,
      strict: true,
      prettyErrors: false,
      lineCounter,
    });
  } catch (err) {
    // The parser itself failing (e.g. nesting deep enough to exhaust the stack).
    return { ok: false, problems: [`cannot parse as YAML: ${(err as Error).message}`] };
  }
  const problems = [
    ...doc.errors.map((e) =>
      e.code === 'MULTIPLE_DOCS'
        ? `${at(e.pos[0])}: a second YAML document (---) starts here; the file must hold one`
        : `${at(e.pos[0])}: ${e.message.split('\n')[0]}`,
    ),
    ...doc.warnings.map((w) =>
      w.code === 'TAG_RESOLVE_FAILED'
        ? `${at(w.pos[0])}: unknown tag ${shortTag(w.message)}; only the YAML core schema is read (strings, numbers, booleans, null, maps, lists)`
        : `${at(w.pos[0])}: ${w.message.split('\n')[0]}`,
    ),
  ];
  if (problems.length > 0) return { ok: false, problems };

  // Resolved later by toJS() with a bare ReferenceError and no position: find them first.
  const anchors = new Set<string>();
  visit(doc, {
    Node(_key, node, path) {
      if (isAlias(node)) {
        if (!anchors.has(node.source)) {
          problems.push(
            `${at(node.range?.[0] ?? 0)}: alias *${node.source} has no anchor &${node.source} before it`,
          );
        } else if (path.some((p) => isNode(p) && p.anchor === node.source)) {
          problems.push(`${at(node.range?.[0] ?? 0)}: alias *${node.source} refers to itself`);
        }
      } else if (isNode(node) && node.anchor !== undefined) {
        anchors.add(node.anchor);
      }
    },
  });
  if (problems.length > 0) return { ok: false, problems };
  try {
    return { ok: true, data: doc.toJS({ maxAliasCount: MAX_ALIAS_EXPANSION }) as unknown };
  } catch (err) {
    const message = (err as Error).message;
    return {
      ok: false,
      problems: [
        /resource exhaustion/.test(message)
          ? `aliases expand to more than ${MAX_ALIAS_EXPANSION} nodes (an alias bomb?)`
          : `cannot convert the YAML document: ${message}`,
      ],
    };
  }
}

function shortTag(message: string): string {
  const tag = /Unresolved tag: (\S+)/.exec(message)?.[1] ?? message;
  return tag.startsWith('tag:yaml.org,2002:') ? `!!${tag.slice('tag:yaml.org,2002:'.length)}` : tag;
}
