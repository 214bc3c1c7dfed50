/** Test support: run a computation on a backend and read it back, so results compare across backends. */
import * as tf from '@tensorflow/tfjs';
import '@tensorflow/tfjs-backend-wasm';
import { installNativeKernels } from './index.js';
import { nativeCallCounts } from './registry.js';

export async function on(backend: 'wasm' | 'cpu', compute: () => tf.Tensor | tf.Tensor[]): Promise<Float32Array[]> {
  await tf.setBackend(backend);
  await tf.ready();
  if (backend === 'wasm') installNativeKernels();
  return tf.tidy(() => [compute()].flat().map((t) => t.dataSync() as Float32Array));
}

/** Native calls of `kernel` that `run` made. */
export async function nativeCallsDuring(kernel: string, run: () => Promise<unknown>): Promise<number> {
  const before = nativeCallCounts().get(kernel) ?? 0;
  await run();
  return (nativeCallCounts().get(kernel) ?? 0) - before;
}

export function assertClose(actual: Float32Array[], expected: Float32Array[], tolerance = 1e-4): void {
  if (actual.length !== expected.length) throw new Error(`${actual.length} results vs ${expected.length}`);
  actual.forEach((values, t) => {
    if (values.length !== expected[t].length) throw new Error(`result ${t}: ${values.length} vs ${expected[t].length}`);
    for (let i = 0; i < values.length; i++) {
      if (!(Math.abs(values[i] - expected[t][i]) <= tolerance * (1 + Math.abs(expected[t][i]))))
        throw new Error(`result ${t}, index ${i}: ${values[i]} vs ${expected[t][i]}`);
    }
  });
}

/** Reproducible values in [-1, 1) from a seed (a linear congruential sequence). */
export function randomTensor(shape: number[], seed: number): tf.Tensor {
  let state = (seed * 2654435761) >>> 0 || 1;
  const size = shape.reduce((a, b) => a * b, 1);
  const values = Float32Array.from({ length: size }, () => {
    state = (Math.imul(state, 1664525) + 1013904223) >>> 0;
    return state / 2 ** 31 - 1;
  });
  return tf.tensor(values, shape);
}
