/**
 * Task vectors τ_j = θ_j − θ_base: what each expert learned on top of the model it branched
 * from. Task arithmetic, TIES and DARE all combine these and add the result back to the base.
 */
import type { NamedArrays } from '../average.js';

/** Checks that every expert has exactly the base's parameters, names and sizes. */
export function checkShapes(base: NamedArrays, experts: NamedArrays[]): void {
  if (experts.length === 0) throw new Error('A merge needs at least one expert.');
  experts.forEach((expert, index) => {
    if (expert.size !== base.size) {
      throw new Error(
        `Expert ${index} has ${expert.size} parameters and the base ${base.size}; they do not share a shape.`,
      );
    }
    for (const [name, values] of base) {
      const other = expert.get(name);
      if (!other)
        throw new Error(`Expert ${index} has no parameter "${name}"; only models of one shape can be merged.`);
      if (other.length !== values.length) {
        throw new Error(
          `Parameter "${name}" has ${other.length} values in expert ${index} but ${values.length} in the base.`,
        );
      }
    }
  });
}

/** θ = θ_base + λ · combine(τ_1 … τ_k), parameter by parameter. */
export function mergeTaskVectors(
  base: NamedArrays,
  experts: NamedArrays[],
  scale: number,
  combine: (name: string, vectors: Float32Array[]) => Float32Array,
): NamedArrays {
  checkShapes(base, experts);
  const merged: NamedArrays = new Map();
  for (const [name, theta] of base) {
    const vectors = experts.map((expert) => {
      const values = expert.get(name) as Float32Array;
      const tau = new Float32Array(values.length);
      for (let i = 0; i < tau.length; i++) tau[i] = values[i] - theta[i];
      return tau;
    });
    const combined = combine(name, vectors);
    const out = new Float32Array(theta.length);
    for (let i = 0; i < out.length; i++) out[i] = theta[i] + scale * combined[i];
    merged.set(name, out);
  }
  return merged;
}

/** Σ_j w_j τ_j with the weights normalised to sum to 1. */
export function weightedSum(vectors: Float32Array[], weights: number[]): Float32Array {
  const total = weights.reduce((a, b) => a + b, 0);
  if (!(total > 0) || weights.some((w) => w < 0))
    throw new Error('Merge weights must be non-negative with a positive sum.');
  const out = new Float32Array(vectors[0].length);
  vectors.forEach((tau, j) => {
    const w = weights[j] / total;
    for (let i = 0; i < out.length; i++) out[i] += w * tau[i];
  });
  return out;
}
