/**
 * Where a `hidden` router starts (mergekit-moe's hidden gate mode): each layer's mean
 * feed-forward input under the seed on each expert's domain.
 */
import { type Domain, evaluationBatches } from '@grove/data';
import type { TransformerLM } from '@grove/model';
import { batchTensors } from '@grove/train';
import * as tf from '@tensorflow/tfjs-core';

/** Training bytes per domain whose mean hidden states point a `hidden` router. */
const ROUTER_INIT_BYTES = 8_192;

/** [layer][expert] means; a kept seed expert (last) gets the seed's mean over all the domains. */
export function hiddenMeans(seed: TransformerLM, expertDomains: Domain[], keepSeed: boolean): Float32Array[][] {
  const { contextLength, layers } = seed.config;
  const perDomain = expertDomains.map((domain) => {
    const [batch] = evaluationBatches(
      domain.train,
      contextLength,
      ROUTER_INIT_BYTES / contextLength,
      ROUTER_INIT_BYTES,
    );
    return tf.tidy(() => seed.feedForwardInputMeans(batchTensors(batch)[0]));
  });
  return Array.from({ length: layers }, (_, layer) => {
    const means = perDomain.map((layers) => layers[layer]);
    if (!keepSeed) return means;
    const overall = new Float32Array(means[0].length);
    for (const mean of means) for (let i = 0; i < overall.length; i++) overall[i] += mean[i] / means.length;
    return [...means, overall];
  });
}
