/**
 * Decoder-only Transformer language model: token + learned position embeddings,
 * pre-norm blocks of causal multi-head attention and a feed-forward network, a final
 * norm and an output head. Weights are stored [in, out] so every product is x · W.
 */
import * as tf from '@tensorflow/tfjs-core';
import './gradients.js';
import { type ModelConfig, type MoeConfig, parameterShapes, validateModelConfig } from './config.js';
import { feedForward, type MoeLayerWeights, moeFeedForward, RoutingStats } from './moe.js';
import { causalSelfAttention, rmsNorm, softmaxCrossEntropy, tokenNegativeLogLikelihoods } from './ops.js';
import { Rng } from './random.js';

/** Named float32 values, the currency of checkpoints, peers and merges. */
export type NamedArrays = Map<string, Float32Array>;

const INIT_STD = 0.02;

interface ForwardOptions {
  /** Training routes as the MoE trains (dense for DS-MoE) and collects the balance loss. */
  training: boolean;
  /** Sees each layer's normalised feed-forward input [B·T, width]. */
  observeFeedForwardInput?: (layer: number, input: tf.Tensor2D) => void;
}

type MoeModelConfig = ModelConfig & { moe: MoeConfig };

export class TransformerLM {
  readonly config: ModelConfig;
  readonly params: Map<string, tf.Variable>;
  /** MoE models count the expert work of every forward pass here (reset it with `resetRoutingStats`). */
  routingStats?: RoutingStats;

  private constructor(config: ModelConfig, params: Map<string, tf.Variable>) {
    this.config = config;
    this.params = params;
    this.resetRoutingStats();
  }

  resetRoutingStats(): void {
    if (this.config.moe) this.routingStats = new RoutingStats(this.config.layers, this.config.moe.experts);
  }

  /** A freshly initialised model; the same seed gives the same weights on every backend. */
  static create(config: ModelConfig, seed: number): TransformerLM {
    validateModelConfig(config);
    const rng = new Rng(seed);
    const values: NamedArrays = new Map();
    // Residual projections are scaled down so the stream's variance does not grow with depth (GPT-2).
    const residualStd = INIT_STD / Math.sqrt(2 * config.layers);
    for (const [name, shape] of parameterShapes(config)) {
      const size = shape.reduce((a, b) => a * b, 1);
      const array = new Float32Array(size);
      if (name.endsWith('norm.weight')) array.fill(1);
      else {
        const std = /\.(out|down)\.weight$/.test(name) ? residualStd : INIT_STD;
        for (let i = 0; i < size; i++) array[i] = rng.normal() * std;
      }
      values.set(name, array);
    }
    return TransformerLM.fromArrays(config, values);
  }

  /** A model holding the given weights; every expected name must be present with its shape's size. */
  static fromArrays(config: ModelConfig, values: NamedArrays): TransformerLM {
    validateModelConfig(config);
    const params = new Map<string, tf.Variable>();
    for (const [name, shape] of parameterShapes(config)) {
      const array = values.get(name);
      if (!array) throw new Error(`Weights are missing parameter "${name}".`);
      const size = shape.reduce((a, b) => a * b, 1);
      if (array.length !== size) {
        throw new Error(`Parameter "${name}" has ${array.length} values; the config needs shape [${shape}].`);
      }
      // Engine-assigned variable names: several models may live in one process.
      params.set(name, tf.variable(tf.tensor(array, shape, 'float32'), true));
    }
    return new TransformerLM(config, params);
  }

  /** Copies every parameter out of the backend, in the stable order of the config. */
  toArrays(): NamedArrays {
    const values: NamedArrays = new Map();
    for (const [name, variable] of this.params) values.set(name, variable.dataSync() as Float32Array);
    return values;
  }

  /** Overwrites parameters in place from named arrays (a peer's average, a merged model). */
  assign(values: NamedArrays): void {
    for (const [name, variable] of this.params) {
      const array = values.get(name);
      if (!array) throw new Error(`Weights are missing parameter "${name}".`);
      // The variable takes its own reference to the data; the temporary must go, or every
      // assignment (each Local-SGD round) would leak a copy of the model.
      const value = tf.tensor(array, variable.shape, 'float32');
      variable.assign(value);
      value.dispose();
    }
  }

  dispose(): void {
    for (const variable of this.params.values()) variable.dispose();
  }

  private p(name: string): tf.Variable {
    const param = this.params.get(name);
    if (!param) throw new Error(`Model has no parameter "${name}".`);
    return param;
  }

  /** Logits [B·T, vocab] for tokens [B, T], routed as at inference. */
  logits(tokens: tf.Tensor2D): tf.Tensor2D {
    return this.forward(tokens, { training: false }).logits;
  }

  /** Mean normalised feed-forward input of each layer over `tokens` (what a router sees), [layers][width]. */
  feedForwardInputMeans(tokens: tf.Tensor2D): Float32Array[] {
    const means: Float32Array[] = [];
    tf.tidy(() => {
      this.forward(tokens, {
        training: false,
        observeFeedForwardInput: (layer, input) => {
          means[layer] = tf.mean(input, 0).dataSync() as Float32Array;
        },
      });
    });
    return means;
  }

  private forward(tokens: tf.Tensor2D, options: ForwardOptions): { logits: tf.Tensor2D; balanceLoss?: tf.Scalar } {
    const [batch, length] = tokens.shape;
    const { width, heads, contextLength, normEpsilon } = this.config;
    if (length > contextLength)
      throw new Error(`Sequence of ${length} tokens exceeds the context of ${contextLength}.`);
    const rows = batch * length;

    const embedded = tf.reshape(tf.gather(this.p('embed.tokens.weight'), tf.reshape(tokens, [rows])), [
      batch,
      length,
      width,
    ]);
    const rotary = this.config.positions === 'rotary';
    let x = tf.reshape(rotary ? embedded : tf.add(embedded, this.positionTable(length)), [rows, width]);

    const balanceLosses: tf.Scalar[] = [];

    for (let layer = 0; layer < this.config.layers; layer++) {
      const at = (name: string) => this.p(`layers.${layer}.${name}`);
      const h = rmsNorm(x, at('attention.norm.weight'), normEpsilon);
      const mixed = causalSelfAttention(
        tf.matMul(h, at('attention.query.weight')),
        tf.matMul(h, at('attention.key.weight')),
        tf.matMul(h, at('attention.value.weight')),
        { batch, length, heads },
        rotary,
      );
      x = tf.add(x, tf.matMul(mixed, at('attention.out.weight')));

      const f = rmsNorm(x, at('ffn.norm.weight'), normEpsilon) as tf.Tensor2D;
      options.observeFeedForwardInput?.(layer, f);
      if (this.config.moe) {
        const result = moeFeedForward(f, this.moeWeights(layer, this.config.moe), this.config as MoeModelConfig, {
          training: options.training,
          layer,
          stats: this.routingStats,
        });
        x = tf.add(x, result.output);
        if (result.balanceLoss) balanceLosses.push(result.balanceLoss);
      } else {
        const weights = { up: at('ffn.up.weight'), down: at('ffn.down.weight') };
        const gate = this.config.activation === 'swiglu' ? { gate: at('ffn.gate.weight') } : {};
        x = tf.add(x, feedForward(f, { ...weights, ...gate }, this.config.activation));
      }
    }
    const logits = tf.matMul(rmsNorm(x, this.p('norm.weight'), normEpsilon), this.p('head.weight')) as tf.Tensor2D;
    return {
      logits,
      balanceLoss: balanceLosses.length
        ? (tf.div(tf.addN(balanceLosses), balanceLosses.length) as tf.Scalar)
        : undefined,
    };
  }

  private moeWeights(layer: number, moe: MoeConfig): MoeLayerWeights {
    const at = (name: string) => this.p(`layers.${layer}.ffn.${name}`);
    return {
      router: at('router.weight'),
      experts: Array.from({ length: moe.experts }, (_, expert) => ({
        up: at(`experts.${expert}.up.weight`),
        down: at(`experts.${expert}.down.weight`),
        ...(this.config.activation === 'swiglu' ? { gate: at(`experts.${expert}.gate.weight`) } : {}),
      })),
    };
  }

  private positionTable(length: number): tf.Tensor {
    const table = this.p('embed.positions.weight');
    return length === this.config.contextLength ? table : tf.slice(table, [0, 0], [length, this.config.width]);
  }

  /**
   * Mean next-token cross-entropy in nats; `targets` are `inputs` shifted by one. An MoE adds its
   * balance loss, weighted by `moe.balanceCoefficient` and averaged over layers.
   */
  loss(inputs: tf.Tensor2D, targets: tf.Tensor2D): tf.Scalar {
    const { logits, balanceLoss } = this.forward(inputs, { training: true });
    const crossEntropy = softmaxCrossEntropy(logits, tf.reshape(targets, [-1]) as tf.Tensor1D);
    if (!balanceLoss || !this.config.moe) return crossEntropy;
    return tf.add(crossEntropy, tf.mul(balanceLoss, this.config.moe.balanceCoefficient)) as tf.Scalar;
  }

  /** Per-token negative log-likelihood in nats, [B·T], without gradients. */
  tokenLosses(inputs: tf.Tensor2D, targets: tf.Tensor2D): tf.Tensor1D {
    return tf.tidy(() => tokenNegativeLogLikelihoods(this.logits(inputs), tf.reshape(targets, [-1]) as tf.Tensor1D));
  }
}
