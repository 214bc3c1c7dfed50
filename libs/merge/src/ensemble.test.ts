import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { cachedPrior, ensembleWindowLoss, windowPosterior } from './ensemble.js';

const window = (...rows: number[][]) => rows.map((row) => Float32Array.from(row));

describe('BTM expert ensemble', () => {
  it('mixes with the prior at the first byte and with the posterior after it', () => {
    // Two experts, two positions. Position 0: p = e^-1 and e^-2, weights = prior [0.5, 0.5].
    const losses = window([1, 1], [2, 3]);
    const first = -Math.log(0.5 * Math.exp(-1) + 0.5 * Math.exp(-2));
    // Position 1: posterior ∝ [0.5 e^-1, 0.5 e^-2] → [1, e^-1] / (1 + e^-1).
    const w = [1 / (1 + Math.exp(-1)), Math.exp(-1) / (1 + Math.exp(-1))];
    const second = -Math.log(w[0] * Math.exp(-1) + w[1] * Math.exp(-3));
    assert.ok(Math.abs(ensembleWindowLoss(losses, [0.5, 0.5]) - (first + second)) < 1e-9);
  });

  it('with top-1 follows the currently likeliest expert alone', () => {
    const losses = window([1, 5, 1], [2, 1, 1]);
    // t0: prior favours expert 1 (0.3 vs 0.7) → loss 2; t1: log-post [ln .3 − 1, ln .7 − 2] → expert 0 → 5;
    // t2: [ln .3 − 6, ln .7 − 3] → expert 1 → 1.
    assert.ok(Math.abs(ensembleWindowLoss(losses, [0.3, 0.7], 1) - (2 + 5 + 1)) < 1e-9);
  });

  it('never does worse than the worst expert and beats the uniform mixture when one expert fits', () => {
    const good = Array(50).fill(0.5);
    const bad = Array(50).fill(3);
    const losses = window(good, bad);
    const ensemble = ensembleWindowLoss(losses, [0.5, 0.5]);
    const uniform = good.reduce((sum, _, t) => sum - Math.log(0.5 * Math.exp(-good[t]) + 0.5 * Math.exp(-bad[t])), 0);
    assert.ok(ensemble < uniform && ensemble > 50 * 0.5);
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
