export * from './batches.js';
export * from './brown.js';
export * from './data-roots.js';
export * from './domains.js';
