/** @module AWS adapters for lbsync: ASG source, SSM Run Command transport, EventBridge events, lifecycle hooks. */
export * from './clients.js';
export * from './drain.js';
export * from './errors.js';
export * from './events.js';
export * from './handler.js';
export * from './report.js';
export * from './source.js';
export * from './transport.js';
