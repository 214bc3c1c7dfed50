/**
 * BatchMatMul and _FusedMatMul through sgemm: transposes are flags and batches index into
 * the operands in place, so nothing is copied. Covered: float32, equal batch shapes or one
 * side a single matrix; fused bias over the last axis with linear or ReLU activation.
 */
import { backend_util, type NamedAttrMap, type TensorInfo } from '@tensorflow/tfjs-core';
import type { NativeAddon } from './addon.js';
import { overrideKernel } from './registry.js';
import { heapOf, type KernelArgs, offsetOf, sizeOf, wasmBackendOf } from './wasm-heap.js';

interface Product {
  m: number;
  n: number;
  k: number;
  batch: number;
  aStep: number;
  bStep: number;
  outShape: number[];
}

/** The product's layout, or undefined where the stock kernel must handle it. */
function planProduct(a: TensorInfo, b: TensorInfo, transposeA: boolean, transposeB: boolean): Product | undefined {
  if (a.dtype !== 'float32' || b.dtype !== 'float32' || a.shape.length < 2 || b.shape.length < 2) return undefined;
  const [aRows, aCols] = a.shape.slice(-2);
  const [bRows, bCols] = b.shape.slice(-2);
  const [m, k] = transposeA ? [aCols, aRows] : [aRows, aCols];
  const [kB, n] = transposeB ? [bCols, bRows] : [bRows, bCols];
  if (k !== kB || m * n * k === 0) return undefined;
  const aOuter = a.shape.slice(0, -2);
  const bOuter = b.shape.slice(0, -2);
  let outer: number[];
  try {
    outer = backend_util.assertAndGetBroadcastShape(aOuter, bOuter);
  } catch {
    return undefined;
  }
  const batchA = sizeOf(aOuter);
  const batchB = sizeOf(bOuter);
  const batch = sizeOf(outer);
  // Equal batches pair up one to one; a single matrix pairs with every batch. Anything else broadcasts per axis.
  if (batch !== Math.max(batchA, batchB) || (batchA !== batchB && Math.min(batchA, batchB) !== 1)) return undefined;
  return {
    m,
    n,
    k,
    batch,
    aStep: batchA === 1 ? 0 : m * k,
    bStep: batchB === 1 ? 0 : k * n,
    outShape: [...outer, m, n],
  };
}

function runProduct(args: KernelArgs, addon: NativeAddon, bias: TensorInfo | undefined, relu: boolean) {
  const backend = wasmBackendOf(args);
  const { a, b } = args.inputs as { a: TensorInfo; b: TensorInfo };
  const { transposeA, transposeB } = args.attrs as NamedAttrMap & { transposeA: boolean; transposeB: boolean };
  const plan = planProduct(a, b, transposeA, transposeB);
  if (!plan) return undefined;
  if (bias && (bias.dtype !== 'float32' || sizeOf(bias.shape) !== plan.n || bias.shape.at(-1) !== plan.n))
    return undefined;
  const out = backend.makeOutput(plan.outShape, 'float32');
  const { m, n, k, batch, aStep, bStep } = plan;
  const biasOffset = bias ? offsetOf(backend, bias) : -1;
  const [reluFlag, transposeAFlag, transposeBFlag] = [relu, transposeA, transposeB].map(Number);
  addon.matmul(
    heapOf(backend),
    ...[offsetOf(backend, a), offsetOf(backend, b), offsetOf(backend, out), biasOffset, reluFlag],
    ...[batch, aStep, bStep, m, n, k, transposeAFlag, transposeBFlag],
  );
  return out;
}

export function installMatmulKernels(addon: NativeAddon): string[] {
  overrideKernel('BatchMatMul', (args) => runProduct(args, addon, undefined, false));
  overrideKernel('_FusedMatMul', (args) => {
    const { bias, preluActivationWeights } = args.inputs as { bias?: TensorInfo; preluActivationWeights?: TensorInfo };
    const { activation } = args.attrs as NamedAttrMap & { activation: string };
    if (preluActivationWeights || (activation !== 'linear' && activation !== 'relu')) return undefined;
    return runProduct(args, addon, bias, activation === 'relu');
  });
  return ['BatchMatMul', '_FusedMatMul'];
}
