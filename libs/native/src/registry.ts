/**
 * Registration of native kernels on the wasm backend, with a count of the calls each one
 * actually served: an override hands what it does not cover to the kernel it replaced.
 */
import { getKernel, type KernelFunc, registerKernel, type TensorInfo, unregisterKernel } from '@tensorflow/tfjs-core';
import type { KernelArgs } from './wasm-heap.js';

const calls = new Map<string, number>();

/** Calls served natively so far, by kernel name. */
export function nativeCallCounts(): ReadonlyMap<string, number> {
  return calls;
}

const count = (name: string) => calls.set(name, (calls.get(name) ?? 0) + 1);

/** A native kernel returns undefined for a case it does not cover. */
export type NativeKernel = (args: KernelArgs) => TensorInfo | TensorInfo[] | undefined;

/** Replaces a stock wasm kernel, if any; the stock one still runs every case the native one declines. */
export function overrideKernel(kernelName: string, native: NativeKernel): void {
  const stock = getKernel(kernelName, 'wasm');
  const kernelFunc: KernelFunc = (args) => {
    const result = native(args);
    if (result !== undefined) {
      count(kernelName);
      return result;
    }
    if (!stock) throw new Error(`The wasm backend has no ${kernelName} kernel for this case.`);
    return stock.kernelFunc(args);
  };
  if (stock) unregisterKernel(kernelName, 'wasm');
  registerKernel({ ...stock, kernelName, backendName: 'wasm', kernelFunc });
}

/** Adds a kernel of Grove's own (a fused op); ops look it up by name to know it is there. */
export function addKernel(kernelName: string, native: (args: KernelArgs) => TensorInfo | TensorInfo[]): void {
  if (getKernel(kernelName, 'wasm')) unregisterKernel(kernelName, 'wasm');
  registerKernel({
    kernelName,
    backendName: 'wasm',
    kernelFunc: (args) => {
      count(kernelName);
      return native(args);
    },
  });
}
