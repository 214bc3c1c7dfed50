/**
 * How a run spends its training compute, in FLOPs (6 per weight per token plus attention; see
 * trainingFlopsPerToken): the seed and the experts, each MoE fine-tune as a share of the total,
 * and the dense baseline that gets the same total as the run.
 */
import { type ModelConfig, trainingFlopsPerToken } from '@grove/model';
import { modelConfigOf } from './artifacts.js';
import type { FinetunedMethod } from './queues.js';
import { expertsOf, type RunSpec } from './run-spec.js';

export interface ComputePlan {
  /** Training FLOPs of the seed and every expert. */
  branchFlops: number;
  /** Updates of each MoE fine-tune the spec asks for (absent: none). */
  finetuneSteps: Partial<Record<FinetunedMethod, number>>;
  /** Updates of the dense baseline: the run's total compute (with the BTX fine-tune, else DS-MoE's) on the mixture. */
  denseSteps: number;
}

/** The Mixture-of-Experts config `btx` or `ds-moe` assembles from this run's experts. */
export function moeConfigOf(spec: RunSpec, method: FinetunedMethod): ModelConfig {
  const experts = expertsOf(spec).length;
  if (method === 'btx') {
    const { btx } = spec.merge;
    return {
      ...modelConfigOf(spec),
      moe: {
        experts: experts + (btx.keepSeed ? 1 : 0),
        topK: btx.topK,
        training: 'sparse',
        threshold: 0,
        balanceCoefficient: btx.finetune.balanceCoefficient,
      },
    };
  }
  const { dsMoe } = spec.merge;
  return {
    ...modelConfigOf(spec),
    moe: {
      experts,
      topK: dsMoe.topK,
      training: 'dense',
      threshold: dsMoe.threshold,
      balanceCoefficient: dsMoe.finetune.balanceCoefficient,
    },
  };
}

export function computePlan(spec: RunSpec): ComputePlan {
  const config = modelConfigOf(spec);
  const tokensPerStep = spec.training.batchSize * config.contextLength;
  const denseStepFlops = trainingFlopsPerToken(config) * tokensPerStep;
  const branchSteps = spec.seed.steps + expertsOf(spec).reduce((sum, expert) => sum + expert.steps, 0);
  const branchFlops = branchSteps * denseStepFlops;
  const finetuneSteps: Partial<Record<FinetunedMethod, number>> = {};
  const finetuneFlops: Partial<Record<FinetunedMethod, number>> = {};
  for (const method of ['btx', 'ds-moe'] as const) {
    if (!spec.merge.methods.includes(method)) continue;
    const { finetune } = method === 'btx' ? spec.merge.btx : spec.merge.dsMoe;
    const stepFlops = trainingFlopsPerToken(moeConfigOf(spec, method)) * tokensPerStep;
    // A fraction f of the total: the fine-tune costs f / (1 − f) of the seed and experts.
    const target = (branchFlops * finetune.computeFraction) / (1 - finetune.computeFraction);
    const steps = finetune.steps ?? Math.round(target / stepFlops);
    if (steps < 1) continue;
    finetuneSteps[method] = steps;
    finetuneFlops[method] = steps * stepFlops;
  }
  const matched = finetuneFlops.btx ?? finetuneFlops['ds-moe'] ?? 0;
  return { branchFlops, finetuneSteps, denseSteps: Math.round((branchFlops + matched) / denseStepFlops) };
}
