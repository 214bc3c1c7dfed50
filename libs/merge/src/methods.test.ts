import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { dare, mergeAgainstBase, taskArithmetic, ties, trim } from './methods/index.js';

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

  it('task arithmetic adds λ times the weighted mean of the task vectors', () => {
    close(values(taskArithmetic(base, [a, b], [1, 1], 1)), [2.5, 1, -0.5, 1.5]);
    close(values(taskArithmetic(base, [a, b], [3, 1], 2)), [1 + 2 * 1.75, 1 + 2 * -0.5, 1 + 2 * -0.75, 2]);
  });

  it('TIES trims, elects the sign of the sum and averages the agreeing values', () => {
    assert.deepEqual([...trim(Float32Array.from([2, -1, 0, 0.5]), 0.5)], [2, -1, 0, 0]);
    // Density 1 (no trimming): sums [3, 0, −3, 1] elect signs [+, none, −, +]; element 1 has
    // no sign and stays at the seed; the others average the values that agree.
    close(values(ties(base, [a, b], 1, 1)), [1 + 1.5, 1, 1 - 3, 1 + 0.5]);
    // Density 0.5: a keeps [2, −1, 0, 0]; b's magnitudes [1, 1, 3, 0.5] put the threshold at 1,
    // and ties at it are kept: [1, 1, −3, 0]. Sums [3, 0, −3, 0] → [mean(2, 1), —, −3, —].
    close(values(ties(base, [a, b], 0.5, 1)), [2.5, 1, -2, 1]);
  });

  it('DARE keeps each vector’s expectation and is reproducible from its seed', () => {
    const big = model(Array(20_000).fill(0));
    const expert = model(Array(20_000).fill(1));
    const merged = values(dare(big, [expert], [1], 0.75, 1, 7));
    const kept = merged.filter((v) => v !== 0);
    assert.ok(
      kept.every((v) => Math.abs(v - 4) < 1e-6),
      'survivors are scaled by 1 / (1 − p)',
    );
    const mean = merged.reduce((s, v) => s + v, 0) / merged.length;
    assert.ok(Math.abs(mean - 1) < 0.05, `mean ${mean}`);
    assert.deepEqual(values(dare(big, [expert], [1], 0.75, 1, 7)), merged);
    assert.notDeepEqual(values(dare(big, [expert], [1], 0.75, 1, 8)), merged);
    // No drop: the weighted sum of the task vectors.
    close(values(dare(base, [a, b], [1, 1], 0, 1, 1)), [2.5, 1, -0.5, 1.5]);
  });

  it('refuses experts that do not share the seed’s shape, and bad settings', () => {
    assert.throws(() => taskArithmetic(base, [model([1, 2])], [1], 1), /2 values in expert 0 but 4/);
    assert.throws(
      () => taskArithmetic(base, [new Map([['v', Float32Array.from([1, 1, 1, 1])]])], [1], 1),
      /no parameter "w"/,
    );
    assert.throws(() => ties(base, [a], 0, 1), /density/);
    assert.throws(() => dare(base, [a], [1], 1, 1, 1), /drop rate/);
    assert.throws(
      () => mergeAgainstBase('ties', base, [], { scale: 1, density: 0.5, dropRate: 0.5, seed: 1 }),
      /at least one expert/,
    );
  });
});
