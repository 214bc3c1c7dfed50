import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { byteLevelAlphabet, isByteTokenizer, tokenizerJson } from './tokenizer-files.js';

describe('byte tokenizer files', () => {
  it('give each of the 256 bytes its own printable stand-in, as the ByteLevel pre-tokenizer does', () => {
    const alphabet = byteLevelAlphabet();
    assert.equal(new Set(alphabet).size, 256);
    assert.equal(alphabet[0x41], 'A');
    assert.equal(alphabet[0x20], 'Ġ');
    assert.equal(alphabet[0x0a], 'Ċ');
    assert.equal(alphabet[0xad], 'Ń');
  });

  it('map every stand-in to its byte and the special tokens to Grove’s ids', () => {
    const json = tokenizerJson() as {
      model: { vocab: Record<string, number> };
      added_tokens: { id: number; content: string }[];
    };
    assert.equal(json.model.vocab.Ġ, 32);
    assert.deepEqual(
      json.added_tokens.map(({ id, content }) => [id, content]),
      [
        [256, '<|begin_of_text|>'],
        [257, '<|end_of_text|>'],
        [258, '<|padding|>'],
        [259, '<|separator|>'],
      ],
    );
    assert.equal(isByteTokenizer(json), true);
    const shifted = { ...json, model: { ...json.model, vocab: { ...json.model.vocab, Ġ: 300 } } };
    assert.equal(isByteTokenizer(shifted), false);
  });
});
