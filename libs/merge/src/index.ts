export * from './average.js';
export * from './btx.js';
export * from './ensemble.js';
export * from './methods/index.js';
export * from './posterior.js';
