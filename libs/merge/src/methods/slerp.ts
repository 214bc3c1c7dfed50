/**
 * Spherical linear interpolation between two experts, tensor by tensor (Shoemake 1985; mergekit's
 * `slerp`): with Ω the angle between θ_a and θ_b,
 *   θ = sin((1 − t) Ω) / sin Ω · θ_a + sin(t Ω) / sin Ω · θ_b,
 * which follows the arc rather than the chord, so the merge keeps the experts' norm where a
 * linear mix would shrink it. Nearly colinear tensors (|cos Ω| > 0.9995), where sin Ω ≈ 0, and
 * zero tensors fall back to the linear (1 − t) θ_a + t θ_b.
 */
import { z } from 'zod';
import { defineMethod } from './method.js';
import { dot, norm } from './vectors.js';

const COLINEAR = 0.9995;

export function slerpTensor(a: Float32Array, b: Float32Array, t: number): Float32Array {
  const lengths = norm(a) * norm(b);
  const cosine = lengths > 0 ? dot(a, b) / lengths : 1;
  let first = 1 - t;
  let second = t;
  if (Math.abs(cosine) <= COLINEAR) {
    const angle = Math.acos(cosine);
    first = Math.sin((1 - t) * angle) / Math.sin(angle);
    second = Math.sin(t * angle) / Math.sin(angle);
  }
  return a.map((value, i) => first * value + second * b[i]);
}

export const slerp = defineMethod({
  name: 'slerp',
  key: 'slerp',
  description: 'SLERP: two experts interpolated along the arc between them, tensor by tensor',
  options: z
    .object({
      t: z.number().min(0).max(1).default(0.5).describe('Where on the arc: 0 is the first expert, 1 the second'),
      between: z
        .tuple([z.string(), z.string()])
        .optional()
        .describe('The two experts (by domain) to interpolate; the run’s first two by default'),
    })
    .strict(),
  weighting: 'uniform',
  minExperts: 2,
  selectExperts: (experts, { between }) => between ?? experts.slice(0, 2),
  merge: ({ experts: [a, b] }, { t }) => slerpTensor(a, b, t),
});
