/**
 * BTM's posterior-weighted average: θ = Σ_j w_j θ_j with w the experts' domain posterior on
 * each target domain's held-out text, so one merged model per target domain.
 */
import { z } from 'zod';
import { linear } from './linear.js';
import { defineMethod } from './method.js';

export const posterior = defineMethod({
  name: 'posterior',
  key: 'posterior',
  description: 'BTM: the experts averaged with weights from their domain posterior on each target domain',
  options: z.object({}).strict(),
  weighting: 'domain-posterior',
  minExperts: 1,
  merge: linear.merge,
});
