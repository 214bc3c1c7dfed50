/**
 * What one run may ask of the cluster. The run spec's own ranges say what is meaningful; these
 * say what this cluster accepts, so one submission cannot queue days of work or a run whose
 * every view costs thousands of Redis reads. Set by environment variables, checked when a run
 * is submitted or grown, and by the worker for a seed job a plain producer queued.
 */
import { PRESETS } from '@grove/model';
import { z } from 'zod';
import {
  type ExpertSpec,
  expertsOf,
  type FieldError,
  InvalidRunSpecError,
  parseRunSpec,
  type RunSpec,
} from './run-spec.js';
import { settingsFromEnv } from './settings.js';

const PRESET_NAMES = Object.keys(PRESETS) as [keyof typeof PRESETS, ...(keyof typeof PRESETS)[]];
const count = (fallback: number) => z.coerce.number().int().min(1).default(fallback);

export const ClusterLimits = z.object({
  maxExperts: count(16),
  maxReplicas: count(8),
  /** Expert replica jobs of one run, all experts together. */
  maxTotalReplicaJobs: count(64),
  /** Updates of any one phase: the seed, an expert, a fine-tune. */
  maxSteps: count(100_000),
  maxBatchSize: count(256),
  maxEvalBytes: count(1024 * 1024),
  /** The largest model preset, in the order of PRESETS (smallest first). */
  maxPreset: z.enum(PRESET_NAMES).default(PRESET_NAMES[PRESET_NAMES.length - 1]),
});
export type ClusterLimits = z.output<typeof ClusterLimits>;

export const clusterLimitsFromEnv = (env: NodeJS.ProcessEnv = process.env): ClusterLimits =>
  settingsFromEnv(
    ClusterLimits,
    {
      maxExperts: 'GROVE_MAX_EXPERTS',
      maxReplicas: 'GROVE_MAX_REPLICAS',
      maxTotalReplicaJobs: 'GROVE_MAX_TOTAL_REPLICA_JOBS',
      maxSteps: 'GROVE_MAX_STEPS',
      maxBatchSize: 'GROVE_MAX_BATCH_SIZE',
      maxEvalBytes: 'GROVE_MAX_EVAL_BYTES',
      maxPreset: 'GROVE_MAX_PRESET',
    },
    env,
  );

/** Validates a spec and holds it to the cluster's limits; throws InvalidRunSpecError naming every field over one. */
export function parseRunSpecWithin(input: unknown, limits: ClusterLimits): RunSpec {
  const spec = parseRunSpec(input);
  const errors = limitErrors(spec, limits);
  if (errors.length > 0) throw new InvalidRunSpecError(errors);
  return spec;
}

export function limitErrors(spec: RunSpec, limits: ClusterLimits): FieldError[] {
  const errors: FieldError[] = [];
  const over = (path: string, value: number, limit: number, what: string, variable: string) => {
    if (value > limit)
      errors.push({ path, message: `${value} ${what}: over this cluster's limit of ${limit} (set by ${variable})` });
  };
  const experts = expertsOf(spec);
  // Fields the client wrote carry the error: `experts.…` when it listed experts, the defaults' fields otherwise.
  const expertField = (index: number, field: keyof ExpertSpec, fallback: string) =>
    spec.experts ? `experts.${index}.${field}` : fallback;

  over(spec.experts ? 'experts' : 'domains', experts.length, limits.maxExperts, 'experts', 'GROVE_MAX_EXPERTS');
  experts.forEach((expert, index) => {
    over(
      expertField(index, 'replicas', 'expertReplicas'),
      expert.replicas,
      limits.maxReplicas,
      'replicas',
      'GROVE_MAX_REPLICAS',
    );
    over(expertField(index, 'steps', 'expertSteps'), expert.steps, limits.maxSteps, 'steps', 'GROVE_MAX_STEPS');
  });
  const replicaJobs = experts.reduce((sum, expert) => sum + expert.replicas, 0);
  over(
    spec.experts ? 'experts' : 'expertReplicas',
    replicaJobs,
    limits.maxTotalReplicaJobs,
    'replica jobs in all',
    'GROVE_MAX_TOTAL_REPLICA_JOBS',
  );
  over('seed.steps', spec.seed.steps, limits.maxSteps, 'steps', 'GROVE_MAX_STEPS');
  for (const [path, steps] of [
    ['merge.btx.finetune.steps', spec.merge.btx.finetune.steps],
    ['merge.dsMoe.finetune.steps', spec.merge.dsMoe.finetune.steps],
  ] as const)
    if (steps !== undefined) over(path, steps, limits.maxSteps, 'steps', 'GROVE_MAX_STEPS');
  over(
    'training.batchSize',
    spec.training.batchSize,
    limits.maxBatchSize,
    'sequences per batch',
    'GROVE_MAX_BATCH_SIZE',
  );
  over('eval.bytes', spec.eval.bytes, limits.maxEvalBytes, 'bytes', 'GROVE_MAX_EVAL_BYTES');
  if (PRESET_NAMES.indexOf(spec.model.preset) > PRESET_NAMES.indexOf(limits.maxPreset))
    errors.push({
      path: 'model.preset',
      message: `preset "${spec.model.preset}" is larger than this cluster's limit "${limits.maxPreset}" (set by GROVE_MAX_PRESET)`,
    });
  return errors;
}
