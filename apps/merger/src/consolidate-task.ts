/**
 * The merge service's compute, in its own process: builds merged models from a run's
 * experts (`merge`) and scores every model of the run on every domain (`eval`).
 */
import { existsSync, mkdirSync, rmSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { type Domain, dataRootsFromEnv, evaluationBatches, loadDomain, type TokenBatch } from '@grove/data';
import {
  artifactPaths,
  expertsOf,
  type FinetunedMethod,
  moeConfigOf,
  PermanentTaskError,
  type RunSpec,
  type ScoreRow,
  serveChildTask,
} from '@grove/jobs';
import {
  assembleBtx,
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
import {
  activeParameterCount,
  type ModelConfig,
  type NamedArrays,
  parameterCount,
  parameterShapes,
  selectBackend,
  TransformerLM,
} from '@grove/model';
import { type Checkpoint, loadCheckpoint, saveCheckpoint } from '@grove/store';
import { batchTensors, bitsPerByte, modelFromCheckpoint } from '@grove/train';
import * as tf from '@tensorflow/tfjs-core';

export interface ConsolidateInput {
  kind: 'merge' | 'eval' | 'grow';
  runId: string;
  /** grow: the new expert's domain. */
  domain?: string;
  spec: RunSpec;
  stateFolder: string;
}

export interface ConsolidateProgress {
  stage: string;
  done: number;
  total: number;
}

export interface ConsolidateResult {
  /** merge: each merged model's weights over the experts, by method (and target domain for posterior and ensemble). */
  weights?: Record<string, Record<string, number>>;
  /** eval: the table. */
  rows?: ScoreRow[];
}

/** Held-out bytes from the end of each domain's split, used to estimate the domain posterior; eval scores from the start. */
const POSTERIOR_BYTES = 4_096;
/** Training bytes per domain whose mean hidden states point a `hidden` router. */
const ROUTER_INIT_BYTES = 8_192;
const EVAL_ROWS = 16;

serveChildTask<ConsolidateInput, ConsolidateProgress, ConsolidateResult>(async (input, { report }) => {
  await selectBackend();
  const domains = loadDomains(input.spec);
  if (input.kind === 'grow') return growStart(input, domains, report);
  return input.kind === 'merge' ? merge(input, domains, report) : evaluate(input, domains, report);
});

/**
 * A grown expert's starting point (BTM): the experts that exist, averaged with weights from
 * their domain posterior on the new domain's training text. Nothing existing is written.
 */
function growStart(
  { runId, spec, stateFolder, domain: newDomain }: ConsolidateInput,
  domains: Domain[],
  report: (progress: ConsolidateProgress) => void,
): ConsolidateResult {
  const paths = artifactPaths(stateFolder, runId);
  const target = domains.find((domain) => domain.name === newDomain);
  if (!target) throw new PermanentTaskError(`"${newDomain}" is not one of the run's domains.`);
  const existing = expertsOf(spec).filter((expert) => expert.domain !== newDomain);
  report({ stage: 'grow', done: 0, total: 1 });
  const checkpoints = existing.map((expert) => loadCheckpoint(paths.expert(expert.domain)));
  const models = checkpoints.map(modelFromCheckpoint);
  const posterior = domainPosterior(posteriorSequences(models, { ...target, heldOut: target.train }));
  for (const model of models) model.dispose();
  const arrays = checkpoints.map(toArrays);
  const start = weightedAverage(arrays, posterior);
  const weights = Object.fromEntries(existing.map((expert, i) => [expert.domain, posterior[i]]));
  const config = checkpoints[0].config;
  saveCheckpoint(paths.growStart(target.name), {
    config,
    weights: new Map([...start].map(([name, data]) => [name, { shape: shapeOf(config, name), data }])),
    state: { kind: 'model', method: 'posterior', weights },
  });
  return { weights: { [`grow:${target.name}`]: weights } };
}

function merge(
  { runId, spec, stateFolder }: ConsolidateInput,
  domains: Domain[],
  report: (progress: ConsolidateProgress) => void,
): ConsolidateResult {
  const paths = artifactPaths(stateFolder, runId);
  // Everything under merged/ is rebuilt from the experts: a forest that grew leaves nothing stale behind.
  rmSync(join(paths.run, 'merged'), { recursive: true, force: true });
  const seedCheckpoint = loadCheckpoint(paths.seed);
  const seed = toArrays(seedCheckpoint);
  const experts = expertsOf(spec).map((expert) => ({
    domain: expert.domain,
    checkpoint: loadCheckpoint(paths.expert(expert.domain)),
  }));
  const arrays = experts.map(({ checkpoint }) => toArrays(checkpoint));
  const config = experts[0].checkpoint.config;
  const weights: Record<string, Record<string, number>> = {};
  const byExpert = (values: number[]) => Object.fromEntries(experts.map((expert, i) => [expert.domain, values[i]]));
  const save = (folder: string, method: string, merged: NamedArrays, modelConfig: object, state = {}) =>
    saveCheckpoint(folder, {
      config: { ...modelConfig },
      weights: new Map([...merged].map(([name, data]) => [name, { shape: shapeOf(modelConfig, name), data }])),
      state: { kind: 'model', method, ...state },
    });
  const methods = spec.merge.methods;

  if (methods.includes('linear')) {
    const uniform = uniformWeights(experts.length);
    save(paths.merged('linear'), 'linear', weightedAverage(arrays, uniform), config, { weights: byExpert(uniform) });
    weights.linear = byExpert(uniform);
  }
  const { scale, density, dropRate } = spec.merge;
  const options = { scale, density, dropRate, seed: spec.training.seed };
  for (const method of taskVectorMethods(spec)) {
    report({ stage: method, done: 0, total: 1 });
    save(paths.merged(method), method, mergeAgainstBase(method, seed, arrays, options), config, { options });
  }

  if (methods.includes('posterior')) {
    const models = experts.map(({ checkpoint }) => modelFromCheckpoint(checkpoint));
    domains.forEach((domain, index) => {
      report({ stage: 'posterior', done: index, total: domains.length });
      const posterior = domainPosterior(posteriorSequences(models, domain));
      const merged = weightedAverage(arrays, posterior);
      save(paths.merged(`posterior-${domain.name}`), `posterior:${domain.name}`, merged, config, {
        weights: byExpert(posterior),
      });
      weights[`posterior:${domain.name}`] = byExpert(posterior);
    });
    for (const model of models) model.dispose();
  }

  for (const method of ['btx', 'ds-moe'] as const) {
    if (!methods.includes(method)) continue;
    report({ stage: method, done: 0, total: 1 });
    const keepSeed = method === 'btx' && spec.merge.btx.keepSeed;
    const router = spec.merge.btx.router;
    const moeConfig = moeConfigOf(spec, method);
    const assembled = assembleBtx(config as unknown as ModelConfig, seed, arrays, {
      topK: moeConfig.moe?.topK ?? 1,
      keepSeed,
      router,
      hiddenMeans:
        router === 'hidden'
          ? hiddenMeans(
              seedCheckpoint,
              experts.map((expert) => domains.find((domain) => domain.name === expert.domain) as Domain),
              keepSeed,
            )
          : undefined,
      balanceCoefficient: moeConfig.moe?.balanceCoefficient ?? 0,
      seed: spec.training.seed,
    });
    save(paths.merged(method), method, assembled.weights, moeConfig, {
      experts: [...experts.map((expert) => expert.domain), ...(keepSeed ? ['seed'] : [])],
      router,
    });
  }
  return { weights };
}

/**
 * Each layer's mean feed-forward input under the seed on each expert's domain ([layer][expert]):
 * the seed's own mean over all domains for a kept seed expert.
 */
function hiddenMeans(seedCheckpoint: Checkpoint, expertDomains: Domain[], keepSeed: boolean): Float32Array[][] {
  const model = modelFromCheckpoint(seedCheckpoint);
  const perDomain = expertDomains.map((domain) => {
    const [batch] = evaluationBatches(
      domain.train,
      model.config.contextLength,
      ROUTER_INIT_BYTES / model.config.contextLength,
      ROUTER_INIT_BYTES,
    );
    return tf.tidy(() => model.feedForwardInputMeans(batchTensors(batch)[0]));
  });
  model.dispose();
  return Array.from({ length: model.config.layers }, (_, layer) => {
    const means = perDomain.map((layers) => layers[layer]);
    if (!keepSeed) return means;
    const overall = new Float32Array(means[0].length);
    for (const mean of means) for (let i = 0; i < overall.length; i++) overall[i] += mean[i] / means.length;
    return [...means, overall];
  });
}

interface PlannedModel {
  model: string;
  folder: string;
  domains: Domain[];
  /** Evaluate under a different routing than the checkpoint's (DS-MoE with every expert). */
  config?: (config: ModelConfig) => ModelConfig;
}

function evaluate(
  { runId, spec, stateFolder }: ConsolidateInput,
  domains: Domain[],
  report: (progress: ConsolidateProgress) => void,
): ConsolidateResult {
  const paths = artifactPaths(stateFolder, runId);
  const methods = spec.merge.methods;
  // Each entry scores one model on some domains; posterior merges are per target domain.
  const plan: PlannedModel[] = [{ model: 'seed', folder: paths.seed, domains }];
  if (spec.denseBaseline) plan.push({ model: 'dense', folder: paths.dense, domains });
  for (const expert of expertsOf(spec))
    plan.push({ model: `expert:${expert.domain}`, folder: paths.expert(expert.domain), domains });
  for (const method of ['linear', ...taskVectorMethods(spec)])
    if (methods.includes(method as TaskVectorMethod))
      plan.push({ model: `merged:${method}`, folder: paths.merged(method), domains });
  if (methods.includes('posterior')) {
    for (const domain of domains)
      plan.push({ model: 'merged:posterior', folder: paths.merged(`posterior-${domain.name}`), domains: [domain] });
  }
  if (methods.includes('btx')) {
    plan.push({ model: 'btx', folder: paths.merged('btx'), domains });
    if (finetuned(paths, 'btx'))
      plan.push({ model: 'btx:finetuned', folder: finetuned(paths, 'btx') as string, domains });
  }
  if (methods.includes('ds-moe')) {
    const folder = finetuned(paths, 'ds-moe') ?? paths.merged('ds-moe');
    plan.push({ model: 'ds-moe:dense-inference', folder, domains, config: everyExpert });
    plan.push({ model: 'ds-moe', folder, domains });
  }
  const total =
    plan.reduce((sum, entry) => sum + entry.domains.length, 0) + (methods.includes('ensemble') ? domains.length : 0);
  const rows: ScoreRow[] = [];
  for (const entry of plan) {
    const checkpoint = loadCheckpoint(entry.folder);
    const model = entry.config
      ? TransformerLM.fromArrays(entry.config(checkpoint.config as unknown as ModelConfig), toArrays(checkpoint))
      : modelFromCheckpoint(checkpoint);
    for (const domain of entry.domains) {
      report({ stage: 'eval', done: rows.length, total });
      model.resetRoutingStats();
      const started = performance.now();
      const score = bitsPerByte(model, domain.heldOut, { maxBytes: spec.eval.bytes, rows: EVAL_ROWS });
      const seconds = (performance.now() - started) / 1000;
      rows.push({
        model: entry.model,
        domain: domain.name,
        bitsPerByte: score,
        activeParameters: Math.round(activeParameterCount(model.config, model.routingStats?.expertsPerToken)),
        tokensPerSecond: scoredBytes(domain, model.config, spec) / seconds,
      });
    }
    model.dispose();
  }
  if (methods.includes('ensemble'))
    rows.push(
      ...evaluateEnsemble(spec, paths, domains, (done) =>
        report({ stage: 'ensemble', done: rows.length + done, total }),
      ),
    );
  writeJson(paths.report, { runId, rows });
  return { rows };
}

/** A DS-MoE checkpoint routed through every expert, weighted by the full router softmax: its dense inference. */
const everyExpert = (config: ModelConfig): ModelConfig =>
  config.moe ? { ...config, moe: { ...config.moe, topK: config.moe.experts, threshold: 0 } } : config;

function finetuned(paths: ReturnType<typeof artifactPaths>, method: FinetunedMethod): string | undefined {
  const folder = paths.merged(`${method}-finetuned`);
  return existsSync(folder) ? folder : undefined;
}

/**
 * BTM's ensemble on each domain: every expert scores the held-out windows once; the scores
 * are mixed per byte by the domain posterior, with a prior cached from the domain's held-out
 * tail (the part the eval does not score). Rows `ensemble:all` and `ensemble:top1`. Every
 * expert runs to compute the posterior, so both count the whole forest's parameters as active.
 */
function evaluateEnsemble(
  spec: RunSpec,
  paths: ReturnType<typeof artifactPaths>,
  domains: Domain[],
  progress: (done: number) => void,
): ScoreRow[] {
  const models = expertsOf(spec).map((expert) => modelFromCheckpoint(loadCheckpoint(paths.expert(expert.domain))));
  const length = models[0].config.contextLength;
  let seconds = 0;
  const windowsOf = (text: Uint8Array, bytes: number) =>
    evaluationBatches(text, length, EVAL_ROWS, bytes).flatMap((batch) => {
      const started = performance.now();
      const perExpert = models.map((model) =>
        tf.tidy(() => model.tokenLosses(...batchTensors(batch)).dataSync() as Float32Array),
      );
      seconds += (performance.now() - started) / 1000;
      return Array.from(
        { length: batch.rows },
        (_, row): WindowLosses =>
          perExpert.map((losses) => losses.subarray(row * batch.length, (row + 1) * batch.length)),
      );
    });
  const forestParameters = models.length * parameterCount(models[0].config);
  const rows: ScoreRow[] = [];
  domains.forEach((domain, index) => {
    progress(index);
    const tail = domain.heldOut.subarray(Math.max(0, domain.heldOut.length - POSTERIOR_BYTES));
    const prior = cachedPrior(windowsOf(tail, POSTERIOR_BYTES), models.length);
    seconds = 0;
    const windows = windowsOf(domain.heldOut, spec.eval.bytes);
    const bytes = windows.reduce((sum, window) => sum + window[0].length, 0);
    for (const [label, topK] of [
      ['ensemble:all', models.length],
      ['ensemble:top1', 1],
    ] as const) {
      const started = performance.now();
      const nats = windows.reduce((sum, window) => sum + ensembleWindowLoss(window, prior, topK), 0);
      rows.push({
        model: label,
        domain: domain.name,
        bitsPerByte: nats / bytes / Math.LN2,
        activeParameters: forestParameters,
        tokensPerSecond: bytes / (seconds + (performance.now() - started) / 1000),
      });
    }
  });
  for (const model of models) model.dispose();
  return rows;
}

/** Sequences from the end of a domain's held-out text, scored by every expert: [sequence][expert] log-likelihoods. */
function posteriorSequences(models: TransformerLM[], domain: Domain): number[][] {
  const length = models[0].config.contextLength;
  const text = domain.heldOut.subarray(Math.max(0, domain.heldOut.length - POSTERIOR_BYTES));
  const batches = evaluationBatches(text, length, EVAL_ROWS, POSTERIOR_BYTES);
  return batches.flatMap((batch) => transpose(models.map((model) => sequenceLogLikelihoods(model, batch))));
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

function scoredBytes(domain: Domain, config: ModelConfig, spec: RunSpec): number {
  const usable = Math.min(domain.heldOut.length - 1, spec.eval.bytes);
  return Math.floor(usable / config.contextLength) * config.contextLength;
}

function taskVectorMethods(spec: RunSpec): TaskVectorMethod[] {
  return spec.merge.methods.filter((method): method is TaskVectorMethod =>
    TASK_VECTOR_METHODS.includes(method as TaskVectorMethod),
  );
}

function transpose(matrix: number[][]): number[][] {
  return matrix[0].map((_, column) => matrix.map((row) => row[column]));
}

function toArrays(checkpoint: Checkpoint): NamedArrays {
  return new Map([...checkpoint.weights].map(([name, tensor]) => [name, tensor.data]));
}

/** A parameter's shape under a (possibly MoE) config. */
function shapeOf(config: object, name: string): number[] {
  const shape = parameterShapes(config as ModelConfig).get(name);
  if (!shape) throw new Error(`The merged model has a parameter "${name}" its config does not describe.`);
  return shape;
}

function writeJson(path: string, value: unknown): void {
  mkdirSync(dirname(path), { recursive: true });
  writeFileSync(path, `${JSON.stringify(value, null, 2)}\n`);
}

function loadDomains(spec: RunSpec): Domain[] {
  try {
    return spec.domains.map((reference) => loadDomain(reference, { roots: dataRootsFromEnv() }));
  } catch (error) {
    throw new PermanentTaskError(error instanceof Error ? error.message : String(error));
  }
}
