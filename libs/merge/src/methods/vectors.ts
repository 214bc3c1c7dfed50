/** Small vector operations the merge methods share; every sum runs in float64. */

export function dot(a: ArrayLike<number>, b: ArrayLike<number>): number {
  let sum = 0;
  for (let i = 0; i < a.length; i++) sum += a[i] * b[i];
  return sum;
}

export const norm = (values: ArrayLike<number>): number => Math.sqrt(dot(values, values));

/** Σ_j w_j v_j. */
export function weightedSum(vectors: ArrayLike<number>[], weights: number[]): Float64Array {
  const out = new Float64Array(vectors[0].length);
  vectors.forEach((vector, j) => {
    for (let i = 0; i < out.length; i++) out[i] += weights[j] * vector[i];
  });
  return out;
}

/** τ_j = θ_j − θ_base for every expert. */
export const taskVectors = (base: Float32Array, experts: Float32Array[]): Float32Array[] =>
  experts.map((theta) => theta.map((value, i) => value - base[i]));

/** θ_base + λ · τ. */
export function addScaled(base: Float32Array, scale: number, vector: ArrayLike<number>): Float32Array {
  return base.map((value, i) => value + scale * vector[i]);
}
