export * from './buckets.js';
export * from './local-group.js';
export * from './outer.js';
export * from './penalty.js';
export * from './replica.js';
