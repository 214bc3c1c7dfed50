/**
 * TIES merging (Yadav et al. 2023): trim each task vector to its largest-magnitude `density`
 * fraction (per tensor), elect each element's sign by the sign of the sum of the trimmed
 * values, and average only the values that agree with it (zeros do not vote or count);
 * θ = θ_seed + λ · that mean.
 */
import { z } from 'zod';
import { defineMethod } from './method.js';
import { lambda } from './task-arithmetic.js';
import { addScaled, taskVectors } from './vectors.js';

/** Zeroes all but the `density` fraction of largest |values| (ties at the threshold are kept). */
export function trim(values: Float32Array, density: number): Float32Array {
  const keep = Math.round(density * values.length);
  if (keep >= values.length) return Float32Array.from(values);
  const out = new Float32Array(values.length);
  if (keep <= 0) return out;
  const magnitudes = Float32Array.from(values, Math.abs).sort();
  const threshold = magnitudes[values.length - keep];
  for (let i = 0; i < values.length; i++) if (Math.abs(values[i]) >= threshold) out[i] = values[i];
  return out;
}

/** Per element: the mean of the values whose sign agrees with the sign of their sum (0 when it is 0). */
function signElectedMean(vectors: Float32Array[]): Float32Array {
  const out = new Float32Array(vectors[0].length);
  for (let i = 0; i < out.length; i++) {
    const sign = Math.sign(vectors.reduce((sum, tau) => sum + tau[i], 0));
    if (sign === 0) continue;
    const agreeing = vectors.filter((tau) => Math.sign(tau[i]) === sign);
    out[i] = agreeing.reduce((sum, tau) => sum + tau[i], 0) / agreeing.length;
  }
  return out;
}

export const ties = defineMethod({
  name: 'ties',
  key: 'ties',
  description: 'TIES: task vectors trimmed to their largest values, signs elected, agreeing values averaged',
  options: z
    .object({
      density: z.number().gt(0).max(1).default(0.5).describe('Fraction of each task vector kept, per tensor'),
      scale: lambda('TIES'),
    })
    .strict(),
  weighting: 'uniform',
  minExperts: 1,
  merge: ({ base, experts }, { density, scale }) =>
    addScaled(base, scale, signElectedMean(taskVectors(base, experts).map((tau) => trim(tau, density)))),
});
