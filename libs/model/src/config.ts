/** Shape of a decoder-only Transformer language model. */
export interface ModelConfig {
  /** Tokens the model knows: 256 bytes plus special tokens for the byte tokenizer. */
  vocabSize: number;
  /** Longest sequence the model attends over. */
  contextLength: number;
  layers: number;
  /** Width of the residual stream. */
  width: number;
  heads: number;
  /** Hidden width of each feed-forward block. */
  ffnWidth: number;
  /** Feed-forward non-linearity: GELU (two matrices) or SwiGLU (three, gated). */
  activation: 'gelu' | 'swiglu';
  /** Positions as a learned table added to the embeddings, or as rotary phases on queries and keys (RoPE). */
  positions: 'learned' | 'rotary';
  normEpsilon: number;
  /** Present for a Mixture-of-Experts model: every layer's feed-forward block is `experts` blocks behind a router. */
  moe?: MoeConfig;
}

/**
 * A Mixture-of-Experts feed-forward layer (Switch / Mixtral / BTX): a router scores the experts
 * for each token, and only the chosen ones run on it; their outputs are summed, weighted by the
 * router's probabilities renormalised over the chosen experts.
 */
export interface MoeConfig {
  experts: number;
  /** Experts each token runs through (sparse training, and inference). */
  topK: number;
  /**
   * `sparse`: train as at inference, top-k (BTX) with the switch load-balancing loss
   * α · N · Σ_i u_i · p̄_i. `dense`: every expert trains on every token, weighted by the router,
   * with the mutual-information loss −H(p̄) + mean H(p(e|x)), and inference is sparse (DS-MoE).
   */
  training: 'sparse' | 'dense';
  /** Dense-trained models at inference: run the experts with router probability ≥ this (at least one); 0 uses topK. */
  threshold: number;
  /** Weight of the balance loss added to the training loss. */
  balanceCoefficient: number;
}

export const PRESETS = {
  /** ~0.85 M parameters: the figures in the brief are for this shape. */
  tiny: {
    vocabSize: 260,
    contextLength: 128,
    layers: 4,
    width: 128,
    heads: 4,
    ffnWidth: 512,
    activation: 'gelu',
    positions: 'rotary',
    normEpsilon: 1e-5,
  },
  /** ~10.9 M parameters. */
  small: {
    vocabSize: 260,
    contextLength: 256,
    layers: 6,
    width: 384,
    heads: 6,
    ffnWidth: 1536,
    activation: 'gelu',
    positions: 'rotary',
    normEpsilon: 1e-5,
  },
} as const satisfies Record<string, ModelConfig>;

export type PresetName = keyof typeof PRESETS;

export function presetConfig(name: string): ModelConfig {
  if (!(name in PRESETS)) {
    throw new Error(`Unknown model preset "${name}"; choose one of ${Object.keys(PRESETS).join(', ')}.`);
  }
  return { ...PRESETS[name as PresetName] };
}

/** Checks a config's internal consistency; throws one sentence naming the bad field. */
export function validateModelConfig(config: ModelConfig): ModelConfig {
  const positiveIntegers: (keyof ModelConfig)[] = [
    'vocabSize',
    'contextLength',
    'layers',
    'width',
    'heads',
    'ffnWidth',
  ];
  for (const key of positiveIntegers) {
    const value = config[key];
    if (!Number.isInteger(value) || (value as number) < 1) {
      throw new Error(`Model config field "${key}" must be a positive integer; got ${JSON.stringify(value)}.`);
    }
  }
  if (config.width % config.heads !== 0) {
    throw new Error(`Model config "width" (${config.width}) must be divisible by "heads" (${config.heads}).`);
  }
  if (!['gelu', 'swiglu'].includes(config.activation)) {
    throw new Error(`Model config "activation" must be "gelu" or "swiglu"; got ${JSON.stringify(config.activation)}.`);
  }
  if (!['learned', 'rotary'].includes(config.positions)) {
    throw new Error(`Model config "positions" must be "learned" or "rotary"; got ${JSON.stringify(config.positions)}.`);
  }
  if (config.positions === 'rotary' && (config.width / config.heads) % 2 !== 0) {
    throw new Error('Rotary positions need an even head width (width / heads).');
  }
  if (!(config.normEpsilon > 0)) throw new Error('Model config "normEpsilon" must be positive.');
  if (config.moe) validateMoeConfig(config.moe);
  return config;
}

function validateMoeConfig(moe: MoeConfig): void {
  if (!Number.isInteger(moe.experts) || moe.experts < 1)
    throw new Error(`Model config "moe.experts" must be a positive integer; got ${JSON.stringify(moe.experts)}.`);
  if (!Number.isInteger(moe.topK) || moe.topK < 1 || moe.topK > moe.experts) {
    throw new Error(
      `Model config "moe.topK" must be an integer from 1 to moe.experts (${moe.experts}); got ${moe.topK}.`,
    );
  }
  if (!['sparse', 'dense'].includes(moe.training))
    throw new Error(`Model config "moe.training" must be "sparse" or "dense"; got ${JSON.stringify(moe.training)}.`);
  if (!(moe.threshold >= 0 && moe.threshold < 1)) throw new Error('Model config "moe.threshold" must be in [0, 1).');
  if (!(moe.balanceCoefficient >= 0)) throw new Error('Model config "moe.balanceCoefficient" must not be negative.');
}

/** The feed-forward matrices of one block: `up`, `gate` for SwiGLU, `down`. */
export function feedForwardShapes(config: ModelConfig): [string, number[]][] {
  const { width, ffnWidth } = config;
  return [
    ['up', [width, ffnWidth]],
    ...(config.activation === 'swiglu' ? [['gate', [width, ffnWidth]] as [string, number[]]] : []),
    ['down', [ffnWidth, width]],
  ];
}

/** Parameter names and shapes, in a stable order; checkpoints, peers and merges key on these names. */
export function parameterShapes(config: ModelConfig): Map<string, number[]> {
  const { vocabSize, contextLength, width } = config;
  const shapes = new Map<string, number[]>();
  shapes.set('embed.tokens.weight', [vocabSize, width]);
  if (config.positions === 'learned') shapes.set('embed.positions.weight', [contextLength, width]);
  for (let layer = 0; layer < config.layers; layer++) {
    const prefix = `layers.${layer}`;
    shapes.set(`${prefix}.attention.norm.weight`, [width]);
    for (const projection of ['query', 'key', 'value', 'out']) {
      shapes.set(`${prefix}.attention.${projection}.weight`, [width, width]);
    }
    shapes.set(`${prefix}.ffn.norm.weight`, [width]);
    if (config.moe) {
      shapes.set(`${prefix}.ffn.router.weight`, [width, config.moe.experts]);
      for (let expert = 0; expert < config.moe.experts; expert++)
        for (const [matrix, shape] of feedForwardShapes(config))
          shapes.set(`${prefix}.ffn.experts.${expert}.${matrix}.weight`, shape);
    } else for (const [matrix, shape] of feedForwardShapes(config)) shapes.set(`${prefix}.ffn.${matrix}.weight`, shape);
  }
  shapes.set('norm.weight', [width]);
  shapes.set('head.weight', [width, vocabSize]);
  return shapes;
}

export function parameterCount(config: ModelConfig): number {
  let total = 0;
  for (const shape of parameterShapes(config).values()) total += shape.reduce((a, b) => a * b, 1);
  return total;
}

/** Weights of one expert's feed-forward block (one layer). */
export function expertParameterCount(config: ModelConfig): number {
  return feedForwardShapes(config).reduce((sum, [, shape]) => sum + shape[0] * shape[1], 0);
}

/**
 * Parameters a token runs through: all of a dense model's; for an MoE, all but the experts it
 * skips, given how many experts a token uses per layer on average (topK unless measured).
 */
export function activeParameterCount(config: ModelConfig, expertsPerToken = config.moe?.topK ?? 1): number {
  if (!config.moe) return parameterCount(config);
  return parameterCount(config) - config.layers * (config.moe.experts - expertsPerToken) * expertParameterCount(config);
}

/**
 * Training FLOPs per token (forward + backward ≈ 3 × forward): 6 per weight of every
 * matrix product plus the attention products, 12 · layers · context · width.
 * Embedding lookups are not products and are left out.
 */
export function trainingFlopsPerToken(config: ModelConfig): number {
  let matrixWeights = 0;
  for (const [name, shape] of parameterShapes(config)) {
    if (shape.length === 2 && !name.startsWith('embed.')) matrixWeights += shape[0] * shape[1];
  }
  // An MoE trains only the experts a token is routed to (all of them in dense training).
  const moe = config.moe;
  if (moe) {
    const skipped = moe.training === 'dense' ? 0 : moe.experts - moe.topK;
    matrixWeights -= config.layers * skipped * expertParameterCount(config);
  }
  return 6 * matrixWeights + 12 * config.layers * config.contextLength * config.width;
}
