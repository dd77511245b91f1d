// The drain result and its parser belong to the LB-side contract (core/apply-contract.ts);
// re-exported here so existing imports keep compiling.
export { type DrainResult, parseDrainResult } from '../../core/apply-contract.js';
