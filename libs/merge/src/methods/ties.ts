import { checkDensity, mergeTaskVectors, modelWeights, type ParameterMerge } from '../method.js';

/**
 * TIES-merging (Yadav et al. 2023): trim each task vector to its `density` largest magnitudes,
 * elect each entry's sign by the weighted sum of the trimmed vectors, and average only the
 * entries that agree with it (a disjoint mean); θ = base + λ · that mean.
 */
export const ties: ParameterMerge = {
  name: 'ties',
  description: 'trim task vectors by magnitude, elect signs, average the agreeing entries',
  merge(input, { scale, density }) {
    checkDensity(density);
    const weights = modelWeights(input);
    return mergeTaskVectors(input, scale, (taskVectors) => {
      const trimmed = taskVectors.map((tau) => trimToDensity(tau, density));
      const merged = new Float32Array(trimmed[0].length);
      for (let i = 0; i < merged.length; i++) {
        let elected = 0;
        for (let j = 0; j < trimmed.length; j++) elected += weights[j] * trimmed[j][i];
        const sign = Math.sign(elected);
        if (sign === 0) continue;
        let sum = 0;
        let weightSum = 0;
        for (let j = 0; j < trimmed.length; j++) {
          if (Math.sign(trimmed[j][i]) !== sign) continue;
          sum += weights[j] * trimmed[j][i];
          weightSum += weights[j];
        }
        merged[i] = sum / weightSum;
      }
      return merged;
    });
  },
};

/** Keeps the ⌈density · n⌉ entries of largest magnitude (ties at the threshold kept), zeroes the rest. */
export function trimToDensity(values: Float32Array, density: number): Float32Array {
  const keep = Math.ceil(density * values.length);
  if (keep >= values.length) return values;
  const magnitudes = values.map(Math.abs).sort();
  const threshold = magnitudes[values.length - keep];
  return values.map((value) => (Math.abs(value) >= threshold ? value : 0));
}
