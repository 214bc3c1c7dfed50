/**
 * The training half of a worker, in its own process: trains the seed or one expert,
 * checkpointing as it goes, resuming from the newest checkpoint when the job is retried.
 */
import { existsSync, readFileSync, rmSync } from 'node:fs';
import { join, relative } from 'node:path';
import { type Domain, loadDomain, mixtureOf } from '@grove/data';
import {
  artifactPaths,
  expertsOf,
  modelConfigOf,
  PermanentTaskError,
  type RunSpec,
  serveChildTask,
  type TrainJobData,
  type TrainJobResult,
} from '@grove/jobs';
import type { RoundMetrics } from '@grove/localsgd';
import { selectBackend } from '@grove/model';
import { latestCheckpointFolder, loadCheckpoint, STATE_FILE, saveCheckpoint } from '@grove/store';
import { runTraining, TRAINING_DEFAULTS, Trainer, type TrainingSettings } from '@grove/train';
import { trainReplica } from './replica.js';

export interface TrainTaskInput {
  data: TrainJobData;
  spec: RunSpec;
  stateFolder: string;
  /** Replicas of one expert find each other through this Redis. */
  redisUrl: string;
}

export interface TrainProgress {
  step: number;
  steps: number;
  loss?: number;
  tokensPerSecond?: number;
  bitsPerByte?: Record<string, number>;
  /** Sent once when a retried job picks up a checkpoint. */
  resumedFromStep?: number;
  /** Set for a replica of an expert trained by several. */
  replica?: number;
  /** A finished Local-SGD round. */
  round?: RoundMetrics;
}

/** Evaluation during training is a progress signal, kept small; the eval job scores for real. */
const PROGRESS_EVALUATION_BYTES = 8_192;

serveChildTask<TrainTaskInput, TrainProgress, TrainJobResult>(
  async ({ data, spec, stateFolder, redisUrl }, { stopRequested, report }) => {
    const paths = artifactPaths(stateFolder, data.runId);
    const output = data.role === 'seed' ? paths.seed : data.role === 'dense' ? paths.dense : paths.expert(data.domain);
    const finished = finishedResult(output, stateFolder);
    if (finished) return finished;

    const domains = loadDomains(spec);
    const trainingDomains = data.role === 'expert' ? domains.filter((domain) => domain.name === data.domain) : domains;
    if (trainingDomains.length === 0)
      throw new PermanentTaskError("The expert's domain is not one of the run's domains.");
    const stream = mixtureOf(trainingDomains);
    const settings = trainingSettings(spec, data);

    await selectBackend();
    if (data.role === 'expert' && data.replicas > 1) {
      const job = { ...data, steps: settings.steps };
      return trainReplica(job, { spec, stateFolder, redisUrl, stream, training: settings, stopRequested, report });
    }
    const checkpointRoot = join(output, 'checkpoints');
    const latest = latestCheckpointFolder(checkpointRoot);
    const trainer = latest
      ? Trainer.resume(loadCheckpoint(latest), stream)
      : data.role === 'seed'
        ? Trainer.fresh(modelConfigOf(spec), settings, stream)
        : Trainer.fromWeights(loadCheckpoint(paths.seed), settings, stream);

    if (latest) report({ step: trainer.step, steps: trainer.settings.steps, resumedFromStep: trainer.step });
    const evaluations = await runTraining(trainer, {
      evaluationDomains: trainingDomains,
      evaluateEvery: 0,
      evaluation: { maxBytes: Math.min(PROGRESS_EVALUATION_BYTES, spec.eval.bytes), rows: 16 },
      checkpointRoot,
      checkpointEvery: spec.training.checkpointEvery,
      shouldStop: stopRequested,
      onStep: (step, tokensPerSecond) =>
        report({ step: step.step, steps: trainer.settings.steps, loss: step.loss, tokensPerSecond }),
      onEvaluation: (evaluation) =>
        report({
          step: evaluation.step,
          steps: trainer.settings.steps,
          bitsPerByte: Object.fromEntries(evaluation.scores.map((score) => [score.domain, score.bitsPerByte])),
        }),
    });
    if (!trainer.finished) return undefined;

    const final = trainer.checkpoint();
    saveCheckpoint(output, {
      config: final.config,
      weights: final.weights,
      state: {
        kind: 'model',
        role: data.role,
        domain: data.role === 'expert' ? data.domain : undefined,
        steps: trainer.step,
        tokens: trainer.tokensSeen,
        evaluations,
      },
    });
    // The model is safe; the resumable checkpoints (twice its size with optimizer moments) are not needed.
    rmSync(checkpointRoot, { recursive: true, force: true });
    return { artifact: relative(stateFolder, output), steps: trainer.step, tokens: trainer.tokensSeen };
  },
);

function loadDomains(spec: RunSpec): Domain[] {
  try {
    return spec.domains.map(loadDomain);
  } catch (error) {
    throw new PermanentTaskError(error instanceof Error ? error.message : String(error));
  }
}

function trainingSettings(spec: RunSpec, data: TrainJobData): TrainingSettings {
  const experts = expertsOf(spec);
  const expertIndex = data.role === 'expert' ? experts.findIndex((e) => e.domain === data.domain) : -1;
  // The dense baseline gets the compute of all experts together, on the mixture.
  const steps =
    data.role === 'seed'
      ? spec.seed.steps
      : data.role === 'dense'
        ? experts.reduce((sum, expert) => sum + expert.steps, 0)
        : (experts[expertIndex]?.steps ?? spec.expertSteps);
  return {
    ...TRAINING_DEFAULTS,
    steps,
    batchSize: spec.training.batchSize,
    learningRate: spec.training.learningRate,
    warmupSteps: Math.min(spec.training.warmupSteps, steps),
    // Each expert (and the dense baseline) sees its data in its own order.
    seed: spec.training.seed + (data.role === 'dense' ? experts.length : expertIndex) + 1,
  };
}

/** A model already saved by an earlier attempt: the job is done, whatever happened after. */
function finishedResult(output: string, stateFolder: string): TrainJobResult | undefined {
  const statePath = join(output, STATE_FILE);
  if (!existsSync(statePath)) return undefined;
  const state = JSON.parse(readFileSync(statePath, 'utf8'));
  if (state.kind !== 'model') return undefined;
  return { artifact: relative(stateFolder, output), steps: state.steps, tokens: state.tokens };
}
