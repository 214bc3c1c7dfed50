import { mergeTaskVectors, modelWeights, type ParameterMerge } from '../method.js';

/** Task arithmetic (Ilharco et al. 2023): θ = base + λ · Σ_j w_j (θ_j − base), w_j = 1 unless given. */
export const taskArithmetic: ParameterMerge = {
  name: 'task-arithmetic',
  description: 'base plus the scaled, weighted sum of the task vectors θ_j − base',
  merge(input, { scale }) {
    const weights = input.weights ? modelWeights(input) : input.models.map(() => 1);
    return mergeTaskVectors(input, scale, (taskVectors) => {
      const sum = new Float32Array(taskVectors[0].length);
      taskVectors.forEach((tau, j) => {
        for (let i = 0; i < sum.length; i++) sum[i] += weights[j] * tau[i];
      });
      return sum;
    });
  },
};
