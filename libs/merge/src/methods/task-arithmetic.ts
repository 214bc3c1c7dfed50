/**
 * Task arithmetic (Ilharco et al. 2023) on the mean task vector: θ = θ_seed + λ · Σ_j w_j τ_j,
 * τ_j = θ_j − θ_seed, with equal weights w_j = 1/k. With λ = 1 it is the linear average; λ = k
 * would add the sum of the task vectors.
 */
import { z } from 'zod';
import { defineMethod } from './method.js';
import { addScaled, taskVectors, weightedSum } from './vectors.js';

export const lambda = (method: string) =>
  z.number().gt(0).max(10).default(1).describe(`λ: how far ${method} goes from the seed along the merged task vector`);

export const taskArithmetic = defineMethod({
  name: 'task-arithmetic',
  key: 'taskArithmetic',
  description: 'the seed plus λ times the mean of the experts’ task vectors',
  options: z.object({ scale: lambda('task arithmetic') }).strict(),
  weighting: 'uniform',
  minExperts: 1,
  merge: ({ base, experts, weights }, { scale }) =>
    addScaled(base, scale, weightedSum(taskVectors(base, experts), weights)),
});
