/**
 * The training half of a worker, in its own process: trains the seed or one expert,
 * checkpointing as it goes, resuming from the newest checkpoint when the job is retried.
 */
import { existsSync, readFileSync, rmSync } from 'node:fs';
import { join, relative } from 'node:path';
import { type Domain, dataRootsFromEnv, loadDomain, mixtureOf } from '@grove/data';
import {
  artifactPaths,
  computePlan,
  expertsOf,
  modelConfigOf,
  PermanentTaskError,
  type RunSpec,
  serveChildTask,
  type TrainJobData,
  type TrainJobResult,
} from '@grove/jobs';
import type { RoundMetrics } from '@grove/localsgd';
import { backendSummary, describeBackend, selectBackend } from '@grove/model';
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
    const output = outputFolder(paths, data);
    const finished = finishedResult(output, stateFolder);
    if (finished) return finished;

    const domains = loadDomains(spec);
    const trainingDomains = data.role === 'expert' ? domains.filter((domain) => domain.name === data.domain) : domains;
    if (trainingDomains.length === 0)
      throw new PermanentTaskError("The expert's domain is not one of the run's domains.");
    const stream = mixtureOf(trainingDomains);
    const settings = trainingSettings(spec, data);

    process.stderr.write(`${describeBackend(await selectBackend())}\n`);
    if (data.role === 'expert' && data.replicas > 1) {
      const job = { ...data, steps: settings.steps };
      return trainReplica(job, { spec, stateFolder, redisUrl, stream, training: settings, stopRequested, report });
    }
    const checkpointRoot = join(output, 'checkpoints');
    const latest = latestCheckpointFolder(checkpointRoot);
    const trainer = latest
      ? Trainer.resume(loadCheckpoint(latest), stream)
      : data.role === 'seed' || data.role === 'dense'
        ? Trainer.fresh(modelConfigOf(spec), settings, stream)
        : Trainer.fromWeights(loadCheckpoint(startingPoint(paths, data)), settings, stream);

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
        method: data.role === 'finetune' ? data.method : undefined,
        steps: trainer.step,
        tokens: trainer.tokensSeen,
        evaluations,
        backend: backendSummary(),
      },
    });
    // The model is safe; the resumable checkpoints (twice its size with optimizer moments) are not needed.
    rmSync(checkpointRoot, { recursive: true, force: true });
    return { artifact: relative(stateFolder, output), steps: trainer.step, tokens: trainer.tokensSeen };
  },
);

function loadDomains(spec: RunSpec): Domain[] {
  try {
    return spec.domains.map((reference) => loadDomain(reference, { roots: dataRootsFromEnv() }));
  } catch (error) {
    throw new PermanentTaskError(error instanceof Error ? error.message : String(error));
  }
}

type RunPaths = ReturnType<typeof artifactPaths>;

function outputFolder(paths: RunPaths, data: TrainJobData): string {
  if (data.role === 'expert') return paths.expert(data.domain);
  if (data.role === 'finetune') return paths.merged(`${data.method}-finetuned`);
  return data.role === 'dense' ? paths.dense : paths.seed;
}

/** Experts branch from the seed (a grown one from its posterior average); a fine-tune continues the assembled MoE. */
function startingPoint(paths: RunPaths, data: TrainJobData): string {
  if (data.role === 'finetune') return paths.merged(data.method);
  if (data.role === 'expert' && existsSync(paths.growStart(data.domain))) return paths.growStart(data.domain);
  return paths.seed;
}

function trainingSettings(spec: RunSpec, data: TrainJobData): TrainingSettings {
  if (data.role === 'finetune' || data.role === 'dense') return mixtureSettings(spec, data);
  const expertIndex = data.role === 'expert' ? expertsOf(spec).findIndex((e) => e.domain === data.domain) : -1;
  const steps = data.role === 'seed' ? spec.seed.steps : (expertsOf(spec)[expertIndex]?.steps ?? spec.expertSteps);
  return {
    ...TRAINING_DEFAULTS,
    steps,
    batchSize: spec.training.batchSize,
    learningRate: spec.training.learningRate,
    warmupSteps: Math.min(spec.training.warmupSteps, steps),
    // Each expert sees its data in its own order.
    seed: spec.training.seed + expertIndex + 1,
  };
}

/** The MoE fine-tune and the dense baseline: budgets from the run's compute plan, their own data order. */
function mixtureSettings(spec: RunSpec, data: TrainJobData & { role: 'finetune' | 'dense' }): TrainingSettings {
  const plan = computePlan(spec);
  const finetune =
    data.role === 'finetune' ? (data.method === 'btx' ? spec.merge.btx : spec.merge.dsMoe).finetune : undefined;
  const steps = data.role === 'finetune' ? (plan.finetuneSteps[data.method] ?? 1) : plan.denseSteps;
  return {
    ...TRAINING_DEFAULTS,
    steps,
    batchSize: spec.training.batchSize,
    learningRate: finetune?.learningRate ?? spec.training.learningRate,
    warmupSteps: Math.min(spec.training.warmupSteps, steps),
    trainableParameters: finetune?.parameters ?? 'all',
    seed: spec.training.seed + (data.role === 'dense' ? 1_000 : 2_000),
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
