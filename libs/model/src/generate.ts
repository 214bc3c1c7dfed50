import * as tf from '@tensorflow/tfjs-core';
import type { Rng } from './random.js';
import { byteTokenizer } from './tokenizer.js';
import type { TransformerLM } from './transformer.js';

export interface SampleOptions {
  maxNewTokens: number;
  /** 0 picks the most likely token; 1 samples the model's distribution as is. */
  temperature: number;
  /** Sample only among the k most likely tokens (0: all). */
  topK: number;
  rng: Rng;
}

/** Continues `prompt` with up to `maxNewTokens` sampled bytes and returns only the continuation. */
export function sampleText(model: TransformerLM, prompt: string, options: SampleOptions): string {
  const tokens = Array.from(byteTokenizer.encode(prompt));
  if (tokens.length === 0) tokens.push(10); // a newline: start from the top of a paragraph
  const start = tokens.length;
  for (let i = 0; i < options.maxNewTokens; i++) {
    const window = tokens.slice(-model.config.contextLength);
    const scores = tf.tidy(() => {
      const logits = model.logits(tf.tensor2d([window], [1, window.length], 'int32'));
      return logits.slice([window.length - 1, 0], [1, -1]).dataSync() as Float32Array;
    });
    tokens.push(pickToken(scores.subarray(0, 256), options));
  }
  return byteTokenizer.decode(tokens.slice(start));
}

function pickToken(logits: Float32Array, { temperature, topK, rng }: SampleOptions): number {
  const order = [...logits.keys()].sort((a, b) => logits[b] - logits[a]);
  if (temperature <= 0) return order[0];
  const candidates = topK > 0 ? order.slice(0, topK) : order;
  const top = logits[candidates[0]];
  const weights = candidates.map((id) => Math.exp((logits[id] - top) / temperature));
  let threshold = rng.next() * weights.reduce((a, b) => a + b, 0);
  for (let i = 0; i < candidates.length; i++) {
    threshold -= weights[i];
    if (threshold <= 0) return candidates[i];
  }
  return candidates[candidates.length - 1];
}
