import { weightedAverage } from '../average.js';
import { checkCompatible, modelWeights, type ParameterMerge } from '../method.js';

/** θ = Σ_j w_j θ_j, uniform unless weights are given. */
export const linear: ParameterMerge = {
  name: 'linear',
  description: 'weighted average of the experts (uniform unless weights are given)',
  merge(input) {
    checkCompatible(input);
    return weightedAverage(input.models, modelWeights(input));
  },
};
