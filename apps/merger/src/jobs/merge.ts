/**
 * The `merge` job: every method the run asks for, built from the experts. Tensor methods run
 * parameter by parameter through the registry (one model, or one per target domain for the
 * posterior-weighted ones); the MoE assemblers build BTX and DS-MoE for their fine-tunes.
 */
import { rmSync } from 'node:fs';
import { join } from 'node:path';
import type { Domain } from '@grove/data';
import { artifactPaths, expertsMergedBy, expertsOf, methodOptionsOf, moeConfigOf, tensorMethodsOf } from '@grove/jobs';
import { domainPosterior, MOE_ASSEMBLERS, mergeModels, type TensorMergeMethod, uniformWeights } from '@grove/merge';
import type { ModelConfig, NamedArrays, TransformerLM } from '@grove/model';
import { type Checkpoint, loadCheckpoint } from '@grove/store';
import { checkpointArrays, modelFromCheckpoint } from '@grove/train';
import { saveMerged } from '../checkpoints.js';
import { domainNamed } from '../domains.js';
import { hiddenMeans } from '../router-init.js';
import { posteriorSequences } from '../scoring.js';
import { type MergerInput, type MergerResult, type Report, serveMergerTask } from '../task.js';

/** One merged model a method writes: its folder under merged/, its name in the weights record, its expert weights. */
interface MergeTarget {
  folder: string;
  label: string;
  weights: number[];
}

function merge({ runId, spec, stateFolder }: MergerInput, domains: Domain[], report: Report): MergerResult {
  const paths = artifactPaths(stateFolder, runId);
  // Everything under merged/ is rebuilt from the experts: a forest that grew leaves nothing stale behind.
  rmSync(join(paths.run, 'merged'), { recursive: true, force: true });
  const seedCheckpoint = loadCheckpoint(paths.seed);
  const seed = checkpointArrays(seedCheckpoint);
  const config = seedCheckpoint.config as unknown as ModelConfig;
  const names = expertsOf(spec).map((expert) => expert.domain);
  const checkpoints = names.map((domain) => loadCheckpoint(paths.expert(domain)));
  const experts = new Map(names.map((domain, i) => [domain, checkpointArrays(checkpoints[i])]));
  const sequences = lazy(() => posteriorLogLikelihoods(checkpoints.map(modelFromCheckpoint), domains));
  const weights: Record<string, Record<string, number>> = {};

  for (const method of tensorMethodsOf(spec)) {
    const chosen = expertsMergedBy(spec, method, names);
    const options = methodOptionsOf(spec, method);
    const targets = mergeTargets(method, chosen.length, domains, (domain) =>
      domainPosterior(sequences()[domain].map((row) => chosen.map((name) => row[names.indexOf(name)]))),
    );
    targets.forEach((target, index) => {
      report({ stage: method.name, done: index, total: targets.length });
      const merged = mergeModels(
        method,
        {
          base: seed,
          experts: chosen.map((name) => experts.get(name) as NamedArrays),
          weights: target.weights,
          seed: spec.training.seed,
        },
        options,
      );
      const byExpert = Object.fromEntries(chosen.map((name, i) => [name, target.weights[i]]));
      saveMerged(paths.merged(target.folder), config, merged, { method: target.label, weights: byExpert, options });
      weights[target.label] = byExpert;
    });
  }

  for (const assembler of MOE_ASSEMBLERS.filter(({ name }) => spec.merge.methods.includes(name))) {
    report({ stage: assembler.name, done: 0, total: 1 });
    const moeConfig = moeConfigOf(spec, assembler.name);
    const moe = moeConfig.moe as NonNullable<ModelConfig['moe']>;
    const keepSeed = moe.experts > names.length;
    const { router } = spec.merge.btx;
    const assembled = assembler.assemble(config, seed, [...experts.values()], {
      topK: moe.topK,
      keepSeed,
      router,
      hiddenMeans: router === 'hidden' ? routerMeans(seedCheckpoint, names, domains, keepSeed) : undefined,
      balanceCoefficient: moe.balanceCoefficient,
      seed: spec.training.seed,
    });
    saveMerged(paths.merged(assembler.name), moeConfig, assembled.weights, {
      method: assembler.name,
      experts: [...names, ...(keepSeed ? ['seed'] : [])],
      router,
    });
  }
  return { weights };
}

/** Uniform methods write one model; domain-posterior ones one per target domain, in `posterior-<domain>`. */
function mergeTargets(
  method: TensorMergeMethod,
  experts: number,
  domains: Domain[],
  posterior: (domain: string) => number[],
): MergeTarget[] {
  if (method.weighting === 'uniform')
    return [{ folder: method.name, label: method.name, weights: uniformWeights(experts) }];
  return domains.map((domain) => ({
    folder: `${method.name}-${domain.name}`,
    label: `${method.name}:${domain.name}`,
    weights: posterior(domain.name),
  }));
}

/** By target domain: [sequence][expert] log-likelihoods of its held-out tail under every expert. */
function posteriorLogLikelihoods(models: TransformerLM[], domains: Domain[]): Record<string, number[][]> {
  const sequences = Object.fromEntries(domains.map((domain) => [domain.name, posteriorSequences(models, domain)]));
  for (const model of models) model.dispose();
  return sequences;
}

function routerMeans(
  seedCheckpoint: Checkpoint,
  names: string[],
  domains: Domain[],
  keepSeed: boolean,
): Float32Array[][] {
  const model = modelFromCheckpoint(seedCheckpoint);
  const means = hiddenMeans(
    model,
    names.map((name) => domainNamed(domains, name)),
    keepSeed,
  );
  model.dispose();
  return means;
}

function lazy<T>(make: () => T): () => T {
  let value: T | undefined;
  return () => {
    value ??= make();
    return value;
  };
}

serveMergerTask(merge);
