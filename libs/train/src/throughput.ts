/**
 * Throughput of the trainer against the backend's own matrix-product peak, so model
 * FLOPs utilisation (MFU) says how much of what this machine can do a step really uses.
 */
import { type ModelConfig, trainingFlopsPerToken } from '@grove/model';
import * as tf from '@tensorflow/tfjs-core';
import { TRAINING_DEFAULTS, Trainer } from './trainer.js';

export interface MatmulPeak {
  gflops: number;
  /** The product shape [m, k, n] that reached it. */
  shape: [number, number, number];
}

const PEAK_SHAPES: [number, number, number][] = [
  [512, 512, 512],
  [1024, 1024, 1024],
  [2048, 512, 512],
  [2048, 1024, 256],
];

/** Best median GFLOP/s of single float32 matrix products on the active backend. */
export function measureMatmulPeak(repeats = 5): MatmulPeak {
  let best: MatmulPeak = { gflops: 0, shape: PEAK_SHAPES[0] };
  for (const shape of PEAK_SHAPES) {
    const [m, k, n] = shape;
    const a = tf.randomNormal([m, k]);
    const b = tf.randomNormal([k, n]);
    const times = Array.from({ length: repeats + 1 }, () => timeMs(() => tf.matMul(a, b))).slice(1);
    const gflops = (2 * m * k * n) / median(times) / 1e6;
    if (gflops > best.gflops) best = { gflops, shape };
    tf.dispose([a, b]);
  }
  return best;
}

export interface TrainerThroughput {
  tokensPerSecond: number;
  /** Median seconds per optimizer step. */
  stepSeconds: number;
  /** Achieved model GFLOP/s (6 per weight per token plus attention). */
  gflops: number;
  /** gflops / the backend's measured matmul peak. */
  utilisation: number;
}

/** Times `steps` training steps on random bytes (after two warm-up steps) and reports the median. */
export function measureTrainer(
  config: ModelConfig,
  batchSize: number,
  steps: number,
  peak: MatmulPeak,
): TrainerThroughput {
  const stream = Uint8Array.from({ length: 1 << 20 }, (_, i) => (i * 2654435761) >>> 24);
  const trainer = Trainer.fresh(config, { ...TRAINING_DEFAULTS, steps: steps + 2, batchSize }, stream);
  const times = Array.from({ length: steps + 2 }, () => {
    const started = performance.now();
    trainer.trainStep();
    return (performance.now() - started) / 1000;
  }).slice(2);
  trainer.dispose();
  const stepSeconds = median(times);
  const tokensPerSecond = (batchSize * config.contextLength) / stepSeconds;
  const gflops = (tokensPerSecond * trainingFlopsPerToken(config)) / 1e9;
  return { tokensPerSecond, stepSeconds, gflops, utilisation: gflops / peak.gflops };
}

function timeMs(compute: () => tf.Tensor): number {
  const started = performance.now();
  const result = compute();
  result.dataSync();
  const elapsed = performance.now() - started;
  result.dispose();
  return elapsed;
}

export function median(values: number[]): number {
  const sorted = [...values].sort((a, b) => a - b);
  const middle = Math.floor(sorted.length / 2);
  return sorted.length % 2 ? sorted[middle] : (sorted[middle - 1] + sorted[middle]) / 2;
}
