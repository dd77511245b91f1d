// The import boundaries, made from the registry and written into biome.json
// (`npm run lint:rules`; a test fails when biome.json is out of date):
//   core/**                      imports no adapter, function, or provider package
//   adapters/<p>/**              imports no other provider's folder or packages
//   functions/<cloud>.ts, cli/<cloud>.ts  import no other cloud's folder or packages
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { descriptors } from '../adapters/registry.js';

const root = join(import.meta.dirname, '..');

interface Override {
  readonly includes: readonly string[];
  readonly linter: {
    readonly rules: {
      readonly style: {
        readonly noRestrictedImports: {
          readonly level: 'error';
          readonly options: {
            readonly patterns: readonly {
              readonly group: readonly string[];
              readonly message: string;
            }[];
          };
        };
      };
    };
  };
}

function rule(includes: readonly string[], group: readonly string[], message: string): Override {
  return {
    includes,
    linter: {
      rules: {
        style: {
          noRestrictedImports: { level: 'error', options: { patterns: [{ group, message }] } },
        },
      },
    },
  };
}

/** The biome `overrides` that enforce the import boundaries. */
export function boundaryOverrides(): readonly Override[] {
  const all = descriptors();
  const out: Override[] = [
    rule(
      ['core/**'],
      ['**/adapters/**', '**/functions/**', ...all.flatMap((d) => d.packages), '@kubernetes/*'],
      'core/ stays pure: no adapters, functions or provider SDKs.',
    ),
  ];
  for (const d of all) {
    const others = all.filter((o) => o.name !== d.name);
    const includes = [`adapters/${d.name}/**`];
    if (d.cloud !== null) includes.push(`functions/${d.cloud}.ts`, `cli/${d.cloud}.ts`);
    const group = others.flatMap((o) => [
      `**/adapters/${o.name}/**`,
      ...(o.cloud !== null ? [`**/functions/${o.cloud}.js`] : []),
      ...o.packages,
    ]);
    out.push(
      rule(
        includes,
        group,
        `${d.name} code never imports another provider: each bundle carries only its own SDKs.`,
      ),
    );
  }
  return out;
}

const isMain = process.argv[1] !== undefined && import.meta.filename === process.argv[1];
if (isMain) {
  const file = join(root, 'biome.json');
  const biome = JSON.parse(readFileSync(file, 'utf8')) as Record<string, unknown>;
  biome.overrides = boundaryOverrides();
  writeFileSync(file, `${JSON.stringify(biome, null, 2)}\n`);
  console.log(`biome.json: ${boundaryOverrides().length} import-boundary overrides`);
}
