/** Queue names, job names, payloads and job options: the wire contract between Grove's processes. */
import type { JobsOptions } from 'bullmq';
import { z } from 'zod';
import { RUN_ID_PATTERN } from './run-spec.js';

export const QUEUES = {
  /** Training jobs: the seed and every expert replica. */
  train: 'grove-train',
  /** Consolidation jobs: merge and eval. */
  merge: 'grove-merge',
} as const;

export const JOB_NAMES = {
  seed: 'seed',
  expert: 'expert',
  merge: 'merge',
  /** Trains an assembled Mixture-of-Experts (its routers, or all of it) on the domain mixture. */
  finetune: 'finetune',
  /** The compute-matched dense baseline, on the domain mixture. */
  dense: 'dense',
  /** Builds a grown expert's starting point from the existing experts. */
  grow: 'grow',
  eval: 'eval',
} as const;

/** The methods whose merged model trains further after assembly. */
export const FINETUNED_METHODS = ['btx', 'ds-moe'] as const;
export type FinetunedMethod = (typeof FINETUNED_METHODS)[number];
export type JobName = (typeof JOB_NAMES)[keyof typeof JOB_NAMES];

const RunId = z.string().regex(RUN_ID_PATTERN);

/**
 * A training job: the seed (on the domain mixture), one replica of one expert, the fine-tune of
 * an assembled MoE, or the dense baseline.
 */
export const TrainJobData = z.discriminatedUnion('role', [
  z
    .object({
      runId: RunId,
      role: z.literal('seed'),
      /** A producer that bypasses the API sends the run spec here; the worker validates it. */
      spec: z.unknown().optional(),
    })
    .strict(),
  z
    .object({
      runId: RunId,
      role: z.literal('expert'),
      domain: z.string().min(1),
      replica: z.number().int().min(0),
      replicas: z.number().int().min(1),
      /** Redis key under which this expert's replicas find each other. */
      rendezvousKey: z.string().min(1),
    })
    .strict(),
  z.object({ runId: RunId, role: z.literal('finetune'), method: z.enum(FINETUNED_METHODS) }).strict(),
  /** The compute-matched dense baseline: trained from scratch on the mixture with the run's total compute. */
  z.object({ runId: RunId, role: z.literal('dense') }).strict(),
]);
export type TrainJobData = z.infer<typeof TrainJobData>;

export const MergeJobData = z
  .object({
    runId: RunId,
    /** grow: the new expert's domain. */
    domain: z.string().min(1).optional(),
  })
  .strict();
export type MergeJobData = z.infer<typeof MergeJobData>;

export interface TrainJobResult {
  /** Folder of the trained model, relative to the artifact store. */
  artifact: string;
  steps: number;
  tokens: number;
}

/**
 * Retries with exponential backoff; finished jobs are trimmed so Redis does not grow without
 * bound; a child that fails for good fails its parent instead of leaving it waiting.
 */
export const DEFAULT_JOB_OPTIONS: JobsOptions = {
  attempts: 3,
  backoff: { type: 'exponential', delay: 2_000 },
  removeOnComplete: { age: 7 * 24 * 3600, count: 1_000 },
  removeOnFail: { age: 30 * 24 * 3600, count: 5_000 },
};

export const CHILD_JOB_OPTIONS: JobsOptions = { ...DEFAULT_JOB_OPTIONS, failParentOnFailure: true };

/** Events kept per queue stream: enough for dashboards, bounded for Redis. */
export const EVENTS_MAX_LENGTH = 10_000;

/** Jobs of a grown forest carry its generation, so they are new jobs rather than the finished ones. */
const generationSuffix = (generation = 0) => (generation ? `.g${generation}` : '');

/** Stable job ids: adding a job twice (a retried seed extending the flow) is a no-op. */
export const jobIds = {
  seed: (runId: string) => `${runId}.seed`,
  expert: (runId: string, domain: string, replica: number) => `${runId}.expert.${domain}.${replica}`,
  merge: (runId: string, generation?: number) => `${runId}.merge${generationSuffix(generation)}`,
  finetune: (runId: string, method: FinetunedMethod, generation?: number) =>
    `${runId}.finetune.${method}${generationSuffix(generation)}`,
  dense: (runId: string) => `${runId}.dense`,
  grow: (runId: string, domain: string) => `${runId}.grow.${domain}`,
  eval: (runId: string, generation?: number) => `${runId}.eval${generationSuffix(generation)}`,
};
