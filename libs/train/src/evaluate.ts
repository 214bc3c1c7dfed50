import { evaluationBatches, type TokenBatch } from '@grove/data';
import type { TransformerLM } from '@grove/model';
import * as tf from '@tensorflow/tfjs-core';

export interface EvaluationSettings {
  /** Bytes of held-out text scored per domain (from its start; the same every time). */
  maxBytes: number;
  /** Windows scored per forward pass. */
  rows: number;
}

export const EVALUATION_DEFAULTS: EvaluationSettings = { maxBytes: 32_768, rows: 16 };

/** Mean bits per byte of `model` on held-out text: next-byte cross-entropy in base 2. */
export function bitsPerByte(model: TransformerLM, heldOut: Uint8Array, settings = EVALUATION_DEFAULTS): number {
  const batches = evaluationBatches(heldOut, model.config.contextLength, settings.rows, settings.maxBytes);
  let nats = 0;
  let bytes = 0;
  for (const batch of batches) {
    nats += tf.tidy(() => tf.sum(model.tokenLosses(...batchTensors(batch))).dataSync()[0]);
    bytes += batch.rows * batch.length;
  }
  return nats / bytes / Math.LN2;
}

export function batchTensors(batch: TokenBatch): [tf.Tensor2D, tf.Tensor2D] {
  return [
    tf.tensor2d(batch.inputs, [batch.rows, batch.length], 'int32'),
    tf.tensor2d(batch.targets, [batch.rows, batch.length], 'int32'),
  ];
}
