import { SpecError } from '../core/errors.js';
import type { ProviderDescriptor, ProviderEntry, ProviderFactory } from '../core/provider.js';
import { awsProvider } from './aws/provider.js';
import { azureProvider } from './azure/provider.js';
import { gcpProvider } from './gcp/provider.js';
import { kubernetesProvider } from './kubernetes/provider.js';
import { localProvider } from './local/provider.js';

/*
 * Every provider, once. Adding a worker source or a transport means one
 * folder under adapters/ and one line here. The spec schema (adapters/spec.ts),
 * the CLI, the JSON Schema, the stacks, the build (which keeps each function
 * bundle to its own cloud's factories, scripts/build.ts) and the lint rules
 * (scripts/lint-rules.ts) read this list.
 *
 * The `load` imports are the only place another cloud's factory is named;
 * the build replaces the factories of other clouds with a stub in each
 * bundle, so loading the registry never drags in another cloud's SDK.
 */
export const PROVIDERS: readonly ProviderEntry[] = [
  { descriptor: awsProvider, load: () => import('./aws/factory.js') },
  { descriptor: azureProvider, load: () => import('./azure/factory.js') },
  { descriptor: gcpProvider, load: () => import('./gcp/factory.js') },
  { descriptor: localProvider, load: () => import('./local/factory.js') },
  { descriptor: kubernetesProvider, load: () => import('./kubernetes/factory.js') },
];

/** The clouds that have a function bundle. */
export const FUNCTION_CLOUDS = ['aws', 'azure', 'gcp'] as const;

/** A cloud with a function bundle. */
export type FunctionCloud = (typeof FUNCTION_CLOUDS)[number];

/** Every provider's descriptor. */
export function descriptors(): readonly ProviderDescriptor[] {
  return PROVIDERS.map((p) => p.descriptor);
}

/** The provider that owns a worker source or transport name, or undefined. */
export function ownerOf(kind: 'source' | 'transport', name: string): ProviderEntry | undefined {
  return PROVIDERS.find((p) =>
    Object.hasOwn((kind === 'source' ? p.descriptor.sources : p.descriptor.transports) ?? {}, name),
  );
}

/** Every worker source name, in registry order. */
export function sourceNames(): readonly string[] {
  return PROVIDERS.flatMap((p) => Object.keys(p.descriptor.sources ?? {}));
}

/** Every transport name, in registry order. */
export function transportNames(): readonly string[] {
  return PROVIDERS.flatMap((p) => Object.keys(p.descriptor.transports ?? {}));
}

/** Load the factory of the provider owning `name`; a name nobody owns is a spec error. */
export async function factoryFor(
  kind: 'source' | 'transport',
  name: string,
): Promise<ProviderFactory> {
  const entry = ownerOf(kind, name);
  if (entry === undefined) {
    throw new SpecError('spec', [
      `${kind === 'source' ? 'workers.source' : 'loadBalancers.transport'}: unknown ${kind} ${name}`,
    ]);
  }
  return entry.load();
}
