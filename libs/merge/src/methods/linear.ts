/** Parameter averaging: θ = Σ_j w_j θ_j, with equal weights. */
import { z } from 'zod';
import { defineMethod } from './method.js';
import { weightedSum } from './vectors.js';

export const linear = defineMethod({
  name: 'linear',
  key: 'linear',
  description: 'the experts averaged with equal weights',
  options: z.object({}).strict(),
  weighting: 'uniform',
  minExperts: 1,
  merge: ({ experts, weights }) => Float32Array.from(weightedSum(experts, weights)),
});
