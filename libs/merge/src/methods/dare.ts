/**
 * DARE (Yu et al. 2024): drop each element of each task vector with probability `dropRate`
 * and rescale the survivors by 1 / (1 − dropRate), so each vector keeps its expectation;
 * then combine the sparse vectors by weighted sum. Seeded: the same seed, the same merge.
 */
import { Rng } from '@grove/model';
import type { NamedArrays } from '../average.js';
import { mergeTaskVectors, weightedSum } from './task-vectors.js';

export function dare(
  base: NamedArrays,
  experts: NamedArrays[],
  weights: number[],
  dropRate: number,
  scale: number,
  seed: number,
): NamedArrays {
  if (!(dropRate >= 0 && dropRate < 1)) throw new Error(`DARE drop rate must be in [0, 1); got ${dropRate}.`);
  const rng = new Rng(seed);
  const keepScale = 1 / (1 - dropRate);
  return mergeTaskVectors(base, experts, scale, (_name, vectors) => {
    const sparse = vectors.map((tau) => {
      const out = new Float32Array(tau.length);
      for (let i = 0; i < tau.length; i++) if (rng.next() >= dropRate) out[i] = tau[i] * keepScale;
      return out;
    });
    return weightedSum(sparse, weights);
  });
}
