export * from './average.js';
export * from './btx.js';
export * from './ensemble.js';
export * from './method.js';
export { trimToDensity } from './methods/ties.js';
export * from './posterior.js';
export * from './registry.js';
