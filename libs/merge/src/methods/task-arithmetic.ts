/** Task arithmetic (Ilharco et al. 2023): θ = θ_base + λ · Σ_j w_j τ_j. With λ = 1 it is the weighted average. */
import type { NamedArrays } from '../average.js';
import { mergeTaskVectors, weightedSum } from './task-vectors.js';

export function taskArithmetic(
  base: NamedArrays,
  experts: NamedArrays[],
  weights: number[],
  scale: number,
): NamedArrays {
  return mergeTaskVectors(base, experts, scale, (_name, vectors) => weightedSum(vectors, weights));
}
