/**
 * The `eval` job: every model of the run scored on every domain's held-out text (bits per byte,
 * active parameters, tokens/s), then the ensembles; the table goes to report.json.
 */
import { mkdirSync, writeFileSync } from 'node:fs';
import { dirname } from 'node:path';
import type { Domain } from '@grove/data';
import { artifactPaths, expertsOf, type RunSpec, type ScoreRow, tensorMethodsOf } from '@grove/jobs';
import { activeParameterCount, type ModelConfig, TransformerLM } from '@grove/model';
import { loadCheckpoint } from '@grove/store';
import { bitsPerByte, checkpointArrays, modelFromCheckpoint } from '@grove/train';
import { finetunedFolder, type RunPaths } from '../checkpoints.js';
import { evaluateEnsembles } from '../ensembles.js';
import { EVAL_ROWS } from '../scoring.js';
import { type MergerInput, type MergerResult, type Report, serveMergerTask } from '../task.js';

interface PlannedModel {
  model: string;
  folder: string;
  domains: Domain[];
  /** Evaluate under a different routing than the checkpoint's (DS-MoE with every expert). */
  config?: (config: ModelConfig) => ModelConfig;
}

function evaluate({ runId, spec, stateFolder }: MergerInput, domains: Domain[], report: Report): MergerResult {
  const paths = artifactPaths(stateFolder, runId);
  const plan = evaluationPlan(spec, paths, domains);
  const ensembles = spec.merge.methods.includes('ensemble');
  const total = plan.reduce((sum, entry) => sum + entry.domains.length, 0) + (ensembles ? domains.length : 0);
  const rows: ScoreRow[] = [];
  for (const entry of plan) {
    const checkpoint = loadCheckpoint(entry.folder);
    const model = entry.config
      ? TransformerLM.fromArrays(
          entry.config(checkpoint.config as unknown as ModelConfig),
          checkpointArrays(checkpoint),
        )
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
  if (ensembles) {
    const done = rows.length;
    rows.push(
      ...evaluateEnsembles(spec, paths, domains, (index) => report({ stage: 'ensemble', done: done + index, total })),
    );
  }
  writeJson(paths.report, { runId, rows });
  return { rows };
}

/** Each entry scores one model on some domains; a posterior-weighted merge is scored on its own target domain. */
function evaluationPlan(spec: RunSpec, paths: RunPaths, domains: Domain[]): PlannedModel[] {
  const methods = spec.merge.methods;
  const plan: PlannedModel[] = [{ model: 'seed', folder: paths.seed, domains }];
  if (spec.denseBaseline) plan.push({ model: 'dense', folder: paths.dense, domains });
  for (const expert of expertsOf(spec))
    plan.push({ model: `expert:${expert.domain}`, folder: paths.expert(expert.domain), domains });
  for (const method of tensorMethodsOf(spec)) {
    const model = `merged:${method.name}`;
    if (method.weighting === 'uniform') plan.push({ model, folder: paths.merged(method.name), domains });
    else
      for (const domain of domains)
        plan.push({ model, folder: paths.merged(`${method.name}-${domain.name}`), domains: [domain] });
  }
  if (methods.includes('btx')) {
    plan.push({ model: 'btx', folder: paths.merged('btx'), domains });
    const finetuned = finetunedFolder(paths, 'btx');
    if (finetuned) plan.push({ model: 'btx:finetuned', folder: finetuned, domains });
  }
  if (methods.includes('ds-moe')) {
    const folder = finetunedFolder(paths, 'ds-moe') ?? paths.merged('ds-moe');
    plan.push({ model: 'ds-moe:dense-inference', folder, domains, config: everyExpert });
    plan.push({ model: 'ds-moe', folder, domains });
  }
  return plan;
}

/** A DS-MoE checkpoint routed through every expert, weighted by the full router softmax: its dense inference. */
const everyExpert = (config: ModelConfig): ModelConfig =>
  config.moe ? { ...config, moe: { ...config.moe, topK: config.moe.experts, threshold: 0 } } : config;

function scoredBytes(domain: Domain, config: ModelConfig, spec: RunSpec): number {
  const usable = Math.min(domain.heldOut.length - 1, spec.eval.bytes);
  return Math.floor(usable / config.contextLength) * config.contextLength;
}

function writeJson(path: string, value: unknown): void {
  mkdirSync(dirname(path), { recursive: true });
  writeFileSync(path, `${JSON.stringify(value, null, 2)}\n`);
}

serveMergerTask(evaluate);
