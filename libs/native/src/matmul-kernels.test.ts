import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import * as tf from '@tensorflow/tfjs';
import { assertClose, nativeCallsDuring, on, randomTensor } from './testing.js';

const batchOf = (shape: number[]) => shape.slice(0, -2).reduce((x, y) => x * y, 1);

/**
 * The product and the gradients of a weighted sum of it with respect to both operands
 * (the product alone when one side is broadcast: tfjs's BatchMatMul gradient does not reduce it).
 */
function productAndGradients(aShape: number[], bShape: number[], transposeA: boolean, transposeB: boolean) {
  return () => {
    const a = randomTensor(aShape, 1);
    const b = randomTensor(bShape, 2);
    const product = tf.matMul(a, b, transposeA, transposeB);
    if (batchOf(aShape) !== batchOf(bShape)) return [product];
    const weights = randomTensor(product.shape, 3);
    const loss = (x: tf.Tensor, y: tf.Tensor) => tf.sum(tf.mul(tf.matMul(x, y, transposeA, transposeB), weights));
    return [product, ...tf.grads(loss)([a, b])];
  };
}

describe('native BatchMatMul', () => {
  const cases: [string, number[], number[], boolean, boolean][] = [
    ['2-D', [5, 7], [7, 3], false, false],
    ['2-D, transposed A', [7, 5], [7, 3], true, false],
    ['2-D, transposed B', [5, 7], [3, 7], false, true],
    ['2-D, both transposed', [9, 4], [6, 9], true, true],
    ['batched', [4, 5, 7], [4, 7, 3], false, false],
    ['batched, both transposed', [4, 7, 5], [4, 3, 7], true, true],
    ['a batch against one matrix', [4, 5, 7], [1, 7, 3], false, false],
    ['one matrix against a batch, transposed B', [5, 7], [3, 2, 7], false, true],
    ['rank 4', [2, 3, 6, 5], [2, 3, 5, 4], false, false],
    ['a 1×1 product', [1, 1], [1, 1], false, false],
    ['row times matrix', [3, 1, 17], [3, 17, 1], false, false],
    ['uneven sizes', [67, 129], [33, 129], false, true],
  ];
  for (const [label, aShape, bShape, transposeA, transposeB] of cases) {
    it(`matches the reference backend forward and backward: ${label}`, async () => {
      const compute = productAndGradients(aShape, bShape, transposeA, transposeB);
      let native: Float32Array[] = [];
      // The product and its two gradient products all run natively.
      const calls = await nativeCallsDuring('BatchMatMul', async () => {
        native = await on('wasm', compute);
      });
      assert.ok(calls >= (native.length === 1 ? 1 : 3), `${calls} native calls`);
      assertClose(native, await on('cpu', compute));
    });
  }

  it('hands per-axis batch broadcasting to the stock kernel', async () => {
    const compute = () => tf.matMul(randomTensor([2, 1, 3, 4], 1), randomTensor([1, 3, 4, 5], 2));
    let native: Float32Array[] = [];
    const calls = await nativeCallsDuring('BatchMatMul', async () => {
      native = await on('wasm', compute);
    });
    assert.equal(calls, 0);
    assertClose(native, await on('cpu', compute));
  });

  it('gives the same numbers on every run', async () => {
    const compute = productAndGradients([4, 33, 65], [4, 65, 31], false, false);
    assert.deepEqual(await on('wasm', compute), await on('wasm', compute));
  });
});

describe('native _FusedMatMul', () => {
  const fused = (activation: 'linear' | 'relu' | 'elu', transposeB: boolean) => () => {
    const a = randomTensor([6, 8], 1);
    const b = randomTensor(transposeB ? [5, 8] : [8, 5], 2);
    const bias = randomTensor([5], 3);
    const loss = (x: tf.Tensor, y: tf.Tensor, z: tf.Tensor) =>
      tf.sum(tf.square(tf.fused.matMul({ a: x as tf.Tensor2D, b: y as tf.Tensor2D, bias: z, activation, transposeB })));
    return [tf.fused.matMul({ a, b, bias, activation, transposeB }), ...tf.grads(loss)([a, b, bias])];
  };

  for (const [activation, transposeB] of [
    ['linear', false],
    ['relu', true],
  ] as const) {
    it(`adds the bias and applies ${activation} like the reference backend, with gradients`, async () => {
      let native: Float32Array[] = [];
      const calls = await nativeCallsDuring('_FusedMatMul', async () => {
        native = await on('wasm', fused(activation, transposeB));
      });
      assert.ok(calls >= 1);
      assertClose(native, await on('cpu', fused(activation, transposeB)));
    });
  }

  it('hands other activations to the stock kernel', async () => {
    let native: Float32Array[] = [];
    const calls = await nativeCallsDuring('_FusedMatMul', async () => {
      native = await on('wasm', fused('elu', false));
    });
    assert.equal(calls, 0);
    assertClose(native, await on('cpu', fused('elu', false)));
  });
});
