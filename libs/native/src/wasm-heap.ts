/**
 * The wasm backend's memory as the addon sees it: one ArrayBuffer and byte offsets.
 * Allocating an output may grow (and so replace) the buffer, so `heap` is read only
 * after every output of a kernel exists.
 */
import type { KernelFunc, TensorInfo } from '@tensorflow/tfjs-core';

export interface WasmBackend {
  wasm: { HEAPU8: Uint8Array };
  dataIdMap: { get(dataId: object): { memoryOffset: number } };
  makeOutput(shape: number[], dtype: string): TensorInfo;
  incRef(dataId: object): void;
}

export type KernelArgs = Parameters<KernelFunc>[0];

export const wasmBackendOf = (args: KernelArgs) => args.backend as unknown as WasmBackend;

export const heapOf = (backend: WasmBackend) => backend.wasm.HEAPU8.buffer as ArrayBuffer;

export const offsetOf = (backend: WasmBackend, tensor: TensorInfo) => backend.dataIdMap.get(tensor.dataId).memoryOffset;

export const sizeOf = (shape: number[]) => shape.reduce((a, b) => a * b, 1);

/** A float32 scalar's value, read from the heap. */
export function scalarValue(backend: WasmBackend, tensor: TensorInfo): number {
  return new Float32Array(heapOf(backend), offsetOf(backend, tensor), 1)[0];
}

/** Writes a float32 scalar into an output allocated on the heap. */
export function writeScalar(backend: WasmBackend, tensor: TensorInfo, value: number): void {
  new Float32Array(heapOf(backend), offsetOf(backend, tensor), 1)[0] = value;
}
