/**
 * The Mixture-of-Experts feed-forward layer. Routing is decided on the host from the router's
 * probabilities; then each expert gathers the rows of the tokens routed to it, runs its
 * feed-forward block on those rows only, and the weighted outputs are summed back per token
 * (a segment sum). An expert no token chose does no work: the saving is real, and counted.
 */
import * as tf from '@tensorflow/tfjs-core';
import type { ModelConfig, MoeConfig } from './config.js';
import { gelu, silu } from './ops.js';

/** Work done by the MoE layers since the last reset: what the tests and the benchmarks count. */
export class RoutingStats {
  /** Token positions that went through an MoE layer (tokens × layers). */
  tokens = 0;
  /** Rows the experts' feed-forward blocks computed: tokens × experts chosen per token, summed over layers. */
  expertRows = 0;
  /** Rows per expert, per layer. */
  readonly perExpert: number[][];

  constructor(layers: number, experts: number) {
    this.perExpert = Array.from({ length: layers }, () => Array(experts).fill(0));
  }

  /** Mean experts a token ran through per layer. */
  get expertsPerToken(): number {
    return this.tokens === 0 ? 0 : this.expertRows / this.tokens;
  }

  /** Share of the routed rows each expert took in `layer`. */
  shares(layer: number): number[] {
    const counts = this.perExpert[layer];
    const total = counts.reduce((a, b) => a + b, 0);
    return counts.map((count) => (total === 0 ? 0 : count / total));
  }
}

/** One feed-forward block on rows x [n, width]: down(act(x · up)) or down(silu(x · gate) ⊙ x · up). */
export function feedForward(
  x: tf.Tensor2D,
  weights: { up: tf.Tensor; gate?: tf.Tensor; down: tf.Tensor },
  activation: ModelConfig['activation'],
): tf.Tensor2D {
  const up = tf.matMul(x, weights.up as tf.Tensor2D);
  const hidden = activation === 'swiglu' ? tf.mul(silu(tf.matMul(x, weights.gate as tf.Tensor2D)), up) : gelu(up);
  return tf.matMul(hidden as tf.Tensor2D, weights.down as tf.Tensor2D);
}

export interface MoeLayerWeights {
  router: tf.Tensor;
  experts: { up: tf.Tensor; gate?: tf.Tensor; down: tf.Tensor }[];
}

export interface MoeLayerResult {
  output: tf.Tensor2D;
  /** The balance loss of this layer (only when training). */
  balanceLoss?: tf.Scalar;
}

/**
 * FF(x) = Σ_{i ∈ chosen(x)} g_i(x) FF_i(x) for x [N, width], where g is the router's softmax
 * renormalised over the chosen experts. Dense training chooses every expert for every token.
 */
export function moeFeedForward(
  x: tf.Tensor2D,
  weights: MoeLayerWeights,
  config: ModelConfig & { moe: MoeConfig },
  options: { training: boolean; layer: number; stats?: RoutingStats },
): MoeLayerResult {
  const { moe } = config;
  const rows = x.shape[0];
  const experts = moe.experts;
  const probabilities = tf.softmax(tf.matMul(x, weights.router as tf.Tensor2D)) as tf.Tensor2D;
  const denseStep = options.training && moe.training === 'dense';
  const chosen = denseStep ? undefined : chooseExperts(probabilities.dataSync() as Float32Array, rows, moe);

  const pieces: tf.Tensor[] = [];
  const segments: Int32Array[] = [];
  let gates: tf.Tensor2D = probabilities;
  if (chosen) {
    const mask = tf.tensor2d(chosen.mask, [rows, experts]);
    const kept = tf.mul(probabilities, mask);
    gates = tf.div(kept, tf.sum(kept, 1, true));
  }
  const flatGates = tf.reshape(gates, [rows * experts]);
  for (let expert = 0; expert < experts; expert++) {
    const tokens = chosen ? chosen.tokensOf[expert] : undefined;
    const count = tokens ? tokens.length : rows;
    if (count === 0) continue;
    const input = tokens ? (tf.gather(x, tf.tensor1d(tokens, 'int32')) as tf.Tensor2D) : x;
    const output = feedForward(input, weights.experts[expert], config.activation);
    const gateIndices = new Int32Array(count);
    for (let i = 0; i < count; i++) gateIndices[i] = (tokens ? tokens[i] : i) * experts + expert;
    const gate = tf.reshape(tf.gather(flatGates, tf.tensor1d(gateIndices, 'int32')), [count, 1]);
    pieces.push(tf.mul(output, gate));
    segments.push(tokens ?? Int32Array.from({ length: rows }, (_, i) => i));
    if (options.stats) options.stats.perExpert[options.layer][expert] += count;
    if (options.stats) options.stats.expertRows += count;
  }
  if (options.stats) options.stats.tokens += rows;
  const output = tf.unsortedSegmentSum(
    tf.concat(pieces, 0),
    tf.tensor1d(concatIndices(segments), 'int32'),
    rows,
  ) as tf.Tensor2D;
  if (!options.training || moe.balanceCoefficient === 0) return { output };
  return {
    output,
    balanceLoss: chosen ? switchBalanceLoss(probabilities, chosen.counts, moe) : mutualInformationLoss(probabilities),
  };
}

interface Routing {
  /** 1 where a token (row) uses an expert (column). */
  mask: Float32Array;
  tokensOf: Int32Array[];
  /** Tokens routed to each expert. */
  counts: number[];
}

/** Each token's experts: the top-k, or (dense-trained models with a threshold) those with p ≥ ε, at least one. */
export function chooseExperts(probabilities: Float32Array, rows: number, moe: MoeConfig): Routing {
  const experts = moe.experts;
  const mask = new Float32Array(rows * experts);
  const lists: number[][] = Array.from({ length: experts }, () => []);
  const byThreshold = moe.training === 'dense' && moe.threshold > 0;
  const order = [...Array(experts).keys()];
  for (let row = 0; row < rows; row++) {
    const p = probabilities.subarray(row * experts, (row + 1) * experts);
    order.sort((a, b) => p[b] - p[a]);
    const take = byThreshold ? Math.max(1, order.filter((e) => p[e] >= moe.threshold).length) : moe.topK;
    for (let rank = 0; rank < take; rank++) {
      mask[row * experts + order[rank]] = 1;
      lists[order[rank]].push(row);
    }
  }
  return { mask, tokensOf: lists.map((list) => Int32Array.from(list)), counts: lists.map((list) => list.length) };
}

/** Switch Transformer's balance loss N · Σ_i u_i · p̄_i (u: share of routed rows, p̄: mean probability); the model weighs it by α. */
function switchBalanceLoss(probabilities: tf.Tensor2D, counts: number[], moe: MoeConfig): tf.Scalar {
  const total = counts.reduce((a, b) => a + b, 0);
  const shares = tf.tensor1d(counts.map((count) => count / total));
  return tf.mul(moe.experts, tf.sum(tf.mul(shares, tf.mean(probabilities, 0)))) as tf.Scalar;
}

/** DS-MoE's mutual-information loss, −H(p̄) + mean_x H(p(e|x)): balanced use, sharp routing per token. */
function mutualInformationLoss(probabilities: tf.Tensor2D): tf.Scalar {
  const entropy = (p: tf.Tensor) => tf.neg(tf.sum(tf.mul(p, tf.log(tf.add(p, 1e-9))), -1));
  return tf.sub(tf.mean(entropy(probabilities)), entropy(tf.mean(probabilities, 0))) as tf.Scalar;
}

function concatIndices(parts: Int32Array[]): Int32Array {
  const all = new Int32Array(parts.reduce((sum, part) => sum + part.length, 0));
  let offset = 0;
  for (const part of parts) {
    all.set(part, offset);
    offset += part.length;
  }
  return all;
}
