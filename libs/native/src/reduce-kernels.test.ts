import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import * as tf from '@tensorflow/tfjs';
import { assertClose, nativeCallsDuring, on, randomTensor } from './testing.js';

describe('native Sum', () => {
  const cases: [number[], number | number[], boolean][] = [
    [[3, 4, 5], 2, false],
    [[3, 4, 5], 0, false],
    [[3, 4, 5], 1, true],
    [[3, 4, 5], [0, 1], false],
    [[3, 4, 5], [1, 2], true],
    [[2, 3, 4, 5], [1, 2], false],
    [[1000], 0, false],
    [[1, 1], -1, false],
  ];
  for (const [shape, axis, keepDims] of cases) {
    it(`matches the reference backend: [${shape}] over ${axis}${keepDims ? ', dimensions kept' : ''}`, async () => {
      const compute = () => tf.sum(randomTensor(shape, 4), axis, keepDims);
      let native: Float32Array[] = [];
      const calls = await nativeCallsDuring('Sum', async () => {
        native = await on('wasm', compute);
      });
      assert.equal(calls, 1);
      assertClose(native, await on('cpu', compute));
      await on('wasm', () => {
        assert.deepEqual(
          compute().shape,
          tf.tidy(() => tf.sum(tf.zeros(shape), axis, keepDims).shape),
        );
        return [];
      });
    });
  }

  it('hands axes that are not contiguous, and integers, to the stock kernel', async () => {
    const compute = () => [
      tf.sum(randomTensor([3, 4, 5], 4), [0, 2]),
      tf.cast(tf.sum(tf.range(0, 10, 1, 'int32')), 'float32'),
    ];
    let native: Float32Array[] = [];
    const calls = await nativeCallsDuring('Sum', async () => {
      native = await on('wasm', compute);
    });
    assert.equal(calls, 0);
    assertClose(native, await on('cpu', compute));
  });

  it('differentiates a broadcast add through its row sums', async () => {
    const compute = () => {
      const x = randomTensor([6, 4], 1);
      const bias = randomTensor([4], 2);
      return tf.grads((a: tf.Tensor, b: tf.Tensor) => tf.sum(tf.square(tf.add(a, b))))([x, bias]);
    };
    assertClose(await on('wasm', compute), await on('cpu', compute));
  });
});

describe('native Identity', () => {
  it('shares its input instead of copying it, and the copy outlives the original', async () => {
    const calls = await nativeCallsDuring('Identity', async () => {
      await on('wasm', () => {
        const x = randomTensor([3, 3], 5);
        const expected = x.dataSync().slice();
        const copy = tf.clone(x);
        x.dispose();
        assert.deepEqual(copy.dataSync(), expected);
        return [];
      });
    });
    assert.equal(calls, 1);
  });
});
