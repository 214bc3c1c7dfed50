/**
 * What a merge method is: a name, its options (a zod object the run spec composes under
 * `merge.<key>`, so the API documents them) and a pure function that merges one parameter at a
 * time. Working tensor by tensor lets the merge job stream models of any size.
 */
import type { z } from 'zod';

/** One parameter of every model taking part in a merge. */
export interface TensorInputs {
  /** The parameter's name, e.g. `layers.0.attention.query.weight` (seeds per-tensor randomness). */
  name: string;
  /** The seed the experts branched from: task vectors are taken against it. */
  base: Float32Array;
  experts: Float32Array[];
  /** One weight per expert, non-negative, summing to 1. */
  weights: number[];
  /** The run's random seed, for methods that draw. */
  seed: number;
}

export interface TensorMergeMethod<
  Name extends string = string,
  Key extends string = string,
  Options extends z.ZodObject = z.ZodObject,
> {
  name: Name;
  /** Where the run spec keeps this method's options: `merge.<key>`. */
  key: Key;
  description: string;
  options: Options;
  /**
   * `uniform`: one merged model with equal expert weights. `domain-posterior`: one merged model
   * per target domain, the experts weighted by their domain posterior on its held-out text (BTM).
   */
  weighting: 'uniform' | 'domain-posterior';
  /** Fewest experts the method needs. */
  minExperts: number;
  /** The experts (by domain) the method merges, out of the run's; all of them unless it says otherwise. */
  selectExperts?(experts: string[], options: z.output<Options>): string[];
  merge(inputs: TensorInputs, options: z.output<Options>): Float32Array;
}

/** Declares a method, keeping its literal name, key and option types for the run spec. */
export const defineMethod = <Name extends string, Key extends string, Options extends z.ZodObject>(
  method: TensorMergeMethod<Name, Key, Options>,
) => method;
