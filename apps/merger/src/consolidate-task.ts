/**
 * The merge service's compute, in its own process: builds merged models from a run's
 * experts (`merge`) and scores every model of the run on every domain (`eval`).
 */
import { writeFileSync } from 'node:fs';
import { type Domain, evaluationBatches, loadDomain, type TokenBatch } from '@grove/data';
import { artifactPaths, expertsOf, PermanentTaskError, type RunSpec, type ScoreRow, serveChildTask } from '@grove/jobs';
import {
  cachedPrior,
  domainPosterior,
  ensembleWindowLoss,
  mergeAgainstBase,
  TASK_VECTOR_METHODS,
  type TaskVectorMethod,
  uniformWeights,
  type WindowLosses,
  weightedAverage,
} from '@grove/merge';

import { type NamedArrays, selectBackend, type TransformerLM } from '@grove/model';
import { type Checkpoint, loadCheckpoint, saveCheckpoint } from '@grove/store';
import { batchTensors, bitsPerByte, modelFromCheckpoint } from '@grove/train';
import * as tf from '@tensorflow/tfjs-core';

export interface ConsolidateInput {
  kind: 'merge' | 'eval';
  runId: string;
  spec: RunSpec;
  stateFolder: string;
}

export interface ConsolidateProgress {
  stage: string;
  done: number;
  total: number;
}

export interface ConsolidateResult {
  /** merge: each merged model's weights over the experts, by method (and target domain for posterior). */
  weights?: Record<string, Record<string, number>>;
  /** eval: the table. */
  rows?: ScoreRow[];
}

/** Held-out bytes from the end of each domain's split, used to estimate the domain posterior; eval scores from the start. */
const POSTERIOR_BYTES = 4_096;

serveChildTask<ConsolidateInput, ConsolidateProgress, ConsolidateResult>(async (input, { report }) => {
  await selectBackend();
  const domains = loadDomains(input.spec);
  return input.kind === 'merge' ? merge(input, domains, report) : evaluate(input, domains, report);
});

function merge(
  { runId, spec, stateFolder }: ConsolidateInput,
  domains: Domain[],
  report: (progress: ConsolidateProgress) => void,
): ConsolidateResult {
  const paths = artifactPaths(stateFolder, runId);
  const experts = expertsOf(spec).map((expert) => ({
    domain: expert.domain,
    checkpoint: loadCheckpoint(paths.expert(expert.domain)),
  }));
  const arrays = experts.map(({ checkpoint }) => toArrays(checkpoint));
  const config = experts[0].checkpoint.config;
  const weights: Record<string, Record<string, number>> = {};
  const byExpert = (values: number[]) => Object.fromEntries(experts.map((expert, i) => [expert.domain, values[i]]));
  const save = (method: string, values: number[], folder: string) => {
    const merged = weightedAverage(arrays, values);
    saveCheckpoint(folder, {
      config,
      weights: new Map(
        [...merged].map(([name, data]) => [name, { shape: shapeOf(experts[0].checkpoint, name), data }]),
      ),
      state: { kind: 'model', method, weights: byExpert(values) },
    });
    weights[method] = byExpert(values);
  };

  if (spec.merge.methods.includes('linear')) save('linear', uniformWeights(experts.length), paths.merged('linear'));
  const against = spec.merge.methods.filter((m): m is TaskVectorMethod =>
    TASK_VECTOR_METHODS.includes(m as TaskVectorMethod),
  );
  if (against.length > 0) {
    const seed = toArrays(loadCheckpoint(paths.seed));
    const options = {
      scale: spec.merge.scale,
      density: spec.merge.density,
      dropRate: spec.merge.dropRate,
      seed: spec.training.seed,
    };
    for (const method of against) {
      report({ stage: method, done: 0, total: 1 });
      const merged = mergeAgainstBase(method, seed, arrays, options);
      saveCheckpoint(paths.merged(method), {
        config,
        weights: new Map(
          [...merged].map(([name, data]) => [name, { shape: shapeOf(experts[0].checkpoint, name), data }]),
        ),
        state: { kind: 'model', method, options },
      });
    }
  }
  if (spec.merge.methods.includes('posterior')) {
    const models = experts.map(({ checkpoint }) => modelFromCheckpoint(checkpoint));
    domains.forEach((domain, index) => {
      report({ stage: 'posterior', done: index, total: domains.length });
      const length = models[0].config.contextLength;
      const text = domain.heldOut.subarray(Math.max(0, domain.heldOut.length - POSTERIOR_BYTES));
      const batches = evaluationBatches(text, length, 16, POSTERIOR_BYTES);
      const logLikelihoods = batches.flatMap((batch) =>
        transpose(models.map((model) => sequenceLogLikelihoods(model, batch))),
      );
      save(`posterior:${domain.name}`, domainPosterior(logLikelihoods), paths.merged(`posterior-${domain.name}`));
    });
    for (const model of models) model.dispose();
  }
  return { weights };
}

function evaluate(
  { runId, spec, stateFolder }: ConsolidateInput,
  domains: Domain[],
  report: (progress: ConsolidateProgress) => void,
): ConsolidateResult {
  const paths = artifactPaths(stateFolder, runId);
  // Each entry scores one model on some domains; posterior merges are per target domain.
  const plan: { model: string; folder: string; domains: Domain[] }[] = [
    { model: 'seed', folder: paths.seed, domains },
    ...expertsOf(spec).map((expert) => ({
      model: `expert:${expert.domain}`,
      folder: paths.expert(expert.domain),
      domains,
    })),
  ];
  if (spec.denseBaseline) plan.push({ model: 'dense', folder: paths.dense, domains });
  if (spec.merge.methods.includes('linear'))
    plan.push({ model: 'merged:linear', folder: paths.merged('linear'), domains });
  for (const method of spec.merge.methods.filter((m) => TASK_VECTOR_METHODS.includes(m as TaskVectorMethod))) {
    plan.push({ model: `merged:${method}`, folder: paths.merged(method), domains });
  }
  if (spec.merge.methods.includes('posterior')) {
    for (const domain of domains)
      plan.push({ model: 'merged:posterior', folder: paths.merged(`posterior-${domain.name}`), domains: [domain] });
  }
  const total = plan.reduce((sum, entry) => sum + entry.domains.length, 0);
  const rows: ScoreRow[] = [];
  for (const entry of plan) {
    const model = modelFromCheckpoint(loadCheckpoint(entry.folder));
    for (const domain of entry.domains) {
      report({ stage: 'eval', done: rows.length, total });
      rows.push({
        model: entry.model,
        domain: domain.name,
        bitsPerByte: bitsPerByte(model, domain.heldOut, { maxBytes: spec.eval.bytes, rows: 16 }),
      });
    }
    model.dispose();
  }
  if (spec.merge.methods.includes('ensemble')) rows.push(...evaluateEnsemble(spec, paths, domains, report));
  writeFileSync(paths.report, `${JSON.stringify({ runId, rows }, null, 2)}\n`);
  return { rows };
}

/**
 * BTM's ensemble on each domain: every expert scores the held-out windows once; the scores
 * are mixed per byte by the domain posterior, with a prior cached from the domain's
 * held-out tail (the part the eval does not score). Rows `ensemble:all` and `ensemble:top1`.
 */
function evaluateEnsemble(
  spec: RunSpec,
  paths: ReturnType<typeof artifactPaths>,
  domains: Domain[],
  report: (progress: ConsolidateProgress) => void,
): ScoreRow[] {
  const models = expertsOf(spec).map((expert) => modelFromCheckpoint(loadCheckpoint(paths.expert(expert.domain))));
  const length = models[0].config.contextLength;
  const windowsOf = (text: Uint8Array, bytes: number) =>
    evaluationBatches(text, length, 16, bytes).flatMap((batch) => {
      const perExpert = models.map((model) =>
        tf.tidy(() => model.tokenLosses(...batchTensors(batch)).dataSync() as Float32Array),
      );
      return Array.from(
        { length: batch.rows },
        (_, row): WindowLosses =>
          perExpert.map((losses) => losses.subarray(row * batch.length, (row + 1) * batch.length)),
      );
    });
  const rows: ScoreRow[] = [];
  domains.forEach((domain, index) => {
    report({ stage: 'ensemble', done: index, total: domains.length });
    const tail = domain.heldOut.subarray(Math.max(0, domain.heldOut.length - POSTERIOR_BYTES));
    const prior = cachedPrior(windowsOf(tail, POSTERIOR_BYTES), models.length);
    const windows = windowsOf(domain.heldOut, spec.eval.bytes);
    const bytes = windows.reduce((sum, window) => sum + window[0].length, 0);
    for (const [label, topK] of [
      ['ensemble:all', models.length],
      ['ensemble:top1', 1],
    ] as const) {
      const nats = windows.reduce((sum, window) => sum + ensembleWindowLoss(window, prior, topK), 0);
      rows.push({ model: label, domain: domain.name, bitsPerByte: nats / bytes / Math.LN2 });
    }
  });
  for (const model of models) model.dispose();
  return rows;
}

/** log p(window) under `model` for every window of the batch, in nats. */
function sequenceLogLikelihoods(model: TransformerLM, batch: TokenBatch): number[] {
  const losses = tf.tidy(() => model.tokenLosses(...batchTensors(batch)).dataSync() as Float32Array);
  return Array.from({ length: batch.rows }, (_, row) => {
    let sum = 0;
    for (let i = 0; i < batch.length; i++) sum -= losses[row * batch.length + i];
    return sum;
  });
}

function transpose(matrix: number[][]): number[][] {
  return matrix[0].map((_, column) => matrix.map((row) => row[column]));
}

function toArrays(checkpoint: Checkpoint): NamedArrays {
  return new Map([...checkpoint.weights].map(([name, tensor]) => [name, tensor.data]));
}

function shapeOf(checkpoint: Checkpoint, name: string): number[] {
  return checkpoint.weights.get(name)?.shape ?? [];
}

function loadDomains(spec: RunSpec): Domain[] {
  try {
    return spec.domains.map(loadDomain);
  } catch (error) {
    throw new PermanentTaskError(error instanceof Error ? error.message : String(error));
  }
}
