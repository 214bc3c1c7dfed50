/**
 * Multi-expert SLERP (after mergekit's `multislerp`): the experts' weighted mean on the sphere
 * in one tangent-space step. Each tensor splits into norm and direction u_j; from the normalised
 * chordal mean m = Σ w_j u_j / ‖Σ w_j u_j‖ the directions are averaged in the tangent space at m
 * and mapped back, θ = exp_m(Σ_j w_j log_m(u_j)) · Σ_j w_j ‖θ_j‖ (see sphere.ts). With two
 * experts the step is exact: the direction lies a fraction w_2 along the arc from u_1 to u_2
 * (slerp of the directions at t = w_2). `karcher` iterates the same step to convergence.
 */
import { z } from 'zod';
import { defineMethod } from './method.js';
import { sphericalMean } from './sphere.js';

export const multislerp = defineMethod({
  name: 'multislerp',
  key: 'multislerp',
  description: 'multi-SLERP: every expert averaged on the sphere in one tangent-space step, norms averaged',
  options: z.object({}).strict(),
  weighting: 'uniform',
  minExperts: 1,
  merge: ({ experts, weights }) => sphericalMean(experts, weights, 1, 0),
});
