import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { mergeModels } from '../merge-models.js';
import { dare } from './dare.js';
import { taskArithmetic } from './task-arithmetic.js';
import { ties, trim } from './ties.js';

const model = (values: number[]) => new Map([['w', Float32Array.from(values)]]);
const values = (merged: Map<string, Float32Array>) => [...(merged.get('w') as Float32Array)];
const close = (actual: number[], expected: number[]) => {
  for (const [i, v] of actual.entries()) assert.ok(Math.abs(v - expected[i]) < 1e-6, `[${i}] ${v} vs ${expected[i]}`);
};

describe('merge methods against the seed', () => {
  const base = model([1, 1, 1, 1]);
  // Task vectors: a = [2, -1, 0, 0.5], b = [1, 1, -3, 0.5]
  const a = model([3, 0, 1, 1.5]);
  const b = model([2, 2, -2, 1.5]);
  const both = (weights = [1, 1]) => ({ base, experts: [a, b], weights, seed: 1 });

  it('task arithmetic adds λ times the weighted mean of the task vectors', () => {
    close(values(mergeModels(taskArithmetic, both(), { scale: 1 })), [2.5, 1, -0.5, 1.5]);
    close(values(mergeModels(taskArithmetic, both([3, 1]), { scale: 2 })), [
      1 + 2 * 1.75,
      1 + 2 * -0.5,
      1 + 2 * -0.75,
      2,
    ]);
  });

  it('TIES trims, elects the sign of the sum and averages the agreeing values', () => {
    assert.deepEqual([...trim(Float32Array.from([2, -1, 0, 0.5]), 0.5)], [2, -1, 0, 0]);
    // Density 1 (no trimming): sums [3, 0, −3, 1] elect signs [+, none, −, +]; element 1 has
    // no sign and stays at the seed; the others average the values that agree.
    close(values(mergeModels(ties, both(), { density: 1, scale: 1 })), [1 + 1.5, 1, 1 - 3, 1 + 0.5]);
    // Density 0.5: a keeps [2, −1, 0, 0]; b's magnitudes [1, 1, 3, 0.5] put the threshold at 1,
    // and ties at it are kept: [1, 1, −3, 0]. Sums [3, 0, −3, 0] → [mean(2, 1), —, −3, —].
    close(values(mergeModels(ties, both(), { density: 0.5, scale: 1 })), [2.5, 1, -2, 1]);
  });

  it('DARE keeps each vector’s expectation and is reproducible from its seed', () => {
    const big = model(Array(20_000).fill(0));
    const expert = model(Array(20_000).fill(1));
    const run = (seed: number) =>
      values(mergeModels(dare, { base: big, experts: [expert], weights: [1], seed }, { dropRate: 0.75, scale: 1 }));
    const merged = run(7);
    const kept = merged.filter((v) => v !== 0);
    assert.ok(
      kept.every((v) => Math.abs(v - 4) < 1e-6),
      'survivors are scaled by 1 / (1 − p)',
    );
    const mean = merged.reduce((s, v) => s + v, 0) / merged.length;
    assert.ok(Math.abs(mean - 1) < 0.05, `mean ${mean}`);
    assert.deepEqual(run(7), merged);
    assert.notDeepEqual(run(8), merged);
    // No drop: the weighted mean of the task vectors.
    close(values(mergeModels(dare, both(), { dropRate: 0, scale: 1 })), [2.5, 1, -0.5, 1.5]);
  });

  it('refuses experts that do not share the seed’s shape, and bad weights', () => {
    const merge = (experts: Map<string, Float32Array>[], weights = [1]) =>
      mergeModels(taskArithmetic, { base, experts, weights, seed: 1 }, { scale: 1 });
    assert.throws(() => merge([model([1, 2])]), /2 values in expert 0 but 4/);
    assert.throws(() => merge([new Map([['v', Float32Array.from([1, 1, 1, 1])]])]), /no parameter "w"/);
    assert.throws(() => merge([]), /at least one expert/);
    assert.throws(() => merge([a], [-1]), /non-negative/);
  });
});
