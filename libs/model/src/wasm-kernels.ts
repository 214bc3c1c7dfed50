/**
 * Kernel fixes for the wasm backend, registered once when it is selected.
 *
 * - BatchMatMul: the wasm build only reaches XNNPACK for a single, untransposed
 *   2-D product; anything batched or transposed falls back to a scalar loop that
 *   runs 10–20× slower. Gradients of every matMul use transposes, and attention is
 *   batched, so we transpose explicitly and split batches into 2-D products that
 *   share the caller's memory (zero-copy views) before calling the fast path.
 * - UnsortedSegmentSum: the gradient of `gather` (token embeddings) needs it and the
 *   wasm backend does not register it.
 *
 * When @grove/native is built, its OpenBLAS kernels take over both (transposes become sgemm
 * flags, with no copies); these fixes are what runs without it (GROVE_NATIVE=0).
 */
import {
  getKernel,
  type KernelConfig,
  type KernelFunc,
  type NamedAttrMap,
  registerKernel,
  type TensorInfo,
  unregisterKernel,
  util,
} from '@tensorflow/tfjs-core';

/** The parts of the wasm backend object these kernels touch. */
interface WasmBackend {
  wasm: {
    cwrap: (name: string, ret: null, args: string[]) => (...args: unknown[]) => void;
    HEAPU8: Uint8Array;
    tfjs: { disposeData(id: number): void; registerTensor(id: number, size: number, offset: number): void };
  };
  dataIdMap: { get(dataId: object): { id: number; memoryOffset: number }; delete(dataId: object): void };
  makeOutput(shape: number[], dtype: string, memoryOffset?: number): TensorInfo;
  disposeData(dataId: object): void;
  typedArrayFromHeap(info: TensorInfo): Float32Array | Int32Array | Uint8Array;
}

type BatchMatMulFn = (
  aId: number,
  aShape: Uint8Array,
  aRank: number,
  bId: number,
  bShape: Uint8Array,
  bRank: number,
  transposeA: boolean,
  transposeB: boolean,
  outId: number,
) => void;

let installed = false;
/** 2-D products the fast path ran, so tests can tell it was reached. */
let fastProducts = 0;

export function wasmFastProductCount(): number {
  return fastProducts;
}

export function installWasmKernels(): void {
  if (installed) return;
  installed = true;
  const transposeKernel = getKernel('Transpose', 'wasm');
  if (!transposeKernel) throw new Error('the wasm backend must be registered before its kernels are patched');
  let wasmBatchMatMul: BatchMatMulFn | undefined;

  /** A tensor registered over existing wasm memory; freed without freeing the memory. */
  const view = (backend: WasmBackend, shape: number[], byteOffset: number) =>
    backend.makeOutput(shape, 'float32', byteOffset);
  const dropView = (backend: WasmBackend, info: TensorInfo) => {
    backend.wasm.tfjs.disposeData(backend.dataIdMap.get(info.dataId).id);
    backend.dataIdMap.delete(info.dataId);
  };

  const swapLastTwo = (backend: WasmBackend, x: TensorInfo): TensorInfo => {
    const rank = x.shape.length;
    const perm = [...Array(rank).keys()];
    [perm[rank - 2], perm[rank - 1]] = [perm[rank - 1], perm[rank - 2]];
    return transposeKernel.kernelFunc({ inputs: { x }, backend: backend as never, attrs: { perm } }) as TensorInfo;
  };

  const batchMatMul: KernelFunc = ({ inputs, backend: untypedBackend, attrs }) => {
    const backend = untypedBackend as unknown as WasmBackend;
    const { transposeA, transposeB } = attrs as NamedAttrMap & { transposeA: boolean; transposeB: boolean };
    const given = inputs as { a: TensorInfo; b: TensorInfo };
    if (given.a.dtype !== 'float32' || given.b.dtype !== 'float32') throw new Error('BatchMatMul needs float32 inputs');
    const a = transposeA ? swapLastTwo(backend, given.a) : given.a;
    const b = transposeB ? swapLastTwo(backend, given.b) : given.b;
    const temporaries = [transposeA && a, transposeB && b].filter((t): t is TensorInfo => Boolean(t));

    const [m, k] = a.shape.slice(-2);
    const [k2, n] = b.shape.slice(-2);
    util.assert(k === k2, () => `matMul inner dimensions differ: ${a.shape} × ${b.shape}`);
    const batchA = util.sizeFromShape(a.shape.slice(0, -2));
    const batchB = util.sizeFromShape(b.shape.slice(0, -2));
    const batch = Math.max(batchA, batchB);
    util.assert(
      batchA === batchB || batchA === 1 || batchB === 1,
      () => `matMul batch shapes differ: ${a.shape} × ${b.shape}`,
    );
    const outerShape = (batchA >= batchB ? a : b).shape.slice(0, -2);

    wasmBatchMatMul ??= backend.wasm.cwrap('BatchMatMul', null, [
      'number',
      'array',
      'number',
      'number',
      'array',
      'number',
      'number',
      'number',
      'number',
    ]) as unknown as BatchMatMulFn;
    const out = backend.makeOutput([...outerShape, m, n], 'float32');
    const aOffset = backend.dataIdMap.get(a.dataId).memoryOffset;
    const bOffset = backend.dataIdMap.get(b.dataId).memoryOffset;
    const outOffset = backend.dataIdMap.get(out.dataId).memoryOffset;
    const aShape = new Uint8Array(new Int32Array([1, m, k]).buffer);
    const bShape = new Uint8Array(new Int32Array([1, k, n]).buffer);
    for (let i = 0; i < batch; i++) {
      const aView = view(backend, [1, m, k], aOffset + (batchA === 1 ? 0 : i * m * k * 4));
      const bView = view(backend, [1, k, n], bOffset + (batchB === 1 ? 0 : i * k * n * 4));
      const outView = view(backend, [1, m, n], outOffset + i * m * n * 4);
      const id = (info: TensorInfo) => backend.dataIdMap.get(info.dataId).id;
      wasmBatchMatMul(id(aView), aShape, 3, id(bView), bShape, 3, false, false, id(outView));
      fastProducts++;
      dropView(backend, aView);
      dropView(backend, bView);
      dropView(backend, outView);
    }
    for (const t of temporaries) backend.disposeData(t.dataId);
    return out;
  };

  const unsortedSegmentSum: KernelFunc = ({ inputs, backend: untypedBackend, attrs }) => {
    const backend = untypedBackend as unknown as WasmBackend;
    const x = inputs.x as TensorInfo;
    const segmentIds = inputs.segmentIds as TensorInfo;
    const { numSegments } = attrs as NamedAttrMap & { numSegments: number };
    if (x.dtype !== 'float32') throw new Error('UnsortedSegmentSum needs float32 data');
    const rowSize = util.sizeFromShape(x.shape.slice(segmentIds.shape.length));
    const out = backend.makeOutput([numSegments, ...x.shape.slice(segmentIds.shape.length)], 'float32');
    // Views are taken after makeOutput, which may grow (and detach) the heap.
    const values = backend.typedArrayFromHeap(x) as Float32Array;
    const ids = backend.typedArrayFromHeap(segmentIds) as Int32Array;
    const sums = backend.typedArrayFromHeap(out) as Float32Array;
    sums.fill(0);
    for (let row = 0; row < ids.length; row++) {
      const segment = ids[row];
      if (segment < 0 || segment >= numSegments) continue;
      const from = row * rowSize;
      const to = segment * rowSize;
      for (let j = 0; j < rowSize; j++) sums[to + j] += values[from + j];
    }
    return out;
  };

  replaceKernel({ kernelName: 'BatchMatMul', backendName: 'wasm', kernelFunc: batchMatMul });
  replaceKernel({ kernelName: 'UnsortedSegmentSum', backendName: 'wasm', kernelFunc: unsortedSegmentSum });
}

function replaceKernel(config: KernelConfig): void {
  if (getKernel(config.kernelName, config.backendName)) unregisterKernel(config.kernelName, config.backendName);
  registerKernel(config);
}
