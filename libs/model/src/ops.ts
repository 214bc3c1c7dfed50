/**
 * Building blocks with hand-written gradients where autodiff would take a slow path
 * on the wasm backend (tanh and exp are scalar loops there; sigmoid and softmax are
 * vectorised kernels). Where @grove/native registered a fused kernel for the active
 * backend, the op runs it, forward and backward, in one pass instead.
 */
import { FUSED_KERNELS, type FusedKernelName } from '@grove/native';
import * as tf from '@tensorflow/tfjs-core';

const hasFused = (kernel: FusedKernelName) => tf.getKernel(kernel, tf.getBackend()) !== undefined;

function runFused<T extends tf.Tensor | tf.Tensor[]>(
  kernel: FusedKernelName,
  inputs: tf.NamedTensorMap,
  attrs: tf.NamedAttrMap = {},
): T {
  return tf.engine().runKernel(kernel, inputs, attrs) as T;
}

const GELU_SIGMOID_SCALE = 1.702;

/** tf.customGrad with the argument types of `forward` kept (tfjs types them all as Tensor | save function). */
function customGradient<Args extends tf.Tensor[], Output extends tf.Tensor>(
  forward: (...args: [...Args, tf.GradSaveFunc]) => {
    value: Output;
    gradFunc: (dy: Output, saved: tf.Tensor[]) => tf.Tensor[];
  },
): (...args: Args) => Output {
  return tf.customGrad(forward as unknown as Parameters<typeof tf.customGrad>[0]) as unknown as (
    ...args: Args
  ) => Output;
}

/** GELU in its sigmoid form, x·σ(1.702x) (Hendrycks & Gimpel 2016). */
export function gelu(input: tf.Tensor): tf.Tensor {
  return hasFused(FUSED_KERNELS.gelu) ? fusedGelu(input) : composedGelu(input);
}

const fusedGelu = customGradient((input: tf.Tensor, save: tf.GradSaveFunc) => {
  save([input]);
  return {
    value: runFused<tf.Tensor>(FUSED_KERNELS.gelu, { x: input }),
    gradFunc: (dy, [x]) => [runFused<tf.Tensor>(FUSED_KERNELS.geluGrad, { dy, x })],
  };
});

const composedGelu = customGradient((input: tf.Tensor, save: tf.GradSaveFunc) => {
  const gate = tf.sigmoid(tf.mul(input, GELU_SIGMOID_SCALE));
  save([input, gate]);
  return {
    value: tf.mul(input, gate),
    gradFunc: (dy, saved) => {
      const [savedInput, savedGate] = saved;
      // d/dx x·σ(ax) = σ + a·x·σ·(1 − σ)
      const slope = tf.add(
        savedGate,
        tf.mul(tf.mul(tf.mul(savedInput, GELU_SIGMOID_SCALE), savedGate), tf.sub(1, savedGate)),
      );
      return [tf.mul(dy as tf.Tensor, slope)];
    },
  };
});

/** SiLU, x·σ(x), the gate of SwiGLU. */
export const silu = customGradient((input: tf.Tensor, save: tf.GradSaveFunc) => {
  const gate = tf.sigmoid(input);
  save([input, gate]);
  return {
    value: tf.mul(input, gate),
    gradFunc: (dy, saved) => {
      const [savedInput, savedGate] = saved;
      const slope = tf.add(savedGate, tf.mul(tf.mul(savedInput, savedGate), tf.sub(1, savedGate)));
      return [tf.mul(dy as tf.Tensor, slope)];
    },
  };
});

/** RMSNorm over the last axis (Zhang & Sennrich 2019): x / rms(x) · weight. */
export function rmsNorm(x: tf.Tensor, weight: tf.Tensor, epsilon: number): tf.Tensor {
  if (!hasFused(FUSED_KERNELS.rmsNorm)) return composedRmsNorm(x, weight, epsilon);
  const fused = customGradient((input: tf.Tensor, gain: tf.Tensor, save: tf.GradSaveFunc) => {
    save([input, gain]);
    return {
      value: runFused<tf.Tensor>(FUSED_KERNELS.rmsNorm, { x: input, weight: gain }, { epsilon }),
      gradFunc: (dy, [savedInput, savedGain]) =>
        runFused<tf.Tensor[]>(FUSED_KERNELS.rmsNormGrad, { dy, x: savedInput, weight: savedGain }, { epsilon }),
    };
  });
  return fused(x, weight);
}

function composedRmsNorm(x: tf.Tensor, weight: tf.Tensor, epsilon: number): tf.Tensor {
  const meanSquare = tf.mean(tf.square(x), -1, true);
  return tf.mul(tf.mul(x, tf.rsqrt(tf.add(meanSquare, epsilon))), weight);
}

const SMALLEST_PROBABILITY = 1e-30;

/**
 * Mean softmax cross-entropy in nats of `logits` [N, V] against class ids `targets` [N] (int32),
 * with the closed-form gradient (p − y)/N.
 */
export function softmaxCrossEntropy(logits: tf.Tensor2D, targets: tf.Tensor1D): tf.Scalar {
  if (hasFused(FUSED_KERNELS.softmaxCrossEntropy)) return fusedSoftmaxCrossEntropy(logits, targets);
  const oneHot = tf.cast(tf.oneHot(targets, logits.shape[1]), 'float32') as tf.Tensor2D;
  return composedSoftmaxCrossEntropy(logits, oneHot);
}

const fusedSoftmaxCrossEntropy = customGradient((logits: tf.Tensor2D, targets: tf.Tensor1D, save: tf.GradSaveFunc) => {
  const [loss, probabilities] = runFused<tf.Tensor[]>(FUSED_KERNELS.softmaxCrossEntropy, { logits, targets });
  save([probabilities, targets]);
  return {
    value: loss as tf.Scalar,
    gradFunc: (dy, [savedProbabilities, savedTargets]) => [
      runFused<tf.Tensor>(FUSED_KERNELS.softmaxCrossEntropyGrad, {
        probabilities: savedProbabilities,
        targets: savedTargets,
        dy,
      }),
      tf.zerosLike(savedTargets),
    ],
  };
});

const composedSoftmaxCrossEntropy = customGradient(
  (logits: tf.Tensor2D, targets: tf.Tensor2D, save: tf.GradSaveFunc) => {
    const probabilities = tf.softmax(logits);
    save([probabilities, targets]);
    const picked = tf.sum(tf.mul(probabilities, targets), -1);
    return {
      value: tf.neg(tf.mean(tf.log(tf.maximum(picked, SMALLEST_PROBABILITY)))) as tf.Scalar,
      gradFunc: (dy, saved) => {
        const [savedProbabilities, savedTargets] = saved;
        const rows = savedProbabilities.shape[0] as number;
        const gradient = tf.mul(tf.sub(savedProbabilities, savedTargets), tf.div(dy as tf.Tensor, rows));
        return [gradient, tf.zerosLike(savedTargets)];
      },
    };
  },
);

/** Negative log-likelihood in nats of each row's target; no gradient. */
export function tokenNegativeLogLikelihoods(logits: tf.Tensor2D, targets: tf.Tensor1D): tf.Tensor1D {
  return tf.tidy(() => {
    const logProbabilities = tf.logSoftmax(logits);
    const oneHot = tf.oneHot(targets, logits.shape[1]);
    return tf.neg(tf.sum(tf.mul(logProbabilities, oneHot), -1)) as tf.Tensor1D;
  });
}

const causalMasks = new Map<number, tf.Tensor2D>();

/** Additive causal mask [T, T]: 0 where a position may attend, a large negative number elsewhere. */
export function causalMask(length: number): tf.Tensor2D {
  let mask = causalMasks.get(length);
  if (!mask) {
    const values = new Float32Array(length * length);
    for (let row = 0; row < length; row++)
      for (let col = row + 1; col < length; col++) values[row * length + col] = -1e9;
    mask = tf.keep(tf.tensor2d(values, [length, length]));
    causalMasks.set(length, mask);
  }
  return mask;
}

interface RotaryTables {
  cos: tf.Tensor2D;
  sin: tf.Tensor2D;
  /** x · rotation = rotate_half(x) = [−x₂, x₁]: a product instead of slices, which are slow on wasm. */
  rotation: tf.Tensor2D;
}

const rotaryCache = new Map<string, RotaryTables>();
const ROTARY_BASE = 10_000;

function rotaryTables(length: number, headWidth: number): RotaryTables {
  const key = `${length}x${headWidth}`;
  let tables = rotaryCache.get(key);
  if (!tables) {
    const half = headWidth / 2;
    const cos = new Float32Array(length * headWidth);
    const sin = new Float32Array(length * headWidth);
    for (let position = 0; position < length; position++) {
      for (let i = 0; i < half; i++) {
        const angle = position * ROTARY_BASE ** (-i / half);
        for (const column of [i, i + half]) {
          cos[position * headWidth + column] = Math.cos(angle);
          sin[position * headWidth + column] = Math.sin(angle);
        }
      }
    }
    const rotation = new Float32Array(headWidth * headWidth);
    for (let j = 0; j < half; j++) {
      rotation[(j + half) * headWidth + j] = -1;
      rotation[j * headWidth + j + half] = 1;
    }
    tables = {
      cos: tf.keep(tf.tensor2d(cos, [length, headWidth])),
      sin: tf.keep(tf.tensor2d(sin, [length, headWidth])),
      rotation: tf.keep(tf.tensor2d(rotation, [headWidth, headWidth])),
    };
    rotaryCache.set(key, tables);
  }
  return tables;
}

/** Rotary position embedding (Su et al. 2021) of x [N, T, headWidth], in the rotate-half layout. */
export function applyRotary(x: tf.Tensor3D): tf.Tensor3D {
  const [count, length, headWidth] = x.shape;
  const { cos, sin, rotation } = rotaryTables(length, headWidth);
  const rotated = tf.reshape(tf.matMul(tf.reshape(x, [count * length, headWidth]), rotation), x.shape);
  return tf.add(tf.mul(x, cos), tf.mul(rotated, sin)) as tf.Tensor3D;
}

export interface AttentionShape {
  batch: number;
  length: number;
  heads: number;
}

/**
 * Causal multi-head self-attention of query, key and value [B·T, width] (heads side by side in
 * the columns), with rotary phases on queries and keys when asked: the mixed values [B·T, width].
 */
export function causalSelfAttention(
  query: tf.Tensor2D,
  key: tf.Tensor2D,
  value: tf.Tensor2D,
  shape: AttentionShape,
  rotary: boolean,
): tf.Tensor2D {
  return hasFused(FUSED_KERNELS.attention)
    ? fusedAttention(query, key, value, shape, rotary)
    : composedAttention(query, key, value, shape, rotary);
}

type Attention = typeof causalSelfAttention;

const composedAttention: Attention = (query, key, value, { batch, length, heads }, rotary) => {
  const width = query.shape[1];
  const headWidth = width / heads;
  const headShape = [batch * heads, length, headWidth];
  const splitHeads = (t: tf.Tensor, perm: number[], shape: number[]) =>
    tf.reshape(tf.transpose(tf.reshape(t, [batch, length, heads, headWidth]), perm), shape);
  // Scale queries rather than scores: the same result on a tensor `length` times smaller.
  const q = splitHeads(tf.mul(query, 1 / Math.sqrt(headWidth)), [0, 2, 1, 3], headShape) as tf.Tensor3D;
  // Keys go straight to [B·H, headWidth, T] unless they must be rotated first.
  const kTransposed = rotary
    ? tf.transpose(applyRotary(splitHeads(key, [0, 2, 1, 3], headShape) as tf.Tensor3D), [0, 2, 1])
    : splitHeads(key, [0, 2, 3, 1], [batch * heads, headWidth, length]);
  const v = splitHeads(value, [0, 2, 1, 3], headShape);
  const attention = tf.softmax(tf.add(tf.matMul(rotary ? applyRotary(q) : q, kTransposed), causalMask(length)));
  const mixed = tf.reshape(tf.matMul(attention, v), [batch, heads, length, headWidth]);
  return tf.reshape(tf.transpose(mixed, [0, 2, 1, 3]), [batch * length, width]);
};

/** Heads stay column blocks of [B·T, width] throughout: no transposes, and scores, mask and softmax in one pass. */
const fusedAttention: Attention = (query, key, value, { batch, length, heads }, rotary) => {
  const attrs = { batch, length, heads, scale: 1 / Math.sqrt(query.shape[1] / heads) };
  const attend = customGradient((q: tf.Tensor2D, k: tf.Tensor2D, v: tf.Tensor2D, save: tf.GradSaveFunc) => {
    const [mixed, probabilities] = runFused<tf.Tensor[]>(FUSED_KERNELS.attention, { q, k, v }, attrs);
    save([q, k, v, probabilities]);
    return {
      value: mixed as tf.Tensor2D,
      gradFunc: (dy, [savedQ, savedK, savedV, savedProbabilities]) =>
        runFused<tf.Tensor[]>(
          FUSED_KERNELS.attentionGrad,
          { q: savedQ, k: savedK, v: savedV, probabilities: savedProbabilities, dy },
          attrs,
        ),
    };
  });
  const rotate = (x: tf.Tensor2D) => (rotary ? fusedRotary(x, length, heads) : x);
  return attend(rotate(query), rotate(key), value);
};

/** Rotary phases on x [B·T, heads·headWidth]; the gradient is the transposed rotation. */
function fusedRotary(x: tf.Tensor2D, length: number, heads: number): tf.Tensor2D {
  const { cos, sin } = rotaryTables(length, x.shape[1] / heads);
  const rotate = customGradient((input: tf.Tensor2D, _save: tf.GradSaveFunc) => ({
    value: runFused<tf.Tensor2D>(FUSED_KERNELS.rotary, { x: input, cos, sin }, { length, heads, inverse: 0 }),
    gradFunc: (dy) => [runFused<tf.Tensor>(FUSED_KERNELS.rotary, { x: dy, cos, sin }, { length, heads, inverse: 1 })],
  }));
  return rotate(x);
}

export interface AdamWStep {
  learningRate: number;
  beta1: number;
  beta2: number;
  epsilon: number;
  /** Weight decay for this parameter (0 for those left undecayed). */
  decay: number;
  correction1: number;
  correction2: number;
}

/** One fused AdamW update: [param, m, v] after the step, or undefined where no fused kernel is registered. */
export function fusedAdamWStep(
  param: tf.Tensor,
  grad: tf.Tensor,
  m: tf.Tensor,
  v: tf.Tensor,
  step: AdamWStep,
): [tf.Tensor, tf.Tensor, tf.Tensor] | undefined {
  if (!hasFused(FUSED_KERNELS.adamw)) return undefined;
  const attrs = { ...step };
  return runFused<tf.Tensor[]>(FUSED_KERNELS.adamw, { param, grad, m, v }, attrs) as [tf.Tensor, tf.Tensor, tf.Tensor];
}
