/**
 * GatherV2 and UnsortedSegmentSum on whole rows (an embedding lookup and its gradient) as
 * memory copies and row adds; the stock gather is an element-by-element loop. Covered:
 * float32 data, int32 ids, axis 0, no batch dimensions.
 */
import type { NamedAttrMap, TensorInfo } from '@tensorflow/tfjs-core';
import type { NativeAddon } from './addon.js';
import { overrideKernel } from './registry.js';
import { heapOf, offsetOf, sizeOf, wasmBackendOf } from './wasm-heap.js';

const rowWidth = (shape: number[]) => sizeOf(shape.slice(1));

export function installRowKernels(addon: NativeAddon): string[] {
  overrideKernel('GatherV2', (args) => {
    const backend = wasmBackendOf(args);
    const { x, indices } = args.inputs as { x: TensorInfo; indices: TensorInfo };
    const { axis, batchDims } = args.attrs as NamedAttrMap & { axis: number; batchDims: number };
    if (x.dtype !== 'float32' || indices.dtype !== 'int32' || axis !== 0 || batchDims !== 0 || x.shape.length < 1)
      return undefined;
    const out = backend.makeOutput([...indices.shape, ...x.shape.slice(1)], 'float32');
    const at = (t: TensorInfo) => offsetOf(backend, t);
    const count = sizeOf(indices.shape);
    addon.gatherRows(heapOf(backend), at(x), at(indices), at(out), count, x.shape[0], rowWidth(x.shape));
    return out;
  });
  overrideKernel('UnsortedSegmentSum', (args) => {
    const backend = wasmBackendOf(args);
    const { x, segmentIds } = args.inputs as { x: TensorInfo; segmentIds: TensorInfo };
    const { numSegments } = args.attrs as NamedAttrMap & { numSegments: number };
    if (x.dtype !== 'float32' || segmentIds.dtype !== 'int32' || segmentIds.shape.length !== 1) return undefined;
    const out = backend.makeOutput([numSegments, ...x.shape.slice(1)], 'float32');
    const at = (t: TensorInfo) => offsetOf(backend, t);
    const count = segmentIds.shape[0];
    addon.segmentSumRows(heapOf(backend), at(x), at(segmentIds), at(out), count, numSegments, rowWidth(x.shape));
    return out;
  });
  return ['GatherV2', 'UnsortedSegmentSum'];
}
