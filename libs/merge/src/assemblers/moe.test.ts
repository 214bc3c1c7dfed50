import assert from 'node:assert/strict';
import { before, describe, it } from 'node:test';
import { type ModelConfig, parameterShapes, presetConfig, selectBackend, TransformerLM } from '@grove/model';
import * as tf from '@tensorflow/tfjs-core';
import { assembleBtx, type BtxOptions } from './moe.js';

const micro: ModelConfig = { ...presetConfig('tiny'), layers: 2, width: 16, heads: 2, ffnWidth: 32, contextLength: 8 };
const options: BtxOptions = { topK: 2, keepSeed: false, router: 'random', balanceCoefficient: 0.01, seed: 1 };

before(async () => {
  await selectBackend('wasm');
});

describe('btx', () => {
  const seed = TransformerLM.create(micro, 1).toArrays();
  const experts = [2, 3, 4].map((s) => TransformerLM.create(micro, s).toArrays());

  it('turns each expert’s feed-forward blocks into MoE experts and averages everything else', () => {
    const { config, weights } = assembleBtx(micro, seed, experts, { ...options, keepSeed: true });
    assert.deepEqual(config.moe, { experts: 4, topK: 2, training: 'sparse', threshold: 0, balanceCoefficient: 0.01 });
    assert.deepEqual([...weights.keys()].sort(), [...parameterShapes(config).keys()].sort());
    const sources = [...experts, seed];
    for (const name of [
      'layers.1.attention.query.weight',
      'layers.0.ffn.norm.weight',
      'embed.tokens.weight',
      'head.weight',
    ]) {
      const merged = weights.get(name) as Float32Array;
      for (const i of [0, 7])
        assert.ok(
          Math.abs(merged[i] - sources.reduce((sum, source) => sum + (source.get(name) as Float32Array)[i] / 4, 0)) <
            1e-6,
        );
    }
    sources.forEach((source, expert) => {
      assert.deepEqual(weights.get(`layers.1.ffn.experts.${expert}.up.weight`), source.get('layers.1.ffn.up.weight'));
      assert.deepEqual(
        weights.get(`layers.0.ffn.experts.${expert}.down.weight`),
        source.get('layers.0.ffn.down.weight'),
      );
    });
    assert.equal(weights.has('layers.0.ffn.up.weight'), false);
    const model = TransformerLM.fromArrays(config, weights);
    const logits = model.logits(tf.tensor2d([[1, 2, 3, 4, 5, 6, 7, 8]], [1, 8], 'int32')).dataSync();
    assert.ok(logits.every(Number.isFinite));
    assert.equal(model.routingStats?.expertRows, 2 * 8 * 2);
    model.dispose();
  });

  it('points a hidden-state router at each domain’s mean: a domain’s mean routes to its expert', () => {
    const means = [0, 1].map((layer) =>
      [0, 1, 2].map((e) => Float32Array.from({ length: 16 }, (_, i) => Math.cos(i * (e + 1) + layer))),
    );
    const { weights } = assembleBtx(micro, seed, experts, { ...options, router: 'hidden', hiddenMeans: means });
    for (const layer of [0, 1]) {
      const router = weights.get(`layers.${layer}.ffn.router.weight`) as Float32Array;
      means[layer].forEach((mean, expert) => {
        const scores = [0, 1, 2].map((column) =>
          mean.reduce((sum, value, i) => sum + value * router[i * 3 + column], 0),
        );
        assert.equal(scores.indexOf(Math.max(...scores)), expert);
      });
    }
  });

  it('refuses what it cannot assemble, in one sentence', () => {
    assert.throws(
      () => assembleBtx(micro, seed, experts, { ...options, topK: 4 }),
      /top-k must be an integer from 1 to the number of experts \(3\)/,
    );
    assert.throws(
      () => assembleBtx(micro, seed, experts, { ...options, router: 'hidden' }),
      /needs one mean of width 16 per expert/,
    );
    const moe = {
      ...micro,
      moe: { experts: 2, topK: 1, training: 'sparse' as const, threshold: 0, balanceCoefficient: 0 },
    };
    assert.throws(() => assembleBtx(moe, seed, experts, options), /already a Mixture-of-Experts/);
    const other = TransformerLM.create({ ...micro, ffnWidth: 16 }, 5).toArrays();
    assert.throws(
      () => assembleBtx(micro, seed, [experts[0], other], options),
      /Parameter "layers.0.ffn.up.weight" has 256 values in expert 1 but 512 in the base/,
    );
  });
});
