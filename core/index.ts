/** @module lbsync core: pure pipeline, no cloud SDKs. */
export * from './entry.js';
export * from './errors.js';
export * from './log.js';
export * from './model.js';
export * from './payload.js';
export * from './plan.js';
export * from './ports.js';
export * from './profiles.js';
export * from './render.js';
export * from './spec.js';
export * from './sync.js';
export * from './validate.js';
