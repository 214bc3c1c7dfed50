import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { FUSED_KERNELS } from '@grove/native';
import * as tf from '@tensorflow/tfjs-core';
import { nativeCallCounts, selectBackend } from './backend.js';
import { causalSelfAttention, gelu, rmsNorm, softmaxCrossEntropy } from './ops.js';

/**
 * Every op with a fused native kernel against its composition of stock kernels: wasm runs
 * the fused kernels (asserted through the call counts), cpu the composition.
 */
async function on(backend: 'wasm' | 'cpu', compute: () => tf.Tensor[]): Promise<Float32Array[]> {
  await selectBackend(backend);
  return tf.tidy(() => compute().map((t) => t.dataSync() as Float32Array));
}

function assertClose(actual: Float32Array[], expected: Float32Array[], tolerance = 2e-4) {
  assert.equal(actual.length, expected.length);
  actual.forEach((values, t) => {
    assert.equal(values.length, expected[t].length);
    for (let i = 0; i < values.length; i++) {
      const close = Math.abs(values[i] - expected[t][i]) <= tolerance * (1 + Math.abs(expected[t][i]));
      assert.ok(close, `result ${t}, index ${i}: ${values[i]} vs ${expected[t][i]}`);
    }
  });
}

const random = (shape: number[], seed: number) => {
  const size = shape.reduce((a, b) => a * b, 1);
  return tf.tensor(
    Float32Array.from({ length: size }, (_, i) => Math.sin(i * 1.37 + seed * 7.1) * 1.5),
    shape,
  );
};

/** Compares the two backends and checks that each named fused kernel ran on wasm. */
async function assertFusedMatches(kernels: string[], compute: () => tf.Tensor[]) {
  const before = kernels.map((kernel) => nativeCallCounts().get(kernel) ?? 0);
  const fused = await on('wasm', compute);
  kernels.forEach((kernel, i) => {
    assert.ok((nativeCallCounts().get(kernel) ?? 0) > before[i], `${kernel} did not run`);
  });
  assertClose(fused, await on('cpu', compute));
}

describe('fused native ops', () => {
  it('GELU matches the composed op, forward and gradient', async () => {
    await assertFusedMatches([FUSED_KERNELS.gelu, FUSED_KERNELS.geluGrad], () => {
      const x = random([37, 19], 1);
      const weights = random([37, 19], 2);
      return [gelu(x), tf.grad((t: tf.Tensor) => tf.sum(tf.mul(gelu(t), weights)))(x)];
    });
  });

  it('RMSNorm matches the composed op, forward and gradients of input and gain', async () => {
    await assertFusedMatches([FUSED_KERNELS.rmsNorm, FUSED_KERNELS.rmsNormGrad], () => {
      const x = random([13, 24], 3);
      const gain = tf.add(random([24], 4), 1);
      const weights = random([13, 24], 5);
      const loss = (a: tf.Tensor, b: tf.Tensor) => tf.sum(tf.mul(rmsNorm(a, b, 1e-5), weights));
      return [rmsNorm(x, gain, 1e-5), ...tf.grads(loss)([x, gain])];
    });
  });

  for (const rotary of [false, true]) {
    it(`causal attention${rotary ? ' with rotary phases' : ''} matches the composed op, forward and gradients`, async () => {
      const kernels = [FUSED_KERNELS.attention, FUSED_KERNELS.attentionGrad, ...(rotary ? [FUSED_KERNELS.rotary] : [])];
      await assertFusedMatches(kernels, () => {
        const shape = { batch: 2, length: 7, heads: 3 };
        const [q, k, v] = [6, 7, 8].map((seed) => random([14, 12], seed) as tf.Tensor2D);
        const weights = random([14, 12], 9);
        const loss = (a: tf.Tensor, b: tf.Tensor, c: tf.Tensor) =>
          tf.sum(
            tf.mul(causalSelfAttention(a as tf.Tensor2D, b as tf.Tensor2D, c as tf.Tensor2D, shape, rotary), weights),
          );
        return [causalSelfAttention(q, k, v, shape, rotary), ...tf.grads(loss)([q, k, v])];
      });
    });
  }

  it('softmax cross-entropy matches the composed op, loss and gradient', async () => {
    await assertFusedMatches([FUSED_KERNELS.softmaxCrossEntropy, FUSED_KERNELS.softmaxCrossEntropyGrad], () => {
      const logits = tf.mul(random([9, 11], 10), 3) as tf.Tensor2D;
      const targets = tf.tensor1d([0, 3, 10, 5, 5, 1, 2, 9, 7], 'int32');
      const loss = (x: tf.Tensor) => tf.mul(softmaxCrossEntropy(x as tf.Tensor2D, targets), 2.5);
      return [softmaxCrossEntropy(logits, targets), tf.grad(loss)(logits)];
    });
  });
});
