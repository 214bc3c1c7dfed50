/**
 * Grove's own fused kernels (no stock equivalent): each replaces a chain of elementwise
 * kernels, or attention's layout copies, with one pass. Ops in @grove/model call them by
 * name when they are registered and compose stock kernels otherwise.
 */
import type { NamedAttrMap, TensorInfo } from '@tensorflow/tfjs-core';
import type { NativeAddon } from './addon.js';
import { addKernel } from './registry.js';
import { heapOf, offsetOf, scalarValue, sizeOf, wasmBackendOf, writeScalar } from './wasm-heap.js';

export const FUSED_KERNELS = {
  rmsNorm: 'GroveRmsNorm',
  rmsNormGrad: 'GroveRmsNormGrad',
  gelu: 'GroveGelu',
  geluGrad: 'GroveGeluGrad',
  rotary: 'GroveRotary',
  attention: 'GroveCausalAttention',
  attentionGrad: 'GroveCausalAttentionGrad',
  softmaxCrossEntropy: 'GroveSoftmaxCrossEntropy',
  softmaxCrossEntropyGrad: 'GroveSoftmaxCrossEntropyGrad',
  adamw: 'GroveAdamW',
} as const;

type Inputs = Record<string, TensorInfo>;
type Attrs = NamedAttrMap & Record<string, number>;

function requireFloat32(kernel: string, inputs: Inputs, except: string[] = []): void {
  for (const [name, tensor] of Object.entries(inputs)) {
    if (!except.includes(name) && tensor.dtype !== 'float32') throw new Error(`${kernel} needs float32 "${name}"`);
  }
}

export function installFusedKernels(addon: NativeAddon): string[] {
  const define = (
    name: string,
    run: (backend: ReturnType<typeof wasmBackendOf>, inputs: Inputs, attrs: Attrs) => TensorInfo | TensorInfo[],
    integerInputs: string[] = [],
  ) =>
    addKernel(name, (args) => {
      requireFloat32(name, args.inputs as Inputs, integerInputs);
      return run(wasmBackendOf(args), args.inputs as Inputs, args.attrs as Attrs);
    });

  define(FUSED_KERNELS.rmsNorm, (backend, { x, weight }, { epsilon }) => {
    const width = weight.shape[0];
    const y = backend.makeOutput(x.shape, 'float32');
    const at = (t: TensorInfo) => offsetOf(backend, t);
    addon.rmsNorm(heapOf(backend), at(x), at(weight), at(y), sizeOf(x.shape) / width, width, epsilon);
    return y;
  });
  define(FUSED_KERNELS.rmsNormGrad, (backend, { dy, x, weight }, { epsilon }) => {
    const width = weight.shape[0];
    const dx = backend.makeOutput(x.shape, 'float32');
    const dweight = backend.makeOutput(weight.shape, 'float32');
    const at = (t: TensorInfo) => offsetOf(backend, t);
    const rows = sizeOf(x.shape) / width;
    addon.rmsNormGrad(heapOf(backend), at(dy), at(x), at(weight), at(dx), at(dweight), rows, width, epsilon);
    return [dx, dweight];
  });
  define(FUSED_KERNELS.gelu, (backend, { x }) => {
    const y = backend.makeOutput(x.shape, 'float32');
    addon.gelu(heapOf(backend), offsetOf(backend, x), offsetOf(backend, y), sizeOf(x.shape));
    return y;
  });
  define(FUSED_KERNELS.geluGrad, (backend, { dy, x }) => {
    const dx = backend.makeOutput(x.shape, 'float32');
    const at = (t: TensorInfo) => offsetOf(backend, t);
    addon.geluGrad(heapOf(backend), at(dy), at(x), at(dx), sizeOf(x.shape));
    return dx;
  });
  define(FUSED_KERNELS.rotary, (backend, { x, cos, sin }, { length, heads, inverse }) => {
    const [rows, width] = x.shape;
    const y = backend.makeOutput(x.shape, 'float32');
    const at = (t: TensorInfo) => offsetOf(backend, t);
    addon.rotary(heapOf(backend), at(x), at(cos), at(sin), at(y), rows, length, heads, width / heads, inverse);
    return y;
  });
  define(FUSED_KERNELS.attention, (backend, { q, k, v }, { batch, length, heads, scale }) => {
    const width = q.shape[1];
    const out = backend.makeOutput(q.shape, 'float32');
    const probabilities = backend.makeOutput([batch, heads, length, length], 'float32');
    const at = (t: TensorInfo) => offsetOf(backend, t);
    addon.attention(
      heapOf(backend),
      ...[at(q), at(k), at(v), at(out), at(probabilities)],
      ...[batch, length, heads, width / heads, scale],
    );
    return [out, probabilities];
  });
  define(FUSED_KERNELS.attentionGrad, (backend, { q, k, v, probabilities, dy }, { batch, length, heads, scale }) => {
    const width = q.shape[1];
    const [dq, dk, dv] = [q, k, v].map((t) => backend.makeOutput(t.shape, 'float32'));
    const at = (t: TensorInfo) => offsetOf(backend, t);
    addon.attentionGrad(
      heapOf(backend),
      ...[at(q), at(k), at(v), at(probabilities), at(dy), at(dq), at(dk), at(dv)],
      ...[batch, length, heads, width / heads, scale],
    );
    return [dq, dk, dv];
  });
  define(
    FUSED_KERNELS.softmaxCrossEntropy,
    (backend, { logits, targets }) => {
      const [rows, classes] = logits.shape;
      const loss = backend.makeOutput([], 'float32');
      const probabilities = backend.makeOutput(logits.shape, 'float32');
      const at = (t: TensorInfo) => offsetOf(backend, t);
      const value = addon.softmaxCrossEntropy(
        heapOf(backend),
        at(logits),
        at(targets),
        at(probabilities),
        rows,
        classes,
      );
      writeScalar(backend, loss, value);
      return [loss, probabilities];
    },
    ['targets'],
  );
  define(
    FUSED_KERNELS.softmaxCrossEntropyGrad,
    (backend, { probabilities, targets, dy }) => {
      const [rows, classes] = probabilities.shape;
      const dlogits = backend.makeOutput(probabilities.shape, 'float32');
      const scale = scalarValue(backend, dy) / rows;
      const at = (t: TensorInfo) => offsetOf(backend, t);
      addon.softmaxCrossEntropyGrad(heapOf(backend), at(probabilities), at(targets), at(dlogits), rows, classes, scale);
      return dlogits;
    },
    ['targets'],
  );
  define(FUSED_KERNELS.adamw, (backend, { param, grad, m, v }, settings) => {
    const outputs = [param, m, v].map((t) => backend.makeOutput(t.shape, 'float32'));
    const at = (t: TensorInfo) => offsetOf(backend, t);
    const { learningRate, beta1, beta2, epsilon, decay, correction1, correction2 } = settings;
    addon.adamw(
      heapOf(backend),
      ...[at(param), at(grad), at(m), at(v), ...outputs.map(at), sizeOf(param.shape)],
      ...[learningRate, beta1, beta2, epsilon, decay, correction1, correction2],
    );
    return outputs;
  });
  return Object.values(FUSED_KERNELS);
}
