import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import * as tf from '@tensorflow/tfjs';
import { assertClose, nativeCallsDuring, on, randomTensor } from './testing.js';

describe('native row kernels', () => {
  it('gather rows and sum their gradient into the table like the reference backend', async () => {
    const compute = () => {
      const table = randomTensor([7, 5], 1);
      const ids = tf.tensor2d([3, 0, 3, 6, 1, 3], [2, 3], 'int32');
      const weights = randomTensor([2, 3, 5], 2);
      const lookup = (t: tf.Tensor) => tf.sum(tf.mul(tf.gather(t, ids), weights));
      return [tf.gather(table, ids), tf.grad(lookup)(table)];
    };
    let native: Float32Array[] = [];
    const gathers = await nativeCallsDuring('GatherV2', async () => {
      const sums = await nativeCallsDuring('UnsortedSegmentSum', async () => {
        native = await on('wasm', compute);
      });
      assert.equal(sums, 1);
    });
    assert.equal(gathers, 2);
    assertClose(native, await on('cpu', compute));
  });

  it('hands a gather along another axis to the stock kernel', async () => {
    const compute = () => tf.gather(randomTensor([4, 6], 3), tf.tensor1d([5, 0, 2], 'int32'), 1);
    let native: Float32Array[] = [];
    const calls = await nativeCallsDuring('GatherV2', async () => {
      native = await on('wasm', compute);
    });
    assert.equal(calls, 0);
    assertClose(native, await on('cpu', compute));
  });
});
