/** Parameter merges by name, as the run spec names them; adding a method is one file and one line here. */
import type { ParameterMerge } from './method.js';
import { dare } from './methods/dare.js';
import { linear } from './methods/linear.js';
import { posterior } from './methods/posterior.js';
import { taskArithmetic } from './methods/task-arithmetic.js';
import { ties } from './methods/ties.js';

export const PARAMETER_MERGES = {
  linear,
  posterior,
  'task-arithmetic': taskArithmetic,
  ties,
  dare,
} as const satisfies Record<string, ParameterMerge>;

export type ParameterMergeName = keyof typeof PARAMETER_MERGES;

export function parameterMerge(name: string): ParameterMerge {
  if (!(name in PARAMETER_MERGES)) {
    throw new Error(`Unknown merge method "${name}"; choose one of ${Object.keys(PARAMETER_MERGES).join(', ')}.`);
  }
  return PARAMETER_MERGES[name as ParameterMergeName];
}
