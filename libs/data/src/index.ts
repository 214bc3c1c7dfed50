export * from './batches.js';
export * from './brown.js';
export * from './domains.js';
