/** @module GCP adapters: MIG source, metadata transport (+ LB agent), audit-log event parsing. */
export * from './clients.js';
export * from './event.js';
export * from './from-spec.js';
export * from './handlers.js';
export * from './metadata.js';
export * from './source.js';
export * from './transport.js';
