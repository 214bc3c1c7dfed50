/**
 * AdamW (Loshchilov & Hutter 2019): Adam moments with weight decay applied to the
 * weights directly, not through the gradient. Its whole state is the two moment tensors
 * per parameter and the step count, all of which a checkpoint saves.
 */
import { fusedAdamWStep } from '@grove/model';
import * as tf from '@tensorflow/tfjs-core';

export interface AdamWSettings {
  beta1: number;
  beta2: number;
  epsilon: number;
  weightDecay: number;
}

export const ADAMW_DEFAULTS: AdamWSettings = { beta1: 0.9, beta2: 0.95, epsilon: 1e-8, weightDecay: 0.1 };

export class AdamW {
  readonly settings: AdamWSettings;
  /** Updates applied so far; bias correction depends on it. */
  stepCount = 0;
  private readonly firstMoments = new Map<string, tf.Variable>();
  private readonly secondMoments = new Map<string, tf.Variable>();

  constructor(params: Map<string, tf.Variable>, settings: Partial<AdamWSettings> = {}) {
    this.settings = { ...ADAMW_DEFAULTS, ...settings };
    for (const [name, param] of params) {
      this.firstMoments.set(name, tf.variable(tf.zerosLike(param), false));
      this.secondMoments.set(name, tf.variable(tf.zerosLike(param), false));
    }
  }

  /** Applies one update; decay only touches matrices (norm gains are left alone). */
  apply(params: Map<string, tf.Variable>, grads: Map<string, tf.Tensor>, learningRate: number): void {
    const { beta1, beta2, epsilon, weightDecay } = this.settings;
    this.stepCount++;
    const correction1 = 1 - beta1 ** this.stepCount;
    const correction2 = 1 - beta2 ** this.stepCount;
    tf.tidy(() => {
      for (const [name, param] of params) {
        const grad = grads.get(name);
        if (!grad) continue;
        const m = this.firstMoments.get(name) as tf.Variable;
        const v = this.secondMoments.get(name) as tf.Variable;
        const decay = param.rank >= 2 ? weightDecay : 0;
        const step = { learningRate, beta1, beta2, epsilon, decay, correction1, correction2 };
        const fused = fusedAdamWStep(param, grad, m, v, step);
        if (fused) {
          param.assign(fused[0]);
          m.assign(fused[1]);
          v.assign(fused[2]);
          continue;
        }
        m.assign(tf.add(tf.mul(m, beta1), tf.mul(grad, 1 - beta1)));
        v.assign(tf.add(tf.mul(v, beta2), tf.mul(tf.square(grad), 1 - beta2)));
        const update = tf.div(tf.div(m, correction1), tf.add(tf.sqrt(tf.div(v, correction2)), epsilon));
        const decayed = param.rank >= 2 ? tf.mul(param, 1 - learningRate * weightDecay) : param;
        param.assign(tf.sub(decayed, tf.mul(update, learningRate)));
      }
    });
  }

  /** Moments as named arrays (`adam.m.<param>`, `adam.v.<param>`) for a checkpoint. */
  stateArrays(): Map<string, { shape: number[]; data: Float32Array }> {
    const state = new Map<string, { shape: number[]; data: Float32Array }>();
    for (const [name, m] of this.firstMoments)
      state.set(`adam.m.${name}`, { shape: m.shape, data: m.dataSync() as Float32Array });
    for (const [name, v] of this.secondMoments)
      state.set(`adam.v.${name}`, { shape: v.shape, data: v.dataSync() as Float32Array });
    return state;
  }

  loadStateArrays(state: Map<string, { shape: number[]; data: Float32Array }>, stepCount: number): void {
    const restore = (moments: Map<string, tf.Variable>, prefix: string) => {
      for (const [name, variable] of moments) {
        const saved = state.get(`${prefix}${name}`);
        if (!saved || saved.data.length !== variable.size) {
          throw new Error(`Optimizer state is missing or misshapen for parameter "${name}".`);
        }
        variable.assign(tf.tensor(saved.data, variable.shape));
      }
    };
    restore(this.firstMoments, 'adam.m.');
    restore(this.secondMoments, 'adam.v.');
    this.stepCount = stepCount;
  }

  dispose(): void {
    for (const variable of [...this.firstMoments.values(), ...this.secondMoments.values()]) variable.dispose();
  }
}
