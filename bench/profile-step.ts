/**
 * Where a training step's time goes, kernel by kernel (matrix products by shape), with the
 * native kernels on (GROVE_NATIVE=0 for the stock wasm ones).
 *   npx tsx bench/profile-step.ts [preset] [batchSize]
 */
import { describeBackend, presetConfig, selectBackend, TransformerLM } from '@grove/model';
import { smokeCap } from '@grove/train';
import * as tf from '@tensorflow/tfjs-core';

const choice = await selectBackend();
console.log(describeBackend(choice));
const config = presetConfig(process.argv[2] ?? 'tiny');
const batchSize = smokeCap('batchSize', Number(process.argv[3] ?? 16));
const model = TransformerLM.create(config, 1);
const shape: [number, number] = [batchSize, config.contextLength];
const inputs = tf.randomUniform(shape, 0, 256, 'int32') as tf.Tensor2D;
const targets = tf.randomUniform(shape, 0, 256, 'int32') as tf.Tensor2D;
const params = [...model.params.values()];
const step = () => {
  const { value, grads } = tf.variableGrads(() => model.loss(inputs, targets), params);
  value.dataSync();
  tf.dispose([value, ...Object.values(grads)]);
};
step();
const started = performance.now();
const profile = await tf.profile(step);
const wallMs = performance.now() - started;

const byKernel = new Map<string, { ms: number; calls: number }>();
// Custom gradients appear as a kernel named after their scope, around the kernels they run: not counted twice.
for (const kernel of profile.kernels.filter((k) => k.name !== 'forward')) {
  const key = kernel.name === 'BatchMatMul' ? `${kernel.name} ${JSON.stringify(kernel.inputShapes)}` : kernel.name;
  const entry = byKernel.get(key) ?? { ms: 0, calls: 0 };
  entry.ms += kernel.kernelTimeMs as number;
  entry.calls++;
  byKernel.set(key, entry);
}
let kernelMs = 0;
for (const [name, { ms, calls }] of [...byKernel].sort((a, b) => b[1].ms - a[1].ms)) {
  kernelMs += ms;
  console.log(`${name.padEnd(44)} ${ms.toFixed(1).padStart(8)} ms  ${calls} calls`);
}
console.log(`kernels ${kernelMs.toFixed(0)} ms of a ${wallMs.toFixed(0)} ms step (profiling adds overhead)`);
