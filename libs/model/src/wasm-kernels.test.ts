import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import * as tf from '@tensorflow/tfjs-core';
import { selectBackend } from './backend.js';
import { wasmFastProductCount } from './wasm-kernels.js';

// These kernels serve the stock wasm backend; the native ones would otherwise take their place.
process.env.GROVE_NATIVE = '0';

/** Runs `compute` on a backend and returns plain numbers, so results compare across backends. */
async function on(backend: 'wasm' | 'cpu', compute: () => tf.Tensor): Promise<Float32Array> {
  await selectBackend(backend);
  return tf.tidy(() => compute().dataSync() as Float32Array);
}

function assertClose(actual: Float32Array, expected: Float32Array, tolerance = 1e-4) {
  assert.equal(actual.length, expected.length);
  for (let i = 0; i < actual.length; i++) {
    assert.ok(
      Math.abs(actual[i] - expected[i]) <= tolerance * (1 + Math.abs(expected[i])),
      `index ${i}: ${actual[i]} vs ${expected[i]}`,
    );
  }
}

const values = (size: number, seed: number) => Float32Array.from({ length: size }, (_, i) => Math.sin(i * 0.37 + seed));
const tensorOf = (shape: number[], seed: number): tf.Tensor3D => {
  const size = shape.reduce((x, y) => x * y);
  return tf.tensor(values(size, seed), shape as [number, number, number]);
};

describe('wasm kernel fixes', () => {
  const cases: [string, number[], number[], boolean, boolean][] = [
    ['2-D', [5, 7], [7, 3], false, false],
    ['2-D, transposed A', [7, 5], [7, 3], true, false],
    ['2-D, transposed B', [5, 7], [3, 7], false, true],
    ['batched', [4, 5, 7], [4, 7, 3], false, false],
    ['batched, both transposed', [4, 7, 5], [4, 3, 7], true, true],
    ['batched against one matrix', [4, 5, 7], [1, 7, 3], false, false],
  ];
  for (const [label, aShape, bShape, transposeA, transposeB] of cases) {
    it(`BatchMatMul runs one fast 2-D product per batch and matches the reference backend: ${label}`, async () => {
      const compute = () => tf.matMul(tensorOf(aShape, 1), tensorOf(bShape, 2), transposeA, transposeB);
      const before = wasmFastProductCount();
      const result = await on('wasm', compute);
      const batch = Math.max(aShape.length > 2 ? aShape[0] : 1, bShape.length > 2 ? bShape[0] : 1);
      assert.equal(wasmFastProductCount() - before, batch);
      assertClose(result, await on('cpu', compute));
    });
  }

  it('UnsortedSegmentSum (the gradient of gather) sums rows into their segments', async () => {
    await selectBackend('wasm');
    const sums = tf
      .unsortedSegmentSum(tf.tensor2d([1, 2, 3, 4, 5, 6, 7, 8], [4, 2]), tf.tensor1d([2, 0, 2, 1], 'int32'), 4)
      .arraySync();
    assert.deepEqual(sums, [
      [3, 4],
      [7, 8],
      [6, 8],
      [0, 0],
    ]);
  });

  it('differentiates an embedding lookup on wasm', async () => {
    const compute = () => {
      const table = tf.tensor2d(values(12, 3), [6, 2]);
      return tf.grad((t: tf.Tensor) => tf.sum(tf.square(tf.gather(t, tf.tensor1d([1, 4, 1], 'int32')))))(table);
    };
    assertClose(await on('wasm', compute), await on('cpu', compute));
  });
});
