/**
 * Model Stock (Jang et al. 2024), per tensor: with cos θ the mean pairwise cosine between the
 * experts' task vectors τ_j = θ_j − θ_seed, interpolate between the experts' average and the seed
 *   t = k · cos θ / (1 + (k − 1) · cos θ),   θ = t · Σ_j w_j θ_j + (1 − t) · θ_seed.
 * Experts that agree (cos θ → 1) keep their average; unrelated ones (cos θ → 0) fall back to the
 * seed. A negative mean cosine, or a zero task vector, counts as 0.
 */
import { z } from 'zod';
import { defineMethod } from './method.js';
import { dot, norm, taskVectors, weightedSum } from './vectors.js';

/** Mean of cos(τ_i, τ_j) over the pairs i < j, at least 0. */
export function meanPairwiseCosine(vectors: Float32Array[]): number {
  const norms = vectors.map(norm);
  let sum = 0;
  let pairs = 0;
  for (let i = 0; i < vectors.length; i++) {
    for (let j = i + 1; j < vectors.length; j++) {
      sum += norms[i] > 0 && norms[j] > 0 ? dot(vectors[i], vectors[j]) / (norms[i] * norms[j]) : 0;
      pairs++;
    }
  }
  return Math.max(0, sum / pairs);
}

export const modelStock = defineMethod({
  name: 'model-stock',
  key: 'modelStock',
  description: 'Model Stock: the experts’ average pulled towards the seed by how little their task vectors agree',
  options: z.object({}).strict(),
  weighting: 'uniform',
  minExperts: 2,
  merge: ({ base, experts, weights }) => {
    const k = experts.length;
    const cosine = meanPairwiseCosine(taskVectors(base, experts));
    const t = (k * cosine) / (1 + (k - 1) * cosine);
    const average = weightedSum(experts, weights);
    return base.map((value, i) => t * average[i] + (1 - t) * value);
  },
});
