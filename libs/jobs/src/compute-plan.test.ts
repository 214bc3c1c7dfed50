import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { computePlan } from './compute-plan.js';
import { parseRunSpec } from './run-spec.js';

const spec = (merge: object, extra: object = {}) =>
  parseRunSpec({ domains: ['press', 'fiction'], seed: { steps: 100 }, expertSteps: 50, merge, ...extra });

/*
 * Hand-computed for `tiny` (4 layers × 128, feed-forward 512, vocabulary 260, context 128),
 * batch 16 × 128 = 2048 tokens per step. FLOPs per token are 6 per matrix weight plus
 * 12 · 4 · 128 · 128 = 786 432 for attention:
 *   dense:                      4 · (4 · 128² + 2 · 128 · 512) + 128 · 260 = 819 712 weights → 5 704 704
 *   MoE of 2, top-2 (or dense): 4 · (65 536 + 128 · 2 + 2 · 131 072) + 33 280 = 1 345 024 → 8 856 576
 *   MoE of 4, top-2:            4 · (65 536 + 128 · 4 + 2 · 131 072) + 33 280 = 1 346 048 → 8 862 720
 *   MoE of 4, dense training:   4 · (65 536 + 128 · 4 + 4 · 131 072) + 33 280 = 2 394 624 → 15 154 176
 */
describe('compute plan', () => {
  it('gives the BTX fine-tune 20 % of the run’s total compute and the dense baseline all of it', () => {
    // Seed 100 + 2 experts × 50 = 200 dense steps; 20 % of the total is a quarter of that:
    // 50 · 5 704 704 / 8 856 576 = 32.2 fine-tune steps; the dense model gets 200 + 32 · 8 856 576 / 5 704 704 = 249.7.
    const plan = computePlan(spec({ methods: ['btx'] }));
    assert.deepEqual(plan.finetuneSteps, { btx: 32 });
    assert.equal(plan.denseSteps, 250);
    assert.equal(plan.branchFlops, 200 * 5_704_704 * 2048);
  });

  it('counts DS-MoE’s dense training at every expert, and takes explicit steps or a zero fraction as given', () => {
    // Half the total: as much as the branches, 200 · 5 704 704 / 8 856 576 = 128.8 steps.
    const run = spec({ methods: ['ds-moe'], dsMoe: { finetune: { computeFraction: 0.5 } } });
    assert.deepEqual(computePlan(run).finetuneSteps, { 'ds-moe': 129 });
    assert.equal(computePlan(spec({ methods: ['btx'], btx: { finetune: { steps: 7 } } })).finetuneSteps.btx, 7);
    const none = computePlan(spec({ methods: ['btx'], btx: { finetune: { computeFraction: 0 } } }));
    assert.deepEqual([none.finetuneSteps, none.denseSteps], [{}, 200]);
  });

  it('plans the forest benchmark: top-2 of 4 skips half the experts, DS-MoE runs all four', () => {
    // Seed 400 + 4 experts × 100 = 800 steps; each fine-tune 20 %: 200 · 5 704 704 / 8 862 720 = 128.7
    // and 200 · 5 704 704 / 15 154 176 = 75.3; the dense model 800 + 129 · 8 862 720 / 5 704 704 = 1000.4.
    const plan = computePlan(
      parseRunSpec({
        domains: ['press', 'lore', 'learned', 'fiction'],
        seed: { steps: 400 },
        expertSteps: 100,
        merge: { methods: ['btx', 'ds-moe'] },
      }),
    );
    assert.deepEqual(plan.finetuneSteps, { btx: 129, 'ds-moe': 75 });
    assert.equal(plan.denseSteps, 1000);
  });

  it('refuses a top-k larger than the forest, naming the field', () => {
    assert.throws(
      () => spec({ methods: ['btx'], btx: { topK: 3 } }),
      /merge\.btx\.topK: top-k is 3 but the run has 2 experts/,
    );
    assert.equal(spec({ methods: ['btx'], btx: { topK: 3, keepSeed: true } }).merge.btx.topK, 3);
    assert.throws(() => spec({ methods: ['lerp'] }), /merge\.methods\.0/);
  });
});
