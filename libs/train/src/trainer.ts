/**
 * The inner training loop: sample a batch, differentiate the loss, clip, step AdamW.
 * Everything that decides what happens next (weights, moments, step, data RNG) lives in
 * the trainer and round-trips through a checkpoint, so a resumed run continues exactly.
 */
import { sampleBatch } from '@grove/data';
import { type ModelConfig, type NamedArrays, Rng, TransformerLM, validateModelConfig } from '@grove/model';
import type { Checkpoint, TensorMap } from '@grove/store';
import * as tf from '@tensorflow/tfjs-core';
import { AdamW } from './adamw.js';
import { batchTensors } from './evaluate.js';
import { learningRateAt } from './schedule.js';

export interface TrainingSettings {
  /** Optimizer updates in the whole run. */
  steps: number;
  /** Sequences per micro-batch. */
  batchSize: number;
  /** Micro-batches whose gradients are averaged into one update. */
  accumulation: number;
  learningRate: number;
  warmupSteps: number;
  /** The cosine schedule ends at learningRate × this. */
  finalLearningRateFraction: number;
  weightDecay: number;
  beta1: number;
  beta2: number;
  /** Largest global gradient norm; larger gradients are scaled down to it (0 turns clipping off). */
  gradientClip: number;
  /** Seeds initialisation and data order. */
  seed: number;
  /** `router`: update only an MoE's routers, every other parameter frozen (default `all`). */
  trainableParameters?: 'all' | 'router';
}

export const TRAINING_DEFAULTS: TrainingSettings = {
  steps: 1000,
  batchSize: 16,
  accumulation: 1,
  learningRate: 3e-3,
  warmupSteps: 50,
  finalLearningRateFraction: 0.1,
  weightDecay: 0.1,
  beta1: 0.9,
  beta2: 0.95,
  gradientClip: 1,
  seed: 1,
};

export interface StepReport {
  /** Updates completed, counting this one. */
  step: number;
  /** Mean training loss of this update, in nats per byte. */
  loss: number;
  gradientNorm: number;
  learningRate: number;
  /** Tokens this update trained on. */
  tokens: number;
}

interface TrainerState {
  step: number;
  tokensSeen: number;
  dataRngState: number;
  settings: TrainingSettings;
}

export class Trainer {
  readonly model: TransformerLM;
  private currentSettings: TrainingSettings;
  private readonly optimizer: AdamW;
  /** The parameters updated: all of them, or only an MoE's routers. */
  private readonly trainable: Map<string, tf.Variable>;
  private readonly dataRng: Rng;
  private readonly stream: Uint8Array;
  step = 0;
  tokensSeen = 0;

  private constructor(model: TransformerLM, settings: TrainingSettings, stream: Uint8Array) {
    validateSettings(settings);
    this.model = model;
    this.currentSettings = settings;
    this.stream = stream;
    this.trainable = trainableParameters(model, settings.trainableParameters ?? 'all');
    this.optimizer = new AdamW(this.trainable, {
      beta1: settings.beta1,
      beta2: settings.beta2,
      weightDecay: settings.weightDecay,
    });
    this.dataRng = new Rng(settings.seed).fork('data');
  }

  /** A new model initialised from `settings.seed`, trained on `stream`. */
  static fresh(config: ModelConfig, settings: TrainingSettings, stream: Uint8Array): Trainer {
    return new Trainer(TransformerLM.create(config, settings.seed), settings, stream);
  }

  /** Continues from weights only (a seed model or an expert branch): fresh optimizer, step 0. */
  static fromWeights(checkpoint: Checkpoint, settings: TrainingSettings, stream: Uint8Array): Trainer {
    return new Trainer(modelFromCheckpoint(checkpoint), settings, stream);
  }

  /** Like fromWeights, from parameters already in memory (a Local-SGD group's state). */
  static fromArrays(config: ModelConfig, params: NamedArrays, settings: TrainingSettings, stream: Uint8Array): Trainer {
    return new Trainer(TransformerLM.fromArrays(validateModelConfig(config), params), settings, stream);
  }

  /** Continues a run exactly where `checkpoint` left it, with the settings it was started with. */
  static resume(checkpoint: Checkpoint, stream: Uint8Array): Trainer {
    const state = checkpoint.state as unknown as TrainerState | undefined;
    if (!state?.settings || !checkpoint.optimizer) {
      throw new Error('That checkpoint holds weights only, without optimizer and trainer state; it cannot be resumed.');
    }
    const trainer = new Trainer(modelFromCheckpoint(checkpoint), state.settings, stream);
    trainer.optimizer.loadStateArrays(checkpoint.optimizer, state.step);
    trainer.step = state.step;
    trainer.tokensSeen = state.tokensSeen;
    trainer.dataRng.setState(state.dataRngState);
    return trainer;
  }

  get settings(): TrainingSettings {
    return this.currentSettings;
  }

  /**
   * Fixes the run's length while still warming up: the schedule so far did not depend on it,
   * so the run is the same as if it had been started with `steps`.
   */
  setTotalSteps(steps: number): void {
    if (this.step > this.currentSettings.warmupSteps) {
      throw new Error('The step budget can only change during warm-up, before the cosine decay has begun.');
    }
    this.currentSettings = { ...this.currentSettings, steps: Math.max(steps, this.step) };
  }

  get finished(): boolean {
    return this.step >= this.settings.steps;
  }

  /**
   * One optimizer update over `accumulation` micro-batches. `scheduleStep` places it on the
   * learning-rate schedule when that follows a larger clock than this trainer's own steps
   * (a Local-SGD replica follows its group's progress).
   */
  trainStep(scheduleStep = this.step): StepReport {
    const { batchSize, accumulation, gradientClip } = this.settings;
    const length = this.model.config.contextLength;
    const learningRate = learningRateAt(scheduleStep, {
      peak: this.settings.learningRate,
      warmupSteps: this.settings.warmupSteps,
      totalSteps: this.settings.steps,
      finalFraction: this.settings.finalLearningRateFraction,
    });
    const names = [...this.trainable.keys()];
    const params = [...this.trainable.values()];
    let lossSum = 0;
    let summed: tf.Tensor[] | undefined;
    // An MoE expert no token chose in a batch gets no gradient; like PyTorch, it is left untouched.
    const reached = params.map(() => false);
    for (let micro = 0; micro < accumulation; micro++) {
      const batch = sampleBatch(this.stream, batchSize, length, this.dataRng);
      const { value, grads } = explainHeapExhaustion(batchSize, length, () =>
        tf.tidy(() => {
          const [inputs, targets] = batchTensors(batch);
          return tf.variableGrads(() => this.model.loss(inputs, targets), params);
        }),
      );
      lossSum += value.dataSync()[0];
      value.dispose();
      const ordered = params.map((param, i) => {
        const gradient = grads[param.name];
        if (gradient) reached[i] = true;
        return gradient ?? tf.zerosLike(param);
      });
      if (summed) {
        const previous = summed;
        summed = previous.map((sum, i) => tf.add(sum, ordered[i]));
        tf.dispose([...previous, ...ordered]);
      } else summed = ordered;
    }
    const gradients = summed as tf.Tensor[];
    const norm = tf.tidy(() => {
      const scale = 1 / accumulation;
      const mean = gradients.map((g) => tf.mul(g, scale));
      const total = tf.sqrt(tf.addN(mean.map((g) => tf.sum(tf.square(g)))));
      const clip = gradientClip > 0 ? tf.minimum(1, tf.div(gradientClip, tf.add(total, 1e-6))) : tf.scalar(1);
      const clipped = new Map(names.flatMap((name, i) => (reached[i] ? [[name, tf.mul(mean[i], clip)] as const] : [])));
      this.optimizer.apply(this.trainable, clipped, learningRate);
      return total;
    });
    const gradientNorm = norm.dataSync()[0];
    tf.dispose([norm, ...gradients]);

    const tokens = batchSize * accumulation * length;
    this.step++;
    this.tokensSeen += tokens;
    return { step: this.step, loss: lossSum / accumulation, gradientNorm, learningRate, tokens };
  }

  /** Weights, optimizer moments and position, enough to resume bit for bit. */
  checkpoint(extraState: Record<string, unknown> = {}): Checkpoint {
    const weights: TensorMap = new Map();
    for (const [name, variable] of this.model.params) {
      weights.set(name, { shape: variable.shape, data: variable.dataSync() as Float32Array });
    }
    const state: TrainerState = {
      step: this.step,
      tokensSeen: this.tokensSeen,
      dataRngState: this.dataRng.getState(),
      settings: this.settings,
    };
    return {
      config: { ...this.model.config },
      weights,
      optimizer: this.optimizer.stateArrays(),
      state: { ...extraState, ...state },
    };
  }

  dispose(): void {
    this.optimizer.dispose();
    this.model.dispose();
  }
}

function trainableParameters(model: TransformerLM, which: 'all' | 'router'): Map<string, tf.Variable> {
  if (which === 'all') return model.params;
  const routers = new Map([...model.params].filter(([name]) => name.endsWith('.ffn.router.weight')));
  if (routers.size === 0)
    throw new Error('Only the routers can be trained in a Mixture-of-Experts model; this one has none.');
  return routers;
}

/** A checkpoint's weights as named arrays (the same memory, no copy). */
export const checkpointArrays = (checkpoint: Checkpoint): NamedArrays =>
  new Map([...checkpoint.weights].map(([name, tensor]) => [name, tensor.data]));

/** The model a checkpoint holds, its config validated. */
export function modelFromCheckpoint(checkpoint: Checkpoint): TransformerLM {
  const config = validateModelConfig(checkpoint.config as unknown as ModelConfig);
  return TransformerLM.fromArrays(config, checkpointArrays(checkpoint));
}

/**
 * wasm32 heaps stop at a few GB and a step past the end aborts with a bare "memory access out
 * of bounds"; say what it means and what to change.
 */
function explainHeapExhaustion<T>(batchSize: number, length: number, compute: () => T): T {
  try {
    return compute();
  } catch (error) {
    if (error instanceof Error && /memory access out of bounds|out of memory/i.test(error.message)) {
      throw new Error(
        `The ${tf.getBackend()} backend ran out of memory at ${batchSize} sequences × ${length} tokens; lower the batch size and raise accumulation to keep the tokens per update.`,
      );
    }
    throw error;
  }
}

function validateSettings(settings: TrainingSettings): void {
  const positiveIntegers = ['steps', 'batchSize', 'accumulation'] as const;
  for (const key of positiveIntegers) {
    if (!Number.isInteger(settings[key]) || settings[key] < 1) {
      throw new Error(`Training setting "${key}" must be a positive integer; got ${settings[key]}.`);
    }
  }
  if (!(settings.learningRate > 0))
    throw new Error(`Training setting "learningRate" must be positive; got ${settings.learningRate}.`);
  if (!(settings.warmupSteps >= 0)) throw new Error('Training setting "warmupSteps" must not be negative.');
}
