import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { cachedPrior, ensembleWindowLoss, windowPosterior } from './ensemble.js';
import { posteriorMixture, posteriorTopK, uniformMixture } from './mixtures.js';

const window = (...rows: number[][]) => rows.map((row) => Float32Array.from(row));
const sum = (values: number[]) => values.reduce((a, b) => a + b, 0);

describe('BTM expert ensemble', () => {
  it('mixes with the prior at the first byte and with the posterior after it', () => {
    // Two experts, two positions. Position 0: p = e^-1 and e^-2, weights = prior [0.5, 0.5].
    const losses = window([1, 1], [2, 3]);
    const first = -Math.log(0.5 * Math.exp(-1) + 0.5 * Math.exp(-2));
    // Position 1: posterior ∝ [0.5 e^-1, 0.5 e^-2] → [1, e^-1] / (1 + e^-1).
    const w = [1 / (1 + Math.exp(-1)), Math.exp(-1) / (1 + Math.exp(-1))];
    const second = -Math.log(w[0] * Math.exp(-1) + w[1] * Math.exp(-3));
    assert.ok(Math.abs(ensembleWindowLoss(losses, [0.5, 0.5], posteriorMixture) - (first + second)) < 1e-9);
  });

  it('uniform: weighs every expert 1/k at every position, whatever the prior and the context', () => {
    const losses = window([1, 1], [2, 3]);
    const expected = -Math.log((Math.exp(-1) + Math.exp(-2)) / 2) - Math.log((Math.exp(-1) + Math.exp(-3)) / 2);
    assert.ok(Math.abs(ensembleWindowLoss(losses, [0.9, 0.1], uniformMixture) - expected) < 1e-9);
  });

  it('with top-1 follows the currently likeliest expert alone', () => {
    const losses = window([1, 5, 1], [2, 1, 1]);
    // t0: prior favours expert 1 (0.3 vs 0.7) → loss 2; t1: log-post [ln .3 − 1, ln .7 − 2] → expert 0 → 5;
    // t2: [ln .3 − 6, ln .7 − 3] → expert 1 → 1.
    assert.ok(Math.abs(ensembleWindowLoss(losses, [0.3, 0.7], posteriorTopK(1)) - (2 + 5 + 1)) < 1e-9);
  });

  it('posterior: is the prior-weighted mixture of whole-window likelihoods, so never worse than the worst expert nor better than the best', () => {
    // The experts take turns being right: per position the posterior moves, over the window it is Bayes' rule.
    const a = [0.2, 3, 0.4, 2.5, 0.1, 4];
    const b = [2.8, 0.3, 3.1, 0.2, 2.6, 0.5];
    const c = [1.5, 1.4, 1.6, 1.3, 1.5, 1.4];
    const prior = [0.5, 0.3, 0.2];
    const losses = window(a, b, c);
    const totals = losses.map((row) => sum([...row]));
    const ensemble = ensembleWindowLoss(losses, prior, posteriorMixture);
    const bayes = -Math.log(sum(totals.map((loss, j) => prior[j] * Math.exp(-loss))));
    assert.ok(Math.abs(ensemble - bayes) < 1e-9, `${ensemble} vs ${bayes}`);
    assert.ok(ensemble <= Math.max(...totals) && ensemble >= Math.min(...totals));
    // At most log(1 / prior_j) nats worse than any expert j.
    for (const [j, loss] of totals.entries()) assert.ok(ensemble <= loss - Math.log(prior[j]) + 1e-9);
  });

  it('uniform: never worse than the experts’ mean loss (Jensen), and worse than the posterior when one expert fits', () => {
    const a = [0.2, 3, 0.4, 2.5];
    const b = [2.8, 0.3, 3.1, 0.2];
    const uniform = ensembleWindowLoss(window(a, b), [0.5, 0.5], uniformMixture);
    assert.ok(uniform < (sum(a) + sum(b)) / 2);
    const good = Array(50).fill(0.5);
    const bad = Array(50).fill(3);
    const fits = window(good, bad);
    assert.ok(
      ensembleWindowLoss(fits, [0.5, 0.5], posteriorMixture) < ensembleWindowLoss(fits, [0.5, 0.5], uniformMixture),
    );
  });

  it('caches a prior that leans towards the expert that explains the domain', () => {
    const windows = Array.from({ length: 5 }, () => window([1, 1, 1], [2, 2, 2], [1.5, 1.5, 1.5]));
    const prior = cachedPrior(windows, 3);
    assert.ok(prior[0] > prior[2] && prior[2] > prior[1]);
    assert.ok(Math.abs(prior.reduce((a, b) => a + b, 0) - 1) < 1e-9);
    const unchanged = windowPosterior(window([0], [0]), [0.25, 0.75]);
    assert.ok(Math.abs(unchanged[0] - 0.25) < 1e-12 && Math.abs(unchanged[1] - 0.75) < 1e-12);
  });
});
