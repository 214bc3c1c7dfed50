/**
 * The Karcher (Fréchet) mean of the experts on the sphere, tensor by tensor (after mergekit's
 * `karcher`): the direction m minimising Σ_j w_j ∠(m, θ_j)², found by the fixed-point iteration
 * m ← exp_m(Σ_j w_j log_m(u_j)) from the normalised chordal mean (see sphere.ts), scaled to the
 * weighted mean norm Σ_j w_j ‖θ_j‖.
 */
import { z } from 'zod';
import { defineMethod } from './method.js';
import { sphericalMean } from './sphere.js';

export const karcher = defineMethod({
  name: 'karcher',
  key: 'karcher',
  description: 'Karcher: the Fréchet mean of the experts on the sphere by fixed-point iteration, norms averaged',
  options: z
    .object({
      maxIterations: z.number().int().min(1).max(1000).default(10).describe('Fixed-point steps at most, per tensor'),
      tolerance: z
        .number()
        .gt(0)
        .max(1)
        .default(1e-6)
        .describe('Stop once a step moves the mean less than this many radians'),
    })
    .strict(),
  weighting: 'uniform',
  minExperts: 1,
  merge: ({ experts, weights }, { maxIterations, tolerance }) =>
    sphericalMean(experts, weights, maxIterations, tolerance),
});
