import assert from 'node:assert/strict';
import { before, describe, it } from 'node:test';
import { type ModelConfig, parameterShapes, presetConfig, selectBackend, TransformerLM } from '@grove/model';
import * as tf from '@tensorflow/tfjs-core';
import { assembleBtx, type BtxOptions } from './btx.js';
import { cachedPrior, ensembleLogProbabilities } from './ensemble.js';

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
      /Parameter "layers.0.ffn.up.weight" has 256 values in model 1 but 512/,
    );
  });
});

describe('ensemble', () => {
  // Expert 0: p = 0.5 then 0.2; expert 1: p = 0.25 then 0.4.
  const logProbabilities = [Float32Array.from([0.5, 0.2].map(Math.log)), Float32Array.from([0.25, 0.4].map(Math.log))];
  const probabilities = (options: Parameters<typeof ensembleLogProbabilities>[4], prior = [0.5, 0.5]) =>
    [...ensembleLogProbabilities(logProbabilities, 1, 2, prior, options)].map(Math.exp);
  const close = (actual: number[], expected: number[]) => {
    for (const [i, value] of actual.entries())
      assert.ok(Math.abs(value - expected[i]) < 1e-6, `${actual} ≠ ${expected}`);
  };

  it('mixes by the Bayes posterior over the context', () => {
    // t=0: the prior, (0.5 + 0.25)/2. t=1: posterior ∝ (0.5·0.5, 0.5·0.25) = (2/3, 1/3).
    close(probabilities({ bayes: true }), [0.375, (2 / 3) * 0.2 + (1 / 3) * 0.4]);
    // A prior of (0.2, 0.8): t=0 0.2·0.5 + 0.8·0.25; t=1 posterior ∝ (0.1, 0.2) = (1/3, 2/3).
    close(probabilities({ bayes: true }, [0.2, 0.8]), [0.3, (1 / 3) * 0.2 + (2 / 3) * 0.4]);
  });

  it('keeps the top-k experts, renormalised; without Bayes the weights stay the prior', () => {
    close(probabilities({ bayes: true, topK: 1 }, [0.6, 0.4]), [0.5, 0.2]);
    close(probabilities({ bayes: true, topK: 1 }, [0.4, 0.6]), [0.25, 0.2]); // t=1: 0.4·0.5 > 0.6·0.25
    close(probabilities({ bayes: false }), [0.375, 0.3]);
  });

  it('caches the prior as an EMA of sequence posteriors', () => {
    // Sequence 1 under the uniform prior: posterior (e/(e+1), 1/(e+1)).
    const first = Math.E / (Math.E + 1);
    close(cachedPrior([[0, -1]], 0.3), [0.7 * 0.5 + 0.3 * first, 0.7 * 0.5 + 0.3 * (1 - first)]);
    const prior = cachedPrior(Array(50).fill([0, -20]), 0.3);
    assert.ok(prior[0] > 0.999 && prior[1] > 0);
    assert.throws(
      () => ensembleLogProbabilities(logProbabilities, 1, 2, [1], { bayes: true }),
      /prior over 1 experts for 2/,
    );
  });
});
