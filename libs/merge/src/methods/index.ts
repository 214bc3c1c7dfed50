/**
 * The tensor merge methods, by name: one line each. The run spec takes `merge.methods` from
 * these names and each method's options from `merge.<key>`.
 */
import type { z } from 'zod';
import { dare } from './dare.js';
import { karcher } from './karcher.js';
import { linear } from './linear.js';
import type { TensorMergeMethod } from './method.js';
import { modelStock } from './model-stock.js';
import { multislerp } from './multislerp.js';
import { posterior } from './posterior.js';
import { slerp } from './slerp.js';
import { taskArithmetic } from './task-arithmetic.js';
import { ties } from './ties.js';

export const TENSOR_MERGE_METHODS = [
  linear,
  posterior,
  taskArithmetic,
  ties,
  dare,
  slerp,
  multislerp,
  karcher,
  modelStock,
] as const;

type Methods = (typeof TENSOR_MERGE_METHODS)[number];
export type TensorMergeMethodName = Methods['name'];

/** Each method with options, under its key: what the run spec's `merge` object composes. */
export type MethodOptionsShape = {
  [M in Methods as keyof M['options']['shape'] extends never ? never : M['key']]: z.ZodPrefault<M['options']>;
};

export const METHOD_OPTIONS = Object.fromEntries(
  (TENSOR_MERGE_METHODS as readonly TensorMergeMethod[])
    .filter((method) => Object.keys(method.options.shape).length > 0)
    .map((method) => [method.key, method.options.prefault({}).describe(method.description)]),
) as unknown as MethodOptionsShape;

export function tensorMergeMethod(name: string): TensorMergeMethod | undefined {
  return (TENSOR_MERGE_METHODS as readonly TensorMergeMethod[]).find((method) => method.name === name);
}

export type { TensorInputs, TensorMergeMethod } from './method.js';
export { meanPairwiseCosine } from './model-stock.js';
export { slerpTensor } from './slerp.js';
export { sphericalMean } from './sphere.js';
export { trim } from './ties.js';
export { dare, karcher, linear, modelStock, multislerp, posterior, slerp, taskArithmetic, ties };
