/**
 * What top-k dispatch saves: inference tokens/s of the `tiny` shape as a dense model and as a
 * Mixture-of-Experts with 4 experts per layer run at top-1, top-2 and all 4, against the same
 * MoE computed as a masked dense product (every expert on every token, unchosen gates zero), all
 * scoring the same held-out Brown text (the cross-entropy included in every row).
 *   npx tsx bench/moe-dispatch.ts [batchSize] [repeats]
 */
import { evaluationBatches, loadDomain } from '@grove/data';
import {
  activeParameterCount,
  describeBackend,
  type ModelConfig,
  presetConfig,
  selectBackend,
  TransformerLM,
} from '@grove/model';
import { median, smokeCap } from '@grove/train';
import * as tf from '@tensorflow/tfjs-core';

const choice = await selectBackend();
console.log(describeBackend(choice));
const batchSize = smokeCap('batchSize', Number(process.argv[2] ?? 16));
const repeats = smokeCap('repeats', Number(process.argv[3] ?? 7));
const dense = presetConfig('tiny');
const moe = (topK: number, training: 'sparse' | 'dense' = 'sparse'): ModelConfig => ({
  ...dense,
  moe: { experts: 4, topK, training, threshold: 0, balanceCoefficient: 0 },
});
const [batch] = evaluationBatches(
  loadDomain('press').heldOut,
  dense.contextLength,
  batchSize,
  batchSize * dense.contextLength,
);
const tokens = tf.tensor2d(batch.inputs, [batch.rows, batch.length], 'int32');
const targets = tf.tensor2d(batch.targets, [batch.rows, batch.length], 'int32');
const tokenCount = batch.rows * batch.length;

/** Median seconds of `run` over the repeats, after one warm-up call. */
function time(run: () => void): number {
  run();
  const seconds: number[] = [];
  for (let i = 0; i < repeats; i++) {
    const started = performance.now();
    run();
    seconds.push((performance.now() - started) / 1000);
  }
  return median(seconds);
}

const weights = TransformerLM.create(moe(2), 1).toArrays();
const rows: string[] = [];
const measure = (label: string, config: ModelConfig, forward: (model: TransformerLM) => tf.Tensor) => {
  const model = config.moe ? TransformerLM.fromArrays(config, weights) : TransformerLM.create(config, 1);
  const seconds = time(() => tf.tidy(() => forward(model).dataSync()));
  model.resetRoutingStats();
  tf.tidy(() => forward(model).dataSync());
  const perToken = model.routingStats?.expertsPerToken;
  rows.push(
    `| ${label} | ${perToken ?? '-'} | ${(activeParameterCount(config, perToken) / 1e6).toFixed(2)} M | ${Math.round(tokenCount / seconds)} |`,
  );
  model.dispose();
};
// Scoring held-out text, as the eval job does: the routed (inference) path.
const score = (model: TransformerLM) => model.tokenLosses(tokens, targets);
measure('dense `tiny`', dense, score);
for (const topK of [1, 2, 4]) measure(`MoE 4 experts, top-${topK}`, moe(topK), score);
// Dense training routes every token through every expert: the masked dense product, as a forward pass.
measure('MoE 4 experts, every expert on every token (masked dense)', moe(1, 'dense'), (model) =>
  model.loss(tokens, targets),
);
console.log(`\n${batchSize} × ${dense.contextLength} tokens per forward pass, median of ${repeats}\n`);
console.log('| model | experts run per token | active parameters | tokens/s |');
console.log('| --- | --- | --- | --- |');
for (const row of rows) console.log(row);
