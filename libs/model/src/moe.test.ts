import assert from 'node:assert/strict';
import { before, describe, it } from 'node:test';
import * as tf from '@tensorflow/tfjs-core';
import { selectBackend } from './backend.js';
import { activeParameterCount, type ModelConfig, parameterCount, presetConfig } from './config.js';
import { chooseExperts, feedForward, moeFeedForward } from './moe.js';
import { TransformerLM } from './transformer.js';

const dense: ModelConfig = { ...presetConfig('tiny'), layers: 2, width: 16, heads: 2, ffnWidth: 32, contextLength: 8 };
const moe = (overrides: Partial<NonNullable<ModelConfig['moe']>> = {}): ModelConfig => ({
  ...dense,
  moe: { experts: 4, topK: 2, training: 'sparse', threshold: 0, balanceCoefficient: 0.01, ...overrides },
});
const tokens = (rows: number, seed = 0) =>
  tf.tensor2d(
    Array.from({ length: rows * 8 }, (_, i) => (i * 37 + seed * 11) % 256),
    [rows, 8],
    'int32',
  );

before(async () => {
  await selectBackend('wasm');
});

describe('Mixture-of-Experts layer', () => {
  it('computes only the chosen experts: top-k runs k rows per token, and the counter sees it', () => {
    const model = TransformerLM.create(moe({ topK: 2 }), 1);
    tf.tidy(() => model.logits(tokens(3)));
    const stats = model.routingStats;
    assert.ok(stats);
    assert.equal(stats.tokens, 2 * 24);
    assert.equal(stats.expertRows, 2 * 24 * 2, 'two experts per token per layer, not four');
    assert.equal(stats.expertsPerToken, 2);
    for (const layer of [0, 1])
      assert.equal(
        stats.perExpert[layer].reduce((a, b) => a + b, 0),
        48,
      );
    model.resetRoutingStats();
    const top1 = TransformerLM.fromArrays(moe({ topK: 1 }), model.toArrays());
    tf.tidy(() => top1.logits(tokens(3)));
    assert.equal(top1.routingStats?.expertRows, 2 * 24);
    model.dispose();
    top1.dispose();
  });

  it('equals the masked dense sum Σ g_i FF_i(x) with gates renormalised over the chosen experts', () => {
    const config = moe({ topK: 2 }) as ModelConfig & { moe: NonNullable<ModelConfig['moe']> };
    const model = TransformerLM.create(config, 3);
    const at = (name: string) => model.params.get(`layers.0.ffn.${name}`) as tf.Variable;
    const weights = {
      router: at('router.weight'),
      experts: [0, 1, 2, 3].map((e) => ({ up: at(`experts.${e}.up.weight`), down: at(`experts.${e}.down.weight`) })),
    };
    const x = tf.randomNormal([10, 16], 0, 1, 'float32', 5) as tf.Tensor2D;
    const sparse = moeFeedForward(x, weights, config, { training: false, layer: 0 }).output.arraySync();
    const probabilities = tf.softmax(tf.matMul(x, weights.router)).arraySync() as number[][];
    const outputs = weights.experts.map((w) => feedForward(x, w, 'gelu').arraySync());
    probabilities.forEach((p, row) => {
      const top = [...p.keys()].sort((a, b) => p[b] - p[a]).slice(0, 2);
      const norm = top.reduce((sum, e) => sum + p[e], 0);
      for (let column = 0; column < 16; column++) {
        const expected = top.reduce((sum, e) => sum + (p[e] / norm) * outputs[e][row][column], 0);
        assert.ok(Math.abs(sparse[row][column] - expected) < 1e-5);
      }
    });
    model.dispose();
  });

  it('with every expert a copy of one feed-forward block, is that dense model', () => {
    const base = TransformerLM.create(dense, 4);
    const arrays = base.toArrays();
    const moeArrays = new Map(arrays);
    for (const layer of [0, 1]) {
      moeArrays.set(
        `layers.${layer}.ffn.router.weight`,
        Float32Array.from({ length: 64 }, (_, i) => Math.sin(i)),
      );
      for (const e of [0, 1, 2, 3])
        for (const matrix of ['up', 'down'])
          moeArrays.set(
            `layers.${layer}.ffn.experts.${e}.${matrix}.weight`,
            arrays.get(`layers.${layer}.ffn.${matrix}.weight`) as Float32Array,
          );
    }
    const mixture = TransformerLM.fromArrays(moe(), moeArrays);
    const a = base.logits(tokens(2)).dataSync();
    const b = mixture.logits(tokens(2)).dataSync();
    for (const [i, value] of a.entries()) assert.ok(Math.abs(value - b[i]) < 1e-4);
    base.dispose();
    mixture.dispose();
  });

  it('DS-MoE trains densely (every expert on every token) and infers sparsely, by top-k or threshold', () => {
    const model = TransformerLM.create(moe({ training: 'dense', topK: 1 }), 6);
    tf.tidy(() => model.loss(tokens(2), tokens(2, 1)));
    assert.equal(model.routingStats?.expertRows, 2 * 16 * 4);
    model.resetRoutingStats();
    tf.tidy(() => model.logits(tokens(2)));
    assert.equal(model.routingStats?.expertRows, 2 * 16 * 1);
    // A zero router gives every expert p = 1/4 on every token: a threshold below that takes all
    // four, one above it none, and then the rule's "at least one" takes the likeliest.
    const zeroRouter = new Map(model.toArrays());
    for (const name of zeroRouter.keys())
      if (name.endsWith('router.weight')) zeroRouter.set(name, new Float32Array(zeroRouter.get(name)?.length ?? 0));
    for (const [threshold, perToken] of [
      [0.2, 4],
      [0.3, 1],
    ]) {
      const thresholded = TransformerLM.fromArrays(moe({ training: 'dense', threshold }), zeroRouter);
      tf.tidy(() => thresholded.logits(tokens(2)));
      assert.equal(thresholded.routingStats?.expertsPerToken, perToken, `threshold ${threshold}`);
      assert.equal(thresholded.routingStats?.expertRows, 2 * 16 * perToken, `threshold ${threshold}`);
      thresholded.dispose();
    }
    model.dispose();
  });

  it('routes by threshold to the experts with p ≥ ε, at least one, in order of p', () => {
    const probabilities = Float32Array.from([
      ...[0.5, 0.3, 0.15, 0.05],
      ...[0.1, 0.12, 0.08, 0.7],
      ...[0.25, 0.21, 0.34, 0.2],
      ...[0.19, 0.18, 0.17, 0.46],
      ...[0.3, 0.15, 0.4, 0.15],
    ]);
    const config = moe({ training: 'dense', threshold: 0.2 }).moe as NonNullable<ModelConfig['moe']>;
    const { mask, counts } = chooseExperts(probabilities, 5, config);
    assert.deepEqual([...mask], [...[1, 1, 0, 0], ...[0, 0, 0, 1], ...[1, 1, 1, 1], ...[0, 0, 0, 1], ...[1, 0, 1, 0]]);
    assert.deepEqual(counts, [3, 2, 2, 3]);
    const topTwo = chooseExperts(probabilities, 5, { ...config, training: 'sparse', topK: 2 });
    assert.deepEqual(topTwo.counts, [4, 2, 2, 2], 'without dense training the threshold is not used: top-2');
  });

  it('counts active parameters: the experts a token skips are not active', () => {
    const config = moe({ topK: 1 });
    const expert = 16 * 32 * 2;
    assert.equal(parameterCount(config) - activeParameterCount(config), 2 * 3 * expert);
    assert.equal(activeParameterCount(config, 4), parameterCount(config));
    assert.equal(activeParameterCount(dense), parameterCount(dense));
  });

  it('refuses a bad MoE config with one sentence', () => {
    assert.throws(
      () => TransformerLM.create(moe({ topK: 5 }), 1),
      /"moe.topK" must be an integer from 1 to moe.experts \(4\)/,
    );
    assert.throws(() => TransformerLM.create(moe({ threshold: 1 }), 1), /"moe.threshold" must be in \[0, 1\)/);
  });
});

describe('load balancing', () => {
  /** A router that sends almost every token to expert 0, then router-only training for `steps`. */
  function trainRouter(balanceCoefficient: number, steps: number): number[] {
    const config = moe({ topK: 1, balanceCoefficient });
    const model = TransformerLM.create(config, 8);
    const input = tokens(8);
    const means = model.feedForwardInputMeans(input);
    for (const [layer, mean] of means.entries()) {
      const router = new Float32Array(16 * 4);
      for (let i = 0; i < 16; i++) router[i * 4] = 20 * mean[i];
      model.params.get(`layers.${layer}.ffn.router.weight`)?.assign(tf.tensor2d(router, [16, 4]));
    }
    const routers = [0, 1].map((layer) => model.params.get(`layers.${layer}.ffn.router.weight`) as tf.Variable);
    const optimizer = tf.train.adam(0.05);
    for (let step = 0; step < steps; step++) {
      tf.dispose(optimizer.minimize(() => model.loss(tokens(8, step), tokens(8, step + 1)), false, routers) ?? []);
    }
    model.resetRoutingStats();
    tf.tidy(() => model.logits(tokens(8, 99)));
    const shares = [0, 1].flatMap((layer) => model.routingStats?.shares(layer) ?? []);
    model.dispose();
    optimizer.dispose();
    return shares;
  }

  it('keeps every expert above a floor share of tokens; without it experts starve', () => {
    const before = trainRouter(0, 0);
    assert.ok(Math.min(...before) < 0.05, `the biased router starts with starved experts: ${before}`);
    const unbalanced = trainRouter(0, 40);
    assert.ok(Math.min(...unbalanced) < 0.1, `without balancing some expert starves: ${unbalanced}`);
    const balanced = trainRouter(1, 40);
    assert.ok(Math.min(...balanced) > 0.1, `every expert gets at least 10 %: ${balanced}`);
  });
});
