/** Parameter averaging: θ = Σ_j w_j θ_j over models that share every parameter name and size. */
import { mergeModels } from './merge-models.js';
import { linear } from './methods/linear.js';
import type { NamedArrays } from './shapes.js';

export function weightedAverage(models: NamedArrays[], weights: number[]): NamedArrays {
  if (models.length === 0) throw new Error('Averaging needs at least one model.');
  return mergeModels(linear, { base: models[0], experts: models, weights, seed: 0 }, {});
}

export const uniformWeights = (count: number): number[] => Array(count).fill(1 / count);
