/**
 * A Grove model config as a Hugging Face `config.json`, and back. Each Grove model maps onto the
 * one architecture shipped with `transformers` whose computation is exactly Grove's (RMSNorm
 * without bias, rotate-half rotary positions on queries and keys, no biases, an untied head):
 * LLaMA for SwiGLU, Arcee (LLaMA with a two-matrix MLP) for GELU, Mixtral for top-k MoE.
 * Anything else is refused with the reason and the fix.
 */
import { BYTE_VOCAB_SIZE, type ModelConfig, SPECIAL_TOKENS } from '@grove/model';

export const ARCHITECTURES = ['LlamaForCausalLM', 'ArceeForCausalLM', 'MixtralForCausalLM'] as const;
export type Architecture = (typeof ARCHITECTURES)[number];

const MODEL_TYPES: Record<Architecture, string> = {
  LlamaForCausalLM: 'llama',
  ArceeForCausalLM: 'arcee',
  MixtralForCausalLM: 'mixtral',
};

/** The non-linearity each architecture applies, by its `transformers` name: SiLU gates SwiGLU; x·σ(1.702x) is "quick_gelu". */
const HIDDEN_ACTIVATIONS: Record<Architecture, string> = {
  LlamaForCausalLM: 'silu',
  ArceeForCausalLM: 'quick_gelu',
  MixtralForCausalLM: 'silu',
};

/** The rotary base Grove uses (libs/model ops.ts); the export test would catch a drift numerically. */
const ROPE_THETA = 10_000;

/** What each library class assumes when config.json leaves a field out. */
const LIBRARY_DEFAULTS: Record<Architecture, { ropeTheta: number; keyValueHeads?: number }> = {
  LlamaForCausalLM: { ropeTheta: 10_000 },
  ArceeForCausalLM: { ropeTheta: 10_000 },
  MixtralForCausalLM: { ropeTheta: 1_000_000, keyValueHeads: 8 },
};

/** The architecture a Grove model exports as; throws one sentence saying why none fits and what to change. */
export function architectureFor(config: ModelConfig): Architecture {
  if (config.positions !== 'rotary') {
    throw new Error(
      'A learned position table has no counterpart in LLaMA, Arcee or Mixtral, which use rotary positions only; train with model.positions "rotary".',
    );
  }
  if (config.vocabSize < BYTE_VOCAB_SIZE) {
    throw new Error(
      `The byte tokenizer needs ${BYTE_VOCAB_SIZE} token ids (256 bytes and the special tokens) but the model has ${config.vocabSize}; train with model.vocabSize ${BYTE_VOCAB_SIZE}.`,
    );
  }
  if (!config.moe) return config.activation === 'swiglu' ? 'LlamaForCausalLM' : 'ArceeForCausalLM';
  if (config.activation !== 'swiglu') {
    throw new Error(
      'Mixtral’s experts are gated, w2(silu(w1·x) ⊙ w3·x), and no shipped MoE architecture has two-matrix GELU experts with Grove’s attention and routing; train with model.activation "swiglu".',
    );
  }
  if (config.moe.training === 'dense' && config.moe.threshold > 0) {
    throw new Error(
      `Threshold routing (moe.threshold ${config.moe.threshold}) runs a varying number of experts per token while Mixtral always runs num_experts_per_tok; set moe.threshold to 0 to route the top ${config.moe.topK} as Mixtral does.`,
    );
  }
  return 'MixtralForCausalLM';
}

/** The `config.json` of a Grove model; refuses, as `architectureFor`, models with no exact counterpart. */
export function toHfConfig(config: ModelConfig): Record<string, unknown> {
  const architecture = architectureFor(config);
  const common = {
    architectures: [architecture],
    model_type: MODEL_TYPES[architecture],
    vocab_size: config.vocabSize,
    hidden_size: config.width,
    intermediate_size: config.ffnWidth,
    num_hidden_layers: config.layers,
    num_attention_heads: config.heads,
    // Grove attention has a key and a value per head: no grouped-query sharing.
    num_key_value_heads: config.heads,
    head_dim: config.width / config.heads,
    hidden_act: HIDDEN_ACTIVATIONS[architecture],
    max_position_embeddings: config.contextLength,
    rms_norm_eps: config.normEpsilon,
    // transformers 4.x reads rope_theta and rope_scaling; 5.x reads rope_parameters.
    rope_theta: ROPE_THETA,
    rope_scaling: null,
    rope_parameters: { rope_type: 'default', rope_theta: ROPE_THETA },
    attention_bias: false,
    attention_dropout: 0,
    tie_word_embeddings: false,
    bos_token_id: SPECIAL_TOKENS.beginOfText,
    eos_token_id: SPECIAL_TOKENS.endOfText,
    pad_token_id: SPECIAL_TOKENS.padding,
    initializer_range: 0.02,
    use_cache: true,
    torch_dtype: 'float32',
  };
  if (!config.moe) return { ...common, mlp_bias: false };
  return {
    ...common,
    num_local_experts: config.moe.experts,
    num_experts_per_tok: config.moe.topK,
    router_aux_loss_coef: config.moe.balanceCoefficient,
    router_jitter_noise: 0,
    output_router_logits: false,
    sliding_window: null,
  };
}

/** Fields transformers 5 types as float in its strict configs, where an integer (0 rather than 0.0) is refused. */
const FLOAT_FIELDS = ['initializer_range', 'rms_norm_eps', 'router_aux_loss_coef', 'router_jitter_noise'];

/**
 * config.json's text: JSON, except that float fields holding whole numbers keep a decimal point
 * (JSON.stringify writes 0 for 0.0), since the library refuses an integer there.
 */
export function hfConfigText(hfConfig: Record<string, unknown>): string {
  const floatLine = new RegExp(`^(\\s*"(?:${FLOAT_FIELDS.join('|')})": -?\\d+)(,?)$`, 'gm');
  return `${JSON.stringify(hfConfig, null, 2).replace(floatLine, '$1.0$2')}\n`;
}

/** Fields that must keep the library's neutral setting, since Grove has nothing they could switch on. */
const NEUTRAL_FIELDS: [field: string, neutral: unknown, what: string][] = [
  ['tie_word_embeddings', false, 'an output head tied to the embeddings'],
  ['attention_bias', false, 'attention biases'],
  ['mlp_bias', false, 'feed-forward biases'],
  ['rope_scaling', null, 'scaled rotary positions'],
  ['sliding_window', null, 'sliding-window attention'],
];

/**
 * The Grove config a `config.json` describes, for the architectures `toHfConfig` writes; throws
 * one sentence naming the first field Grove cannot reproduce exactly. MoE training-only settings
 * (moe.training, moe.threshold) are not in config.json: they come out as sparse top-k training.
 */
export function modelConfigFromHf(hf: Record<string, unknown>): ModelConfig {
  const architecture = architectureOf(hf);
  const defaults = LIBRARY_DEFAULTS[architecture];
  const integer = (field: string, fallback?: number) => {
    const value = hf[field] ?? fallback;
    if (!Number.isInteger(value) || (value as number) < 1)
      throw new Error(`config.json field "${field}" must be a positive integer; got ${JSON.stringify(value)}.`);
    return value as number;
  };
  const heads = integer('num_attention_heads');
  const width = integer('hidden_size');
  const contextLength = integer('max_position_embeddings');
  const setting = (field: string, absent?: unknown) => hf[field] ?? absent;
  requireSetting(
    'hidden_act',
    setting('hidden_act'),
    HIDDEN_ACTIVATIONS[architecture],
    `${architecture} with an activation other than ${HIDDEN_ACTIVATIONS[architecture]}`,
  );
  requireSetting(
    'num_key_value_heads',
    setting('num_key_value_heads', defaults.keyValueHeads ?? heads),
    heads,
    'grouped-query attention',
  );
  requireSetting(
    'head_dim',
    setting('head_dim', width / heads),
    width / heads,
    'a head width other than hidden_size / heads',
  );
  requireSetting('rope_theta', ropeTheta(hf, defaults.ropeTheta), ROPE_THETA, `a rotary base other than ${ROPE_THETA}`);
  const ropeType = (hf.rope_parameters as { rope_type?: unknown } | undefined)?.rope_type ?? 'default';
  if (ropeType !== 'default')
    throw new Error(`config.json sets rotary type "${ropeType}"; Grove has only plain rotary positions.`);
  for (const [field, neutral, what] of NEUTRAL_FIELDS) requireSetting(field, setting(field, neutral), neutral, what);
  const normEpsilon = hf.rms_norm_eps;
  if (typeof normEpsilon !== 'number' || !(normEpsilon > 0))
    throw new Error(`config.json field "rms_norm_eps" must be a positive number; got ${JSON.stringify(normEpsilon)}.`);
  const config: ModelConfig = {
    vocabSize: integer('vocab_size'),
    contextLength,
    layers: integer('num_hidden_layers'),
    width,
    heads,
    ffnWidth: integer('intermediate_size'),
    activation: architecture === 'ArceeForCausalLM' ? 'gelu' : 'swiglu',
    positions: 'rotary',
    normEpsilon,
  };
  if (architecture !== 'MixtralForCausalLM') return config;
  const balanceCoefficient = hf.router_aux_loss_coef ?? 0.001;
  if (typeof balanceCoefficient !== 'number' || balanceCoefficient < 0)
    throw new Error('config.json field "router_aux_loss_coef" must be a non-negative number.');
  return {
    ...config,
    moe: {
      experts: integer('num_local_experts'),
      topK: integer('num_experts_per_tok'),
      training: 'sparse',
      threshold: 0,
      balanceCoefficient,
    },
  };
}

function architectureOf(hf: Record<string, unknown>): Architecture {
  const named = Array.isArray(hf.architectures) ? hf.architectures[0] : undefined;
  if (!(ARCHITECTURES as readonly unknown[]).includes(named)) {
    throw new Error(
      `config.json names architecture ${JSON.stringify(named)}; Grove imports ${ARCHITECTURES.join(', ')}.`,
    );
  }
  return named as Architecture;
}

function ropeTheta(hf: Record<string, unknown>, libraryDefault: number): unknown {
  return (hf.rope_parameters as { rope_theta?: unknown } | undefined)?.rope_theta ?? hf.rope_theta ?? libraryDefault;
}

/** Throws unless a config.json setting (or what the library assumes in its absence) is the one Grove computes. */
function requireSetting(field: string, value: unknown, expected: unknown, what: string): void {
  if (value !== expected) {
    throw new Error(
      `config.json sets "${field}" to ${JSON.stringify(value)}, which means ${what}; Grove models have no such thing, so this model cannot be imported.`,
    );
  }
}

/**
 * `generation_config.json`: sample as `grove generate` does by default (temperature 0.8 among the
 * 40 likeliest tokens, bytes only: Grove never emits a special token, so none can end the text).
 */
export function generationConfig(config: ModelConfig): Record<string, unknown> {
  return {
    bos_token_id: SPECIAL_TOKENS.beginOfText,
    eos_token_id: SPECIAL_TOKENS.endOfText,
    pad_token_id: SPECIAL_TOKENS.padding,
    do_sample: true,
    temperature: 0.8,
    top_k: 40,
    max_length: config.contextLength,
    suppress_tokens: Object.values(SPECIAL_TOKENS),
  };
}
