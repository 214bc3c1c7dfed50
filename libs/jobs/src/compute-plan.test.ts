import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { trainingFlopsPerToken } from '@grove/model';
import { modelConfigOf } from './artifacts.js';
import { computePlan, moeConfigOf } from './compute-plan.js';
import { parseRunSpec } from './run-spec.js';

const spec = (merge: object, extra: object = {}) =>
  parseRunSpec({ domains: ['press', 'fiction'], seed: { steps: 100 }, expertSteps: 50, merge, ...extra });

describe('compute plan', () => {
  it('gives the BTX fine-tune 20 % of the run’s total compute and the dense baseline all of it', () => {
    const run = spec({ methods: ['btx'] });
    const plan = computePlan(run);
    const dense = trainingFlopsPerToken(modelConfigOf(run));
    const moe = trainingFlopsPerToken(moeConfigOf(run, 'btx'));
    // Top-2 of 2 experts: every token runs both feed-forward blocks, so a step costs more than a dense one.
    assert.ok(moe > 1.4 * dense);
    const steps = plan.finetuneSteps.btx ?? 0;
    const share = (steps * moe) / (200 * dense + steps * moe);
    assert.ok(Math.abs(share - 0.2) < 0.005, `fine-tune share ${share}`);
    assert.equal(plan.denseSteps, Math.round((200 * dense + steps * moe) / dense));
    assert.equal(plan.denseSteps, 250);
  });

  it('counts DS-MoE’s dense training at every expert, and takes explicit steps or a zero fraction as given', () => {
    const run = spec({ methods: ['ds-moe'], dsMoe: { finetune: { computeFraction: 0.5 } } });
    const moe = trainingFlopsPerToken(moeConfigOf(run, 'ds-moe'));
    const dense = trainingFlopsPerToken(modelConfigOf(run));
    assert.equal(computePlan(run).finetuneSteps['ds-moe'], Math.round((200 * dense) / moe));
    assert.equal(computePlan(spec({ methods: ['btx'], btx: { finetune: { steps: 7 } } })).finetuneSteps.btx, 7);
    const none = computePlan(spec({ methods: ['btx'], btx: { finetune: { computeFraction: 0 } } }));
    assert.deepEqual([none.finetuneSteps, none.denseSteps], [{}, 200]);
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
