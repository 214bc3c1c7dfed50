export * from './average.js';
export * from './posterior.js';
