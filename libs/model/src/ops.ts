/**
 * Building blocks with hand-written gradients where autodiff would take a slow path
 * on the wasm backend (tanh and exp are scalar loops there; sigmoid and softmax are
 * vectorised kernels).
 */
import * as tf from '@tensorflow/tfjs-core';

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
export const gelu = customGradient((input: tf.Tensor, save: tf.GradSaveFunc) => {
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
  const meanSquare = tf.mean(tf.square(x), -1, true);
  return tf.mul(tf.mul(x, tf.rsqrt(tf.add(meanSquare, epsilon))), weight);
}

const SMALLEST_PROBABILITY = 1e-30;

/**
 * Mean softmax cross-entropy in nats of `logits` [N, V] against one-hot `targets` [N, V].
 * Uses the softmax kernel and the closed-form gradient (p − y)/N.
 */
export const softmaxCrossEntropy = customGradient(
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
