/**
 * Means on the unit sphere, for the spherical merges. Each tensor is split into its norm and its
 * direction u_j = θ_j / ‖θ_j‖; the directions are averaged on the sphere and the result is
 * scaled back to the weighted mean norm Σ_j w_j ‖θ_j‖.
 *
 * The spherical (Fréchet/Karcher) mean m minimises Σ_j w_j d(m, u_j)², d the angle. It is found
 * by the fixed-point iteration  v = Σ_j w_j log_m(u_j),  m ← exp_m(v),  where
 *   log_m(u) = (φ / sin φ) (u − cos φ · m),  φ = arccos(u · m)   (u's direction and angle seen from m)
 *   exp_m(v) = cos ‖v‖ · m + sin ‖v‖ · v / ‖v‖                       (walk ‖v‖ radians along v)
 * starting from the normalised chordal mean Σ_j w_j u_j / ‖Σ_j w_j u_j‖.
 */
import { dot, norm, weightedSum } from './vectors.js';

/** Below this a norm counts as zero: the tensor has no direction. */
const EPSILON = 1e-12;

function normalised(values: ArrayLike<number>): Float64Array | undefined {
  const vector = Float64Array.from(values);
  const length = norm(vector);
  return length > EPSILON ? vector.map((value) => value / length) : undefined;
}

/** Σ_j w_j log_m(u_j): the weighted mean of the directions, in the tangent space at m. */
function tangentMean(mean: Float64Array, units: Float64Array[], weights: number[]): Float64Array {
  const tangent = new Float64Array(mean.length);
  units.forEach((unit, j) => {
    const cosine = Math.min(1, Math.max(-1, dot(unit, mean)));
    const angle = Math.acos(cosine);
    if (angle < EPSILON) return;
    const factor = (weights[j] * angle) / Math.sin(angle);
    for (let i = 0; i < tangent.length; i++) tangent[i] += factor * (unit[i] - cosine * mean[i]);
  });
  return tangent;
}

/**
 * The weighted spherical mean of `tensors` after at most `iterations` fixed-point steps (or once
 * a step moves less than `tolerance` radians), scaled to the weighted mean norm. Falls back to
 * the weighted linear mean when a tensor is zero or the directions cancel out (no unique mean).
 */
export function sphericalMean(
  tensors: Float32Array[],
  weights: number[],
  iterations: number,
  tolerance: number,
): Float32Array {
  const linear = () => Float32Array.from(weightedSum(tensors, weights));
  const units = tensors.map(normalised);
  if (units.some((unit) => !unit)) return linear();
  const directions = units as Float64Array[];
  let mean = normalised(weightedSum(directions, weights));
  if (!mean) return linear();
  for (let step = 0; step < iterations; step++) {
    const tangent = tangentMean(mean, directions, weights);
    const length = norm(tangent);
    if (length < tolerance) break;
    const from: Float64Array = mean;
    mean = normalised(from.map((value, i) => Math.cos(length) * value + (Math.sin(length) * tangent[i]) / length));
    if (!mean) return linear();
  }
  const size = tensors.reduce((sum, tensor, j) => sum + weights[j] * norm(tensor), 0);
  return Float32Array.from(mean, (value) => value * size);
}
