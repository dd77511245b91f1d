export * from './clients.js';
export * from './events.js';
export * from './from-spec.js';
export * from './handler.js';
export * from './log.js';
export * from './source.js';
export * from './transport.js';
