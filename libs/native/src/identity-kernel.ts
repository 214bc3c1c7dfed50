/** Identity shares its input's memory (tensors are immutable) where the stock kernel copies it. */
import type { TensorInfo } from '@tensorflow/tfjs-core';
import { overrideKernel } from './registry.js';
import { wasmBackendOf } from './wasm-heap.js';

export function installIdentityKernel(): string[] {
  overrideKernel('Identity', (args) => {
    const { x } = args.inputs as { x: TensorInfo };
    if (x.dtype === 'string') return undefined;
    wasmBackendOf(args).incRef(x.dataId);
    return { dataId: x.dataId, shape: x.shape, dtype: x.dtype };
  });
  return ['Identity'];
}
