/**
 * BTM's ensembles on each domain: every expert scores the held-out windows once; the scores are
 * mixed per byte by each mixture (uniform, posterior, posterior top-1), the posterior's prior
 * cached from the domain's held-out tail (the part the eval does not score). Every expert runs,
 * so each row counts the whole forest's parameters as active.
 */
import type { Domain } from '@grove/data';
import { expertsOf, type RunSpec, type ScoreRow } from '@grove/jobs';
import { cachedPrior, ENSEMBLE_MIXTURES, ensembleWindowLoss } from '@grove/merge';
import { parameterCount } from '@grove/model';
import { loadCheckpoint } from '@grove/store';
import { modelFromCheckpoint } from '@grove/train';
import type { RunPaths } from './checkpoints.js';
import { POSTERIOR_BYTES, posteriorTail, windowLosses } from './scoring.js';

export function evaluateEnsembles(
  spec: RunSpec,
  paths: RunPaths,
  domains: Domain[],
  progress: (done: number) => void,
): ScoreRow[] {
  const models = expertsOf(spec).map((expert) => modelFromCheckpoint(loadCheckpoint(paths.expert(expert.domain))));
  const forestParameters = models.length * parameterCount(models[0].config);
  const rows: ScoreRow[] = [];
  domains.forEach((domain, index) => {
    progress(index);
    const prior = cachedPrior(windowLosses(models, posteriorTail(domain.heldOut), POSTERIOR_BYTES), models.length);
    const scoring = performance.now();
    const windows = windowLosses(models, domain.heldOut, spec.eval.bytes);
    const scoringSeconds = (performance.now() - scoring) / 1000;
    const bytes = windows.reduce((sum, window) => sum + window[0].length, 0);
    for (const mixture of ENSEMBLE_MIXTURES) {
      const started = performance.now();
      const nats = windows.reduce((sum, window) => sum + ensembleWindowLoss(window, prior, mixture), 0);
      rows.push({
        model: `ensemble:${mixture.name}`,
        domain: domain.name,
        bitsPerByte: nats / bytes / Math.LN2,
        activeParameters: forestParameters,
        tokensPerSecond: bytes / (scoringSeconds + (performance.now() - started) / 1000),
      });
    }
  });
  for (const model of models) model.dispose();
  return rows;
}
