/** Runs a tensor merge method over whole models, one parameter name at a time. */
import type { z } from 'zod';
import type { TensorMergeMethod } from './methods/method.js';
import { checkShapes, type NamedArrays } from './shapes.js';

export interface ModelsToMerge {
  /** The seed the experts branched from. */
  base: NamedArrays;
  experts: NamedArrays[];
  /** One non-negative weight per expert; normalised to sum to 1. */
  weights: number[];
  seed: number;
}

export function normaliseWeights(weights: number[], experts: number): number[] {
  if (weights.length !== experts) throw new Error(`Got ${weights.length} weights for ${experts} experts.`);
  const total = weights.reduce((a, b) => a + b, 0);
  if (!(total > 0) || weights.some((w) => !(w >= 0)))
    throw new Error('Merge weights must be non-negative with a positive sum.');
  return weights.map((w) => w / total);
}

export function mergeModels<Options extends z.ZodObject>(
  method: TensorMergeMethod<string, string, Options>,
  models: ModelsToMerge,
  options: z.output<Options>,
): NamedArrays {
  const { base, experts, seed } = models;
  checkShapes(base, experts);
  if (experts.length < method.minExperts)
    throw new Error(`${method.name} needs at least ${method.minExperts} experts; got ${experts.length}.`);
  const weights = normaliseWeights(models.weights, experts.length);
  const merged: NamedArrays = new Map();
  for (const [name, values] of base) {
    const tensors = experts.map((expert) => expert.get(name) as Float32Array);
    merged.set(name, method.merge({ name, base: values, experts: tensors, weights, seed }, options));
  }
  return merged;
}
