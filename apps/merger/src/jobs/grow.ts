/**
 * The `grow` job: a new expert's starting point (BTM), the experts that exist averaged with
 * weights from their domain posterior on the new domain's training text. Nothing existing is written.
 */
import type { Domain } from '@grove/data';
import { artifactPaths, expertsOf } from '@grove/jobs';
import { domainPosterior, weightedAverage } from '@grove/merge';
import type { ModelConfig } from '@grove/model';
import { loadCheckpoint } from '@grove/store';
import { checkpointArrays, modelFromCheckpoint } from '@grove/train';
import { saveMerged } from '../checkpoints.js';
import { domainNamed } from '../domains.js';
import { posteriorSequences } from '../scoring.js';
import { type MergerInput, type MergerResult, type Report, serveMergerTask } from '../task.js';

function grow({ runId, spec, stateFolder, domain }: MergerInput, domains: Domain[], report: Report): MergerResult {
  const paths = artifactPaths(stateFolder, runId);
  const target = domainNamed(domains, domain ?? '');
  const existing = expertsOf(spec).filter((expert) => expert.domain !== target.name);
  report({ stage: 'grow', done: 0, total: 1 });
  const checkpoints = existing.map((expert) => loadCheckpoint(paths.expert(expert.domain)));
  const models = checkpoints.map(modelFromCheckpoint);
  const posterior = domainPosterior(posteriorSequences(models, target, target.train));
  for (const model of models) model.dispose();
  const weights = Object.fromEntries(existing.map((expert, i) => [expert.domain, posterior[i]]));
  saveMerged(
    paths.growStart(target.name),
    checkpoints[0].config as unknown as ModelConfig,
    weightedAverage(checkpoints.map(checkpointArrays), posterior),
    { method: 'posterior', weights },
  );
  return { weights: { [`grow:${target.name}`]: weights } };
}

serveMergerTask(grow);
