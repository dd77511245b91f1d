import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { loadAllYaml, type V1Node, type V1Service } from '@kubernetes/client-node';
import type { Worker } from '../../core/model.js';

/** Directory of the Kubernetes fixtures (real API shapes, as kubectl -o yaml prints them). */
export const K8S_FIXTURES = join(import.meta.dirname, '../fixtures/kubernetes');

/**
 * Load a multi-document YAML file of Kubernetes objects through the client's
 * own deserializer, so tests see what the real client hands over (Dates for
 * timestamps, typed models), not plain JSON.
 */
function loadObjects(file: string, kind: string): unknown[] {
  const objects = loadAllYaml(readFileSync(join(K8S_FIXTURES, file), 'utf8')) as {
    kind?: string;
  }[];
  for (const o of objects) {
    if (o.kind !== kind) throw new Error(`${file}: expected only ${kind} objects, got ${o.kind}`);
  }
  return objects;
}

/** Nodes from a fixture file. */
export function loadNodes(file: string): V1Node[] {
  return loadObjects(file, 'Node') as V1Node[];
}

/** Services from a fixture file. */
export function loadServices(file: string): V1Service[] {
  return loadObjects(file, 'Service') as V1Service[];
}

/** Cloud group members (core Workers) from a JSON fixture file. */
export function loadMembers(file: string): Worker[] {
  return JSON.parse(readFileSync(join(K8S_FIXTURES, file), 'utf8')) as Worker[];
}

/** One object by name from a list, failing loudly when the fixture lacks it. */
export function named<T extends { metadata?: { name?: string; namespace?: string } }>(
  objects: readonly T[],
  name: string,
): T {
  const [ns, n] = name.includes('/') ? name.split('/') : [undefined, name];
  const found = objects.find(
    (o) => o.metadata?.name === n && (ns === undefined || o.metadata?.namespace === ns),
  );
  if (found === undefined) throw new Error(`fixture has no object ${name}`);
  return found;
}
