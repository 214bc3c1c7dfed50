/**
 * TIES merging (Yadav et al. 2023): trim each task vector to its largest-magnitude `density`
 * fraction (per tensor), elect each element's sign by the sign of the sum of the trimmed
 * values, and average only the values that agree with it (zeros do not vote or count).
 */
import type { NamedArrays } from '../average.js';
import { mergeTaskVectors } from './task-vectors.js';

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

export function ties(base: NamedArrays, experts: NamedArrays[], density: number, scale: number): NamedArrays {
  if (!(density > 0 && density <= 1)) throw new Error(`TIES density must be in (0, 1]; got ${density}.`);
  return mergeTaskVectors(base, experts, scale, (_name, vectors) => {
    const trimmed = vectors.map((tau) => trim(tau, density));
    const out = new Float32Array(vectors[0].length);
    for (let i = 0; i < out.length; i++) {
      let total = 0;
      for (const tau of trimmed) total += tau[i];
      const sign = Math.sign(total);
      if (sign === 0) continue;
      let sum = 0;
      let count = 0;
      for (const tau of trimmed) {
        if (Math.sign(tau[i]) === sign) {
          sum += tau[i];
          count++;
        }
      }
      out[i] = sum / count;
    }
    return out;
  });
}
