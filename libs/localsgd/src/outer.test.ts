import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { OuterOptimizer } from './outer.js';
import { PENALTY_DEFAULTS, PseudoGradientPenalty } from './penalty.js';

const arrays = (values: Record<string, number[]>) =>
  new Map(Object.entries(values).map(([name, list]) => [name, Float32Array.from(list)]));

describe('outer Nesterov SGD', () => {
  it('matches the hand-computed update over two rounds', () => {
    const outer = new OuterOptimizer({ learningRate: 0.5, momentum: 0.9 });
    // Round 1: m = Δ = [1, -2]; θ = θ0 − 0.5·(Δ + 0.9·m) = [10, 10] − 0.5·[1.9, −3.8] = [9.05, 11.9].
    const first = outer.step(arrays({ w: [10, 10] }), arrays({ w: [1, -2] }));
    assert.deepEqual([...(first.get('w') as Float32Array)], [Math.fround(9.05), Math.fround(11.9)]);
    // Round 2: m = 0.9·[1, −2] + [0.5, 0.5] = [1.4, −1.3]; update = Δ + 0.9·m = [1.76, −0.67].
    const second = outer.step(first, arrays({ w: [0.5, 0.5] }));
    const expected = [Math.fround(9.05) - 0.5 * 1.76, Math.fround(11.9) - 0.5 * -0.67];
    for (const [i, value] of (second.get('w') as Float32Array).entries())
      assert.ok(Math.abs(value - expected[i]) < 1e-5);
    assert.ok(Math.abs((outer.momentum.get('w') as Float32Array)[0] - 1.4) < 1e-6);
  });

  it('with momentum 0 and lr 1 it lands on the average of the replicas', () => {
    const outer = new OuterOptimizer({ learningRate: 1, momentum: 0 });
    const next = outer.step(arrays({ w: [4, 4] }), arrays({ w: [1, 3] }));
    assert.deepEqual([...(next.get('w') as Float32Array)], [3, 1]);
  });

  it('leaves its inputs untouched and refuses a mismatched pseudo-gradient', () => {
    const start = arrays({ w: [1, 2] });
    const outer = new OuterOptimizer({ learningRate: 0.7, momentum: 0.9 });
    outer.step(start, arrays({ w: [1, 1] }));
    assert.deepEqual([...(start.get('w') as Float32Array)], [1, 2]);
    assert.throws(() => outer.step(start, arrays({ v: [1, 1] })), /no matching w/);
  });
});

describe('pseudo-gradient penalty', () => {
  const contribution = (rank: number, norm: number, extra = {}) => ({
    rank,
    norm,
    steps: 8,
    finite: Number.isFinite(norm),
    baseRound: 0,
    ...extra,
  });

  it('averages uniformly by default and always leaves out non-finite or stale Δ', () => {
    const penalty = new PseudoGradientPenalty(PENALTY_DEFAULTS);
    const { verdict } = penalty.judge(
      [contribution(0, 1), contribution(1, Number.NaN), contribution(2, 2), contribution(3, 1, { baseRound: 5 })],
      1,
    );
    assert.deepEqual(
      [...verdict.scale],
      [
        [0, 0.5],
        [1, 0],
        [2, 0.5],
        [3, 0],
      ],
    );
    assert.match(verdict.excluded.get(1) as string, /non-finite/);
    assert.match(verdict.excluded.get(3) as string, /round 5/);
  });

  it('drops an outlier norm after the warm-up rounds', () => {
    let penalty = new PseudoGradientPenalty(PENALTY_DEFAULTS);
    for (let round = 1; round <= 5; round++) {
      const base = { baseRound: round - 1 };
      const { state } = penalty.judge(
        [contribution(0, 1 + round * 0.01, base), contribution(1, 1 - round * 0.01, base)],
        round,
      );
      penalty = new PseudoGradientPenalty(PENALTY_DEFAULTS, state);
    }
    const { verdict } = penalty.judge(
      [contribution(0, 1.02, { baseRound: 5 }), contribution(1, 40, { baseRound: 5 })],
      6,
    );
    assert.equal(verdict.scale.get(0), 1);
    assert.equal(verdict.scale.get(1), 0);
    assert.match(verdict.excluded.get(1) as string, /outlier/);
  });

  it('weighs by softmax(−‖Δ‖/T), by inner steps, and clips', () => {
    const settings = {
      ...PENALTY_DEFAULTS,
      anomaly: { ...PENALTY_DEFAULTS.anomaly, enabled: false },
      weighting: { enabled: true, temperature: 1 },
      weightBySteps: true,
      clipNorm: 1.5,
    };
    const { verdict } = new PseudoGradientPenalty(settings).judge(
      [contribution(0, 1, { steps: 4 }), contribution(1, 2, { steps: 8 })],
      1,
    );
    const w0 = 4 * Math.exp(-1);
    const w1 = 8 * Math.exp(-2);
    assert.ok(Math.abs((verdict.scale.get(0) as number) - w0 / (w0 + w1)) < 1e-12);
    assert.ok(Math.abs((verdict.scale.get(1) as number) - (w1 / (w0 + w1)) * 0.75) < 1e-12);
  });
});
