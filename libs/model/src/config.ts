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
  return config;
}

/** Parameter names and shapes, in a stable order; checkpoints, peers and merges key on these names. */
export function parameterShapes(config: ModelConfig): Map<string, number[]> {
  const { vocabSize, contextLength, width, ffnWidth } = config;
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
    shapes.set(`${prefix}.ffn.up.weight`, [width, ffnWidth]);
    if (config.activation === 'swiglu') shapes.set(`${prefix}.ffn.gate.weight`, [width, ffnWidth]);
    shapes.set(`${prefix}.ffn.down.weight`, [ffnWidth, width]);
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
  return 6 * matrixWeights + 12 * config.layers * config.contextLength * config.width;
}
