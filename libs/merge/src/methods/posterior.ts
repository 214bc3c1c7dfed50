import { weightedAverage } from '../average.js';
import { checkCompatible, type ParameterMerge } from '../method.js';

/** BTM's posterior-weighted average: the weights are each expert's domain posterior on the target data. */
export const posterior: ParameterMerge = {
  name: 'posterior',
  description: "average weighted by each expert's domain posterior on the target data (BTM)",
  merge(input) {
    if (!input.weights) throw new Error('The posterior merge needs the domain posterior as its weights.');
    checkCompatible(input);
    return weightedAverage(input.models, input.weights);
  },
};
