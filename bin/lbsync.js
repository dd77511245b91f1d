#!/usr/bin/env node
// Runs the TypeScript CLI straight from the checkout (tsx registers the loader).
import { register } from 'tsx/esm/api';

register();
const { main } = await import('../cli/main.ts');
process.exitCode = await main(process.argv);
