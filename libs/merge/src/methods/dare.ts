/**
 * DARE (Yu et al. 2024): drop each element of each task vector with probability `dropRate`
 * and rescale the survivors by 1 / (1 − dropRate), so each vector keeps its expectation; then
 * θ = θ_seed + λ · Σ_j w_j τ̃_j. The drops are drawn per tensor from the run's seed and the
 * tensor's name: the same run, the same merge, whatever order tensors stream in.
 */
import { Rng } from '@grove/model';
import { z } from 'zod';
import { defineMethod } from './method.js';
import { lambda } from './task-arithmetic.js';
import { addScaled, taskVectors, weightedSum } from './vectors.js';

export const dare = defineMethod({
  name: 'dare',
  key: 'dare',
  description: 'DARE: task vectors randomly dropped and rescaled, then averaged',
  options: z
    .object({
      dropRate: z.number().min(0).lt(1).default(0.5).describe('Probability of dropping each task-vector element'),
      scale: lambda('DARE'),
    })
    .strict(),
  weighting: 'uniform',
  minExperts: 1,
  merge: ({ name, base, experts, weights, seed }, { dropRate, scale }) => {
    const rng = new Rng(seed).fork(`dare:${name}`);
    const keepScale = 1 / (1 - dropRate);
    const sparse = taskVectors(base, experts).map((tau) =>
      tau.map((value) => (rng.next() >= dropRate ? value * keepScale : 0)),
    );
    return addScaled(base, scale, weightedSum(sparse, weights));
  },
});
