/**
 * Grove's byte tokenizer in the `tokenizers` library's format: a ByteLevel pre-tokenizer (each
 * byte becomes a printable stand-in character) feeding a BPE model with no merges, whose
 * vocabulary gives each stand-in its byte's id, so text encodes to its UTF-8 bytes as in Grove.
 * The special tokens keep their Grove ids. Nothing is added around the text (Grove adds nothing).
 */
import { type ModelConfig, SPECIAL_TOKENS } from '@grove/model';

export const SPECIAL_TOKEN_TEXT: Record<keyof typeof SPECIAL_TOKENS, string> = {
  beginOfText: '<|begin_of_text|>',
  endOfText: '<|end_of_text|>',
  padding: '<|padding|>',
  separator: '<|separator|>',
};

/**
 * GPT-2's byte-to-character table, which the ByteLevel pre-tokenizer and decoder apply: bytes
 * that print as Latin-1 stand for themselves; the rest (controls, space, soft hyphen) take the
 * code points from 256 upwards, in byte order.
 */
export function byteLevelAlphabet(): string[] {
  const printsAsItself = (byte: number) =>
    (byte >= 0x21 && byte <= 0x7e) || (byte >= 0xa1 && byte <= 0xac) || (byte >= 0xae && byte <= 0xff);
  let nextStandIn = 256;
  return Array.from({ length: 256 }, (_, byte) => String.fromCodePoint(printsAsItself(byte) ? byte : nextStandIn++));
}

const specialTokens = () =>
  (Object.keys(SPECIAL_TOKENS) as (keyof typeof SPECIAL_TOKENS)[]).map((key) => ({
    id: SPECIAL_TOKENS[key],
    content: SPECIAL_TOKEN_TEXT[key],
    single_word: false,
    lstrip: false,
    rstrip: false,
    normalized: false,
    special: true,
  }));

export function tokenizerJson(): Record<string, unknown> {
  const byteLevel = { type: 'ByteLevel', add_prefix_space: false, trim_offsets: false, use_regex: false };
  const vocab: Record<string, number> = Object.fromEntries(
    byteLevelAlphabet().map((character, byte) => [character, byte]),
  );
  for (const token of specialTokens()) vocab[token.content] = token.id;
  return {
    version: '1.0',
    truncation: null,
    padding: null,
    added_tokens: specialTokens(),
    normalizer: null,
    pre_tokenizer: byteLevel,
    post_processor: null,
    decoder: byteLevel,
    model: {
      type: 'BPE',
      dropout: null,
      unk_token: null,
      continuing_subword_prefix: null,
      end_of_word_suffix: null,
      fuse_unk: false,
      byte_fallback: false,
      vocab,
      merges: [],
    },
  };
}

const SPECIAL_TOKEN_ROLES = {
  bos_token: SPECIAL_TOKEN_TEXT.beginOfText,
  eos_token: SPECIAL_TOKEN_TEXT.endOfText,
  pad_token: SPECIAL_TOKEN_TEXT.padding,
  sep_token: SPECIAL_TOKEN_TEXT.separator,
};

export function specialTokensMap(): Record<string, unknown> {
  return SPECIAL_TOKEN_ROLES;
}

export function tokenizerConfig(config: ModelConfig): Record<string, unknown> {
  return {
    tokenizer_class: 'PreTrainedTokenizerFast',
    ...SPECIAL_TOKEN_ROLES,
    add_bos_token: false,
    add_eos_token: false,
    clean_up_tokenization_spaces: false,
    model_max_length: config.contextLength,
    added_tokens_decoder: Object.fromEntries(specialTokens().map(({ id, ...token }) => [String(id), token])),
  };
}

/** True when a tokenizer.json maps every byte to its own id the way Grove's tokenizer does. */
export function isByteTokenizer(json: unknown): boolean {
  const model = (json as { model?: { type?: unknown; vocab?: Record<string, unknown>; merges?: unknown[] } })?.model;
  const preTokenizer = (json as { pre_tokenizer?: { type?: unknown } })?.pre_tokenizer;
  if (model?.type !== 'BPE' || !model.vocab || model.merges?.length || preTokenizer?.type !== 'ByteLevel') return false;
  const vocab = model.vocab;
  return byteLevelAlphabet().every((character, byte) => vocab[character] === byte);
}
