// Writes schema/lbsync.config.schema.json from the zod schema (npm run schema).
import { mkdirSync, writeFileSync } from 'node:fs';
import { specJsonSchema } from '../adapters/spec.js';

mkdirSync('schema', { recursive: true });
writeFileSync('schema/lbsync.config.schema.json', `${JSON.stringify(specJsonSchema(), null, 2)}\n`);
console.log('wrote schema/lbsync.config.schema.json');
