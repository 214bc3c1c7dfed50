/**
 * The merge methods a run can ask for, by name. `linear` and `posterior` average the experts
 * with weights; the others work on task vectors against the seed the experts branched from.
 */
import type { NamedArrays } from '../average.js';
import { dare } from './dare.js';
import { taskArithmetic } from './task-arithmetic.js';
import { ties } from './ties.js';

export const MERGE_METHODS = {
  linear: 'the experts averaged with equal weights',
  posterior: 'BTM: the experts averaged with weights from their domain posterior on each target domain',
  'task-arithmetic': 'the seed plus λ times the mean of the experts’ task vectors',
  ties: 'TIES: task vectors trimmed to their largest values, signs elected, agreeing values averaged',
  dare: 'DARE: task vectors randomly dropped and rescaled, then averaged',
  ensemble: 'BTM: the experts kept apart and mixed per byte by their domain posterior (all, and top-1)',
  btx: "BTX: the experts' feed-forward blocks as the experts of a Mixture-of-Experts, the rest averaged, then a router fine-tune",
  'ds-moe':
    'DS-MoE: the same assembly trained densely (every expert on every token), run sparsely (top-k or threshold)',
} as const;
export type MergeMethod = keyof typeof MERGE_METHODS;

export interface TaskVectorOptions {
  /** λ: how far along the combined task vector to go from the seed. */
  scale: number;
  /** TIES: fraction of each task vector kept. */
  density: number;
  /** DARE: probability of dropping each element. */
  dropRate: number;
  seed: number;
}

/** Merges with a task-vector method against `base` (the seed); equal expert weights. */
export type TaskVectorMethod = Exclude<MergeMethod, 'linear' | 'posterior' | 'ensemble' | 'btx' | 'ds-moe'>;
export const TASK_VECTOR_METHODS: TaskVectorMethod[] = ['task-arithmetic', 'ties', 'dare'];

export function mergeAgainstBase(
  method: TaskVectorMethod,
  base: NamedArrays,
  experts: NamedArrays[],
  options: TaskVectorOptions,
): NamedArrays {
  const weights = experts.map(() => 1);
  switch (method) {
    case 'task-arithmetic':
      return taskArithmetic(base, experts, weights, options.scale);
    case 'ties':
      return ties(base, experts, options.density, options.scale);
    case 'dare':
      return dare(base, experts, weights, options.dropRate, options.scale, options.seed);
  }
}

export { trim } from './ties.js';
export { dare, taskArithmetic, ties };
