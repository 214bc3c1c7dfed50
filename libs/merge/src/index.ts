export * from './assemblers/index.js';
export * from './average.js';
export * from './ensembles/index.js';
export * from './merge-models.js';
export * from './methods/index.js';
export * from './posterior.js';
export * from './registry.js';
export * from './shapes.js';
