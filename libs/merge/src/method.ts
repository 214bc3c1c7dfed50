/**
 * The one interface every parameter merge implements: models that share every parameter name
 * and size (the experts, branched from one base, the seed) in, one set of weights out.
 */
import type { NamedArrays } from './average.js';

export interface MergeInput {
  /** The model every expert branched from (the seed); task-vector methods measure from it. */
  base: NamedArrays;
  models: NamedArrays[];
  /** One weight per model, e.g. the domain posterior; each method says whether it needs them. */
  weights?: number[];
}

export interface MergeOptions {
  /** λ in θ = base + λ · Σ_j w_j τ_j (task vectors). */
  scale: number;
  /** Fraction of each task vector kept (TIES trims by magnitude, DARE drops at random). */
  density: number;
  /** Seeds DARE's random drop. */
  seed: number;
}

export const MERGE_OPTION_DEFAULTS: MergeOptions = { scale: 1, density: 0.5, seed: 1 };

export interface ParameterMerge {
  name: string;
  /** One line for people: what the method does. */
  description: string;
  merge(input: MergeInput, options: MergeOptions): NamedArrays;
}

/** Refuses models that do not share the base's parameter names and sizes, naming the first mismatch. */
export function checkCompatible({ base, models }: MergeInput): void {
  if (models.length === 0) throw new Error('A merge needs at least one model.');
  models.forEach((model, index) => {
    for (const [name, values] of base) {
      const other = model.get(name);
      if (!other) throw new Error(`Model ${index} has no parameter "${name}"; only models of one shape can be merged.`);
      if (other.length !== values.length) {
        throw new Error(
          `Parameter "${name}" has ${other.length} values in model ${index} but ${values.length} in the base.`,
        );
      }
    }
    if (model.size !== base.size)
      throw new Error(`Model ${index} has ${model.size} parameters, the base has ${base.size}.`);
  });
}

/** The weights a method uses: given ones (checked) or uniform 1/n. */
export function modelWeights({ models, weights }: MergeInput): number[] {
  if (!weights) return models.map(() => 1 / models.length);
  if (weights.length !== models.length) throw new Error(`Got ${weights.length} weights for ${models.length} models.`);
  if (weights.some((w) => !Number.isFinite(w))) throw new Error('Merge weights must be finite numbers.');
  return weights;
}

export function checkDensity(density: number): void {
  if (!(density > 0 && density <= 1)) throw new Error(`Merge density must be in (0, 1]; got ${density}.`);
}

/**
 * θ = base + scale · combine(τ_1 … τ_n) parameter by parameter, where τ_j = θ_j − base; `combine`
 * gets one parameter's task vectors and returns their merged task vector.
 */
export function mergeTaskVectors(
  input: MergeInput,
  scale: number,
  combine: (taskVectors: Float32Array[], name: string) => Float32Array,
): NamedArrays {
  checkCompatible(input);
  const merged: NamedArrays = new Map();
  for (const [name, base] of input.base) {
    const taskVectors = input.models.map((model) => {
      const values = model.get(name) as Float32Array;
      const tau = new Float32Array(base.length);
      for (let i = 0; i < tau.length; i++) tau[i] = values[i] - base[i];
      return tau;
    });
    const delta = combine(taskVectors, name);
    const result = new Float32Array(base.length);
    for (let i = 0; i < result.length; i++) result[i] = base[i] + scale * delta[i];
    merged.set(name, result);
  }
  return merged;
}
