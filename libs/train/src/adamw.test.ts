import assert from 'node:assert/strict';
import { before, describe, it } from 'node:test';
import { nativeCallCounts, selectBackend } from '@grove/model';
import * as tf from '@tensorflow/tfjs-core';
import { AdamW } from './adamw.js';
import { learningRateAt } from './schedule.js';

before(async () => {
  await selectBackend('wasm');
});

describe('AdamW', () => {
  it('matches a hand-computed update, decaying matrices but not vectors', () => {
    const params = new Map<string, tf.Variable>([
      ['matrix', tf.variable(tf.tensor2d([[1, -2]]))],
      ['gain', tf.variable(tf.tensor1d([1]))],
    ]);
    const optimizer = new AdamW(params, { beta1: 0.9, beta2: 0.99, epsilon: 1e-8, weightDecay: 0.5 });
    const lr = 0.1;
    optimizer.apply(
      params,
      new Map<string, tf.Tensor>([
        ['matrix', tf.tensor2d([[0.5, 0.5]])],
        ['gain', tf.tensor1d([2])],
      ]),
      lr,
    );
    // Step 1: m̂ = g, v̂ = g², so the Adam step is lr·sign(g); decay multiplies matrices by (1 − lr·wd).
    const matrix = params.get('matrix')?.dataSync() as Float32Array;
    assert.ok(Math.abs(matrix[0] - (1 * (1 - 0.05) - 0.1)) < 1e-6);
    assert.ok(Math.abs(matrix[1] - (-2 * (1 - 0.05) - 0.1)) < 1e-6);
    assert.ok(Math.abs((params.get('gain')?.dataSync()[0] as number) - 0.9) < 1e-6);

    optimizer.apply(
      params,
      new Map<string, tf.Tensor>([
        ['matrix', tf.tensor2d([[-1, 0.5]])],
        ['gain', tf.tensor1d([2])],
      ]),
      lr,
    );
    // Step 2, first entry: m = 0.9·0.05 + 0.1·(−1) = −0.055, v = 0.99·0.0025 + 0.01·1 = 0.012475.
    const mHat = -0.055 / (1 - 0.9 ** 2);
    const vHat = 0.012475 / (1 - 0.99 ** 2);
    const expected = 0.85 * (1 - 0.05) - lr * (mHat / (Math.sqrt(vHat) + 1e-8));
    assert.ok(Math.abs((params.get('matrix')?.dataSync()[0] as number) - expected) < 1e-5);
  });

  it('saves and restores its moments', () => {
    const params = new Map([['w', tf.variable(tf.tensor1d([1, 2, 3]))]]);
    const optimizer = new AdamW(params);
    optimizer.apply(params, new Map([['w', tf.tensor1d([0.1, -0.2, 0.3])]]), 0.01);
    const restored = new AdamW(params);
    restored.loadStateArrays(optimizer.stateArrays(), optimizer.stepCount);
    assert.deepEqual(restored.stateArrays(), optimizer.stateArrays());
    assert.equal(restored.stepCount, 1);
    assert.throws(() => restored.loadStateArrays(new Map(), 1), /missing or misshapen for parameter "w"/);
  });
});

describe('learning-rate schedule', () => {
  const schedule = { peak: 1, warmupSteps: 10, totalSteps: 110, finalFraction: 0.1 };
  it('warms up linearly, peaks, then decays along a cosine to the floor', () => {
    assert.equal(learningRateAt(0, schedule), 0.1);
    assert.equal(learningRateAt(9, schedule), 1);
    assert.equal(learningRateAt(10, schedule), 1);
    assert.ok(Math.abs(learningRateAt(60, schedule) - 0.55) < 1e-12);
    assert.ok(Math.abs(learningRateAt(110, schedule) - 0.1) < 1e-12);
    assert.ok(Math.abs(learningRateAt(500, schedule) - 0.1) < 1e-12);
  });

  it('takes the same steps through the fused native update as through tfjs kernels', async () => {
    const steps = async (backend: 'wasm' | 'cpu') => {
      await selectBackend(backend);
      const values = (seed: number) => Array.from({ length: 12 }, (_, i) => Math.sin(i * 0.7 + seed));
      const params = new Map<string, tf.Variable>([
        ['matrix', tf.variable(tf.tensor2d(values(1), [3, 4]))],
        ['gain', tf.variable(tf.tensor1d(values(2).slice(0, 4)))],
      ]);
      const optimizer = new AdamW(params);
      for (let step = 1; step <= 3; step++) {
        const grads = new Map<string, tf.Tensor>([
          ['matrix', tf.tensor2d(values(3 * step), [3, 4])],
          ['gain', tf.tensor1d(values(5 * step).slice(0, 4))],
        ]);
        optimizer.apply(params, grads, 0.01);
        tf.dispose([...grads.values()]);
      }
      const result = [...params.values()].map((p) => p.dataSync() as Float32Array);
      optimizer.dispose();
      tf.dispose([...params.values()]);
      return result;
    };
    const before = nativeCallCounts().get('GroveAdamW') ?? 0;
    const fused = await steps('wasm');
    assert.equal((nativeCallCounts().get('GroveAdamW') ?? 0) - before, 6);
    const composed = await steps('cpu');
    for (const [p, values] of fused.entries()) {
      for (const [i, value] of values.entries()) {
        assert.ok(Math.abs(value - composed[p][i]) < 1e-6, `${value} vs ${composed[p][i]}`);
      }
    }
  });
});
