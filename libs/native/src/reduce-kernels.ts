/**
 * Sum over any contiguous block of axes in one pass, where the stock kernel first
 * transposes the reduced axes innermost (a copy: the gradient of every broadcast add
 * sums over rows).
 */
import { type NamedAttrMap, type TensorInfo, util } from '@tensorflow/tfjs-core';
import type { NativeAddon } from './addon.js';
import { overrideKernel } from './registry.js';
import { heapOf, offsetOf, sizeOf, wasmBackendOf } from './wasm-heap.js';

export function installReduceKernels(addon: NativeAddon): string[] {
  overrideKernel('Sum', (args) => {
    const backend = wasmBackendOf(args);
    const { x } = args.inputs as { x: TensorInfo };
    const { axis, keepDims } = args.attrs as NamedAttrMap & { axis: number | number[]; keepDims: boolean };
    if (x.dtype !== 'float32' || sizeOf(x.shape) === 0) return undefined;
    const axes = [...new Set(util.parseAxisParam(axis, x.shape))].sort((a, b) => a - b);
    if (axes.length === 0 || axes.some((value, i) => value !== axes[0] + i)) return undefined;
    const first = axes[0];
    const last = axes[axes.length - 1];
    const outer = sizeOf(x.shape.slice(0, first));
    const reduced = sizeOf(x.shape.slice(first, last + 1));
    const inner = sizeOf(x.shape.slice(last + 1));
    const outShape = x.shape.flatMap((size, i) => (i < first || i > last ? [size] : keepDims ? [1] : []));
    const out = backend.makeOutput(outShape, 'float32');
    addon.sum(heapOf(backend), offsetOf(backend, x), offsetOf(backend, out), outer, reduced, inner);
    return out;
  });
  return ['Sum'];
}
