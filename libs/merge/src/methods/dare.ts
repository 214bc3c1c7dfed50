import { Rng } from '@grove/model';
import { checkDensity, mergeTaskVectors, modelWeights, type ParameterMerge } from '../method.js';

/**
 * DARE (Yu et al. 2024): drop each entry of each task vector with probability 1 − density and
 * rescale the survivors by 1 / density, so each vector keeps its expectation; then
 * θ = base + λ · Σ_j w_j τ'_j. The drop is seeded: the same options give the same model.
 */
export const dare: ParameterMerge = {
  name: 'dare',
  description: 'randomly drop task-vector entries, rescale the rest, add their weighted sum',
  merge(input, { scale, density, seed }) {
    checkDensity(density);
    const weights = modelWeights(input);
    return mergeTaskVectors(input, scale, (taskVectors, name) => {
      const sum = new Float32Array(taskVectors[0].length);
      taskVectors.forEach((tau, j) => {
        // One stream per (model, parameter): the result does not depend on parameter order.
        const rng = new Rng(seed).fork(`${j}:${name}`);
        for (let i = 0; i < sum.length; i++) if (rng.next() < density) sum[i] += (weights[j] * tau[i]) / density;
      });
      return sum;
    });
  },
};
