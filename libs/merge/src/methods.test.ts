import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import type { NamedArrays } from './average.js';
import { MERGE_OPTION_DEFAULTS, type MergeInput } from './method.js';
import { trimToDensity } from './methods/ties.js';
import { PARAMETER_MERGES, parameterMerge } from './registry.js';

const named = (values: number[]): NamedArrays => new Map([['w', Float32Array.from(values)]]);
const values = (model: NamedArrays) => [...(model.get('w') as Float32Array)];
const close = (actual: number[], expected: number[]) => {
  for (const [i, value] of actual.entries()) assert.ok(Math.abs(value - expected[i]) < 1e-6, `${actual} ≠ ${expected}`);
};

// τ1 = [1, −2, 3, 0.5], τ2 = [−1, 4, 1.5, 0.5] from the base [1, 1, 1, 1].
const input: MergeInput = {
  base: named([1, 1, 1, 1]),
  models: [named([2, -1, 4, 1.5]), named([0, 5, 2.5, 1.5])],
};
const options = (overrides: Partial<typeof MERGE_OPTION_DEFAULTS>) => ({ ...MERGE_OPTION_DEFAULTS, ...overrides });

describe('merge methods', () => {
  it('linear: the uniform or weighted mean', () => {
    close(values(PARAMETER_MERGES.linear.merge(input, options({}))), [1, 2, 3.25, 1.5]);
    close(values(PARAMETER_MERGES.linear.merge({ ...input, weights: [3, 1] }, options({}))), [1.5, 0.5, 3.625, 1.5]);
  });

  it('posterior: the mean under the given posterior, which it requires', () => {
    close(
      values(PARAMETER_MERGES.posterior.merge({ ...input, weights: [0.25, 0.75] }, options({}))),
      [0.5, 3.5, 2.875, 1.5],
    );
    assert.throws(() => PARAMETER_MERGES.posterior.merge(input, options({})), /needs the domain posterior/);
  });

  it('task-arithmetic: base + λ Σ w_j τ_j, w_j = 1 unless given', () => {
    // Σ τ = [0, 2, 4.5, 1]; λ = 0.25.
    close(values(PARAMETER_MERGES['task-arithmetic'].merge(input, options({ scale: 0.25 }))), [1, 1.5, 2.125, 1.25]);
    // Σ w·τ with w = (1, 3) = [−2, 10, 7.5, 2]; λ = 0.5.
    close(
      values(PARAMETER_MERGES['task-arithmetic'].merge({ ...input, weights: [1, 3] }, options({ scale: 0.5 }))),
      [0, 6, 4.75, 2],
    );
  });

  it('ties: trims to the largest half, elects signs, averages the agreeing entries', () => {
    // Trimmed: τ1 → [0, −2, 3, 0], τ2 → [0, 4, 1.5, 0]. Entry 1: elected + (−1 + 2), only τ2
    // agrees → 4. Entry 2: both agree → 2.25. Entries 0 and 3: trimmed away → 0.
    close(values(PARAMETER_MERGES.ties.merge(input, options({ density: 0.5 }))), [1, 5, 3.25, 1]);
    // Density 1 with opposing signs: entry 0 sums to 0 (no sign), the rest average their agreeing side.
    close(values(PARAMETER_MERGES.ties.merge(input, options({ density: 1 }))), [1, 5, 3.25, 1.5]);
  });

  it('trims by magnitude, keeping entries tied at the threshold', () => {
    assert.deepEqual([...trimToDensity(Float32Array.from([0.5, -3, 1, 2]), 0.5)], [0, -3, 0, 2]);
    assert.deepEqual([...trimToDensity(Float32Array.from([1, -1, 1, 0]), 0.5)], [1, -1, 1, 0]);
  });

  it('dare: density 1 keeps the weighted sum of task vectors; otherwise each entry is dropped or rescaled by 1/density', () => {
    close(values(PARAMETER_MERGES.dare.merge(input, options({ density: 1, scale: 2 }))), [1, 3, 5.5, 2]);
    const size = 20_000;
    const tau = Float32Array.from({ length: size }, (_, i) => 1 + (i % 7));
    const single: MergeInput = {
      base: new Map([['w', new Float32Array(size)]]),
      models: [new Map([['w', tau]])],
      weights: [1],
    };
    const merged = PARAMETER_MERGES.dare.merge(single, options({ density: 0.25, seed: 7 })).get('w') as Float32Array;
    let kept = 0;
    merged.forEach((value, i) => {
      if (value === 0) return;
      kept++;
      assert.equal(value, tau[i] * 4);
    });
    assert.ok(Math.abs(kept / size - 0.25) < 0.02, `kept ${kept / size}`);
    const again = PARAMETER_MERGES.dare.merge(single, options({ density: 0.25, seed: 7 })).get('w') as Float32Array;
    assert.deepEqual(again, merged);
    const other = PARAMETER_MERGES.dare.merge(single, options({ density: 0.25, seed: 8 })).get('w') as Float32Array;
    assert.notDeepEqual(other, merged);
  });

  it('refuses incompatible models and bad options with one sentence', () => {
    const mismatched = { ...input, models: [named([1, 2, 3, 4]), named([1, 2])] };
    for (const method of Object.values(PARAMETER_MERGES)) {
      assert.throws(
        () => method.merge({ ...mismatched, weights: [1, 1] }, options({})),
        /Parameter "w" has 2 values in model 1 but 4/,
      );
    }
    const renamed = { ...input, models: [named([1, 2, 3, 4]), new Map([['v', new Float32Array(4)]])] };
    assert.throws(() => PARAMETER_MERGES.ties.merge(renamed, options({})), /Model 1 has no parameter "w"/);
    assert.throws(() => PARAMETER_MERGES.ties.merge(input, options({ density: 0 })), /density must be in \(0, 1\]/);
    assert.throws(() => PARAMETER_MERGES.linear.merge({ ...input, weights: [1] }, options({})), /1 weights for 2/);
    assert.throws(() => parameterMerge('slerp'), /Unknown merge method "slerp"; choose one of linear, posterior/);
  });
});
