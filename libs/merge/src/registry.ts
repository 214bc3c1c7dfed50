/**
 * Every method a run can ask for in `merge.methods`: the tensor merges (one dense model each, or
 * one per target domain), BTM's ensemble (no new weights, rows per mixture) and the MoE assemblers.
 */
import { MOE_ASSEMBLERS, type MoeAssembler } from './assemblers/index.js';
import { ENSEMBLE_DESCRIPTION } from './ensembles/index.js';
import { TENSOR_MERGE_METHODS, type TensorMergeMethodName } from './methods/index.js';

export type MergeMethod = TensorMergeMethodName | 'ensemble' | MoeAssembler['name'];

/** Each method's one-line description, by name. */
export const MERGE_METHODS = Object.fromEntries([
  ...TENSOR_MERGE_METHODS.map((method) => [method.name, method.description]),
  ['ensemble', ENSEMBLE_DESCRIPTION],
  ...MOE_ASSEMBLERS.map((assembler) => [assembler.name, assembler.description]),
]) as Record<MergeMethod, string>;

export const MERGE_METHOD_NAMES = Object.keys(MERGE_METHODS) as [MergeMethod, ...MergeMethod[]];
