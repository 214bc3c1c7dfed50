/**
 * Byte-level tokenizer: every UTF-8 byte is a token, so any text is representable and
 * bits per byte compare fairly across tokenizers. Ids 256.. are special tokens.
 */
export const SPECIAL_TOKENS = { beginOfText: 256, endOfText: 257, padding: 258, separator: 259 } as const;
export const BYTE_VOCAB_SIZE = 260;

const encoder = new TextEncoder();
const decoder = new TextDecoder('utf-8', { fatal: false });

export const byteTokenizer = {
  vocabSize: BYTE_VOCAB_SIZE,
  encode(text: string): Uint8Array {
    return encoder.encode(text);
  },
  /** Decodes byte tokens; special tokens are dropped and invalid UTF-8 becomes U+FFFD. */
  decode(tokens: ArrayLike<number>): string {
    const bytes: number[] = [];
    for (let i = 0; i < tokens.length; i++) if (tokens[i] < 256) bytes.push(tokens[i]);
    return decoder.decode(Uint8Array.from(bytes));
  },
};
