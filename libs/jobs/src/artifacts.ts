/** Where a run's artifacts live in the store (a folder shared by every process of a cluster). */
import { join } from 'node:path';
import type { ModelConfig } from '@grove/model';
import { presetConfig } from '@grove/model';
import type { RunSpec } from './run-spec.js';

export const artifactPaths = (stateFolder: string, runId: string) => {
  const run = join(stateFolder, 'runs', runId);
  return {
    run,
    seed: join(run, 'seed'),
    /** The compute-matched dense baseline. */
    dense: join(run, 'dense'),
    expert: (domain: string) => join(run, 'experts', domain),
    /** Where a grown expert starts: the posterior-weighted average of the experts before it. */
    growStart: (domain: string) => join(run, 'grow', domain),
    merged: (method: string) => join(run, 'merged', method),
    report: join(run, 'report.json'),
  };
};

/** The model shape a spec asks for. */
export function modelConfigOf(spec: RunSpec): ModelConfig {
  const config = presetConfig(spec.model.preset);
  return {
    ...config,
    positions: spec.model.positions ?? config.positions,
    activation: spec.model.activation ?? config.activation,
  };
}
