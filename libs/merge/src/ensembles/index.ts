export * from './ensemble.js';
export * from './mixtures.js';

export const ENSEMBLE_DESCRIPTION =
  'BTM: the experts kept apart and mixed per byte: uniformly, by their domain posterior, and by its top-1';
