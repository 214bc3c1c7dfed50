import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { describe, it } from 'node:test';
import {
  type Codec,
  CorruptPayloadError,
  codecId,
  codecName,
  decode,
  ErrorFeedback,
  encode,
  parseCodec,
} from './codec.js';

/** Normal-ish values like a pseudo-gradient's: mostly small, a few large. */
function gradientLike(length: number, seed: number, scale = 1e-3): Float32Array {
  let state = seed >>> 0;
  const uniform = () => {
    state = (Math.imul(state, 1_664_525) + 1_013_904_223) >>> 0;
    return (state + 0.5) / 2 ** 32;
  };
  return Float32Array.from(
    { length },
    () => scale * Math.sqrt(-2 * Math.log(uniform())) * Math.cos(2 * Math.PI * uniform()),
  );
}

/** The largest error `codec` may make on any of `values`: Infinity where a value is non-finite (or overflows fp16). */
function maxAbsError(values: Float32Array, codec: Codec): number {
  if (codec.quantizer === 'fp32') return 0;
  if (codec.quantizer === 'fp16') {
    let absmax = 0;
    for (let i = 0; i < values.length; i++) absmax = Math.max(absmax, Math.abs(values[i]));
    // Half an ulp at 11 significant bits, and half the subnormal spacing 2⁻²⁴ near zero.
    return absmax < 65_520 ? absmax * 2 ** -11 + 2 ** -25 : Number.POSITIVE_INFINITY;
  }
  const levels = codec.quantizer === 'int8' ? 127 : 7;
  let bound = 0;
  for (let start = 0; start < values.length; start += codec.blockSize) {
    let absmax = 0;
    for (let i = start; i < Math.min(values.length, start + codec.blockSize); i++) {
      absmax = Math.max(absmax, Math.abs(values[i]));
    }
    if (!(absmax < Number.POSITIVE_INFINITY)) return Number.POSITIVE_INFINITY;
    // Half a quantisation step, plus float32 rounding of the scale and of the product, plus
    // the floor where the scale is subnormal or underflows to 0.
    bound = Math.max(bound, (absmax / levels) * 0.5 + absmax * 2 ** -22 + 2 ** -142);
  }
  return bound;
}

const ALL = ['fp32', 'fp16', 'int8', 'int4'].flatMap((q) => [q, `${q}+lz4`, `${q}+shuffle`, `${q}+shuffle+lz4`]);

describe('codecs', () => {
  it('parse, name and number every combination, and refuse unknown names', () => {
    for (const name of ALL) {
      const codec = parseCodec(name);
      assert.equal(codecName(codec), name);
    }
    assert.equal(codecName(parseCodec('int8+lz4+shuffle')), 'int8+shuffle+lz4');
    for (const bad of ['int2', 'fp32+zstd', 'int8+lz4+lz4', '']) assert.throws(() => parseCodec(bad), /Unknown codec/);
    assert.deepEqual(
      ALL.map((name) => codecId(parseCodec(name))).sort((a, b) => a - b),
      Array.from({ length: 16 }, (_, id) => id),
    );
    assert.throws(() => codecId({ ...parseCodec('int8'), blockSize: 64 }), /block size 64/);
  });

  it('round-trip within their error bounds (fp32 exactly) on lengths that do not fill a block', () => {
    for (const name of ALL) {
      const codec = parseCodec(name);
      for (const length of [0, 1, 127, 1_000, 4_099]) {
        const values = gradientLike(length, length + 3);
        const decoded = decode(encode(values, codec), codec, length);
        assert.equal(decoded.length, length);
        const bound = maxAbsError(values, codec);
        for (let i = 0; i < length; i++) {
          assert.ok(
            Math.abs(decoded[i] - values[i]) <= bound,
            `${name} [${i}]: ${decoded[i]} vs ${values[i]} (bound ${bound})`,
          );
        }
        if (codec.quantizer === 'fp32') assert.deepEqual(decoded, values);
        // A frame's payload starts at any offset: decoding must not depend on alignment.
        const payload = encode(values, codec);
        const shifted = new Uint8Array(payload.length + 1).subarray(1);
        shifted.set(payload);
        assert.deepEqual(decode(shifted, codec, length), decoded);
        // …and into a caller's array, such as a slice of a larger one.
        const target = new Float32Array(length + 2);
        assert.equal(decode(payload, codec, length, target.subarray(1, length + 1)).buffer, target.buffer);
        assert.deepEqual(target.subarray(1, length + 1), decoded);
        assert.ok(target[0] === 0 && target[length + 1] === 0);
      }
    }
  });

  it('state bounds that are tight, not just safe', () => {
    const values = gradientLike(8_192, 5);
    for (const [name, share] of [
      ['fp16', 0.25],
      ['int8', 0.5],
      ['int4', 0.5],
    ] as const) {
      const codec = parseCodec(name);
      const decoded = decode(encode(values, codec), codec, values.length);
      let worst = 0;
      for (let i = 0; i < values.length; i++) worst = Math.max(worst, Math.abs(decoded[i] - values[i]));
      const bound = maxAbsError(values, codec);
      assert.ok(worst <= bound && worst >= share * bound, `${name}: worst ${worst}, bound ${bound}`);
    }
  });

  it('round every float16 midpoint to even and everything off it to the nearer neighbour', () => {
    const codec = parseCodec('fp16');
    const halves = decode(
      Uint8Array.from({ length: 2 * 0x7c00 }, (_, i) => (i & 1 ? i >> 9 : (i >> 1) & 0xff)),
      codec,
      0x7c00,
    );
    const inputs: number[] = [];
    const expected: number[] = [];
    const bits = new Uint32Array(1);
    const float = new Float32Array(bits.buffer);
    for (let h = 0; h + 1 < halves.length; h++) {
      float[0] = (halves[h] + halves[h + 1]) / 2; // exact: 12 significant bits
      const even = h % 2 === 0 ? halves[h] : halves[h + 1];
      inputs.push(halves[h], float[0]);
      expected.push(halves[h], even);
      bits[0]--;
      inputs.push(float[0]);
      expected.push(halves[h]);
      bits[0] += 2;
      inputs.push(float[0]);
      expected.push(halves[h + 1]);
    }
    const decoded = decode(encode(Float32Array.from(inputs), codec), codec, inputs.length);
    for (let i = 0; i < inputs.length; i++) {
      if (decoded[i] !== expected[i]) assert.fail(`${inputs[i]} became ${decoded[i]}, not ${expected[i]}`);
      const negative = decode(encode(Float32Array.of(-inputs[i]), codec), codec, 1)[0];
      if (inputs[i] < 1e-6 && negative !== -expected[i]) assert.fail(`-${inputs[i]} became ${negative}`);
    }
  });

  it('keep fp16 rounding to nearest even, with overflow to infinity', () => {
    const codec = parseCodec('fp16');
    const values = Float32Array.from([1 + 2 ** -11, 1 + 3 * 2 ** -11, 65_504, 70_000, -(2 ** -24), 2 ** -26]);
    assert.deepEqual(
      [...decode(encode(values, codec), codec, values.length)],
      [1, 1 + 2 ** -9, 65_504, Infinity, -(2 ** -24), 0],
    );
  });

  it('shrink gradient-like data: int8 about 4×, int4 about 8×; lz4 helps sparse data and stores the rest raw', () => {
    const values = gradientLike(65_536, 9);
    const size = (name: string) => encode(values, parseCodec(name)).length;
    // One float32 scale per 128 values: 4 / (1 + 4/128) and 8 / (1 + 8/128).
    assert.ok(values.byteLength / size('int8') > 3.85);
    assert.ok(values.byteLength / size('int4') > 7.5);
    // lz4 finds repeats, not entropy: it pays off on sparse tensors (a frozen layer, a masked one).
    const sparse = values.map((v, i) => (i % 16 === 0 ? v : 0));
    const sparseSize = (name: string) => encode(sparse, parseCodec(name)).length;
    assert.ok(sparseSize('fp32+lz4') * 8 < sparse.byteLength);
    assert.ok(sparseSize('int8+lz4') * 4 < sparseSize('int8'));
    // Random bytes do not compress: the payload is the raw bytes plus a 5-byte header.
    const noise = new Float32Array(randomBytes(16_384).buffer).map((v) => (Number.isFinite(v) ? v : 0));
    assert.equal(size('fp32'), values.byteLength);
    const codec = parseCodec('fp32+lz4');
    const packed = encode(noise, codec);
    assert.equal(packed[0], 0);
    assert.equal(packed.length, noise.byteLength + 5);
    assert.deepEqual(decode(packed, codec, noise.length), noise);
  });

  it('let non-finite values through detectably instead of crashing', () => {
    const values = gradientLike(300, 1);
    values[5] = Number.NaN;
    values[200] = Number.POSITIVE_INFINITY;
    for (const name of ['int8', 'int4+lz4', 'fp16', 'fp32']) {
      const codec = parseCodec(name);
      const decoded = decode(encode(values, codec), codec, values.length);
      assert.ok(Number.isNaN(decoded[5]), name);
      assert.ok(!Number.isFinite(decoded[200]), name);
      if (codec.quantizer.startsWith('int')) {
        // Only the blocks holding them are lost; the rest decode normally.
        assert.ok(Number.isNaN(decoded[6]) && Number.isFinite(decoded[299]), name);
        assert.equal(maxAbsError(values, codec), Number.POSITIVE_INFINITY);
      }
    }
  });

  it('reject corrupt payloads: truncated, padded, bad lz4, bad flag, negative scale', () => {
    // Sparse, so that lz4 really compresses and its block can be damaged.
    const values = gradientLike(1_000, 2).map((v, i) => (i % 8 === 0 ? v : 0));
    const corrupt = (codec: Codec, change: (bytes: Uint8Array) => Uint8Array) =>
      assert.throws(() => decode(change(encode(values, codec).slice()), codec, values.length), CorruptPayloadError);
    for (const name of ALL) {
      const codec = parseCodec(name);
      corrupt(codec, (bytes) => bytes.subarray(0, bytes.length - 1));
      corrupt(codec, (bytes) => Uint8Array.from([...bytes, 0]));
    }
    const lz = parseCodec('int8+lz4');
    corrupt(lz, (bytes) => {
      bytes[0] = 7;
      return bytes;
    });
    corrupt(lz, (bytes) => {
      bytes[1] ^= 1; // declared length
      return bytes;
    });
    corrupt(lz, (bytes) => bytes.fill(0xff, 5, 40));
    // A block of 128 values has its scale at 4·block and its values after all ⌈1000/128⌉ = 8 scales.
    for (const name of ['int8', 'int4', 'int8+shuffle']) {
      const codec = parseCodec(name);
      const scale = (bits: number) => (bytes: Uint8Array) => {
        if (codec.shuffle) for (let k = 0; k < 4; k++) bytes[k * 8 + 1] = (bits >>> (8 * k)) & 0xff;
        else new DataView(bytes.buffer).setUint32(4, bits, true);
        return bytes;
      };
      corrupt(codec, scale(0xbf80_0000)); // −1
      corrupt(codec, scale(0x8000_0000)); // −0
      corrupt(codec, scale(0x7f80_0000)); // +∞
      corrupt(codec, scale(0x7fc0_0001)); // a NaN the encoder never writes
      corrupt(codec, scale(0x7fc0_0000)); // the NaN scale, over values that are not zeros
      corrupt(codec, scale(0)); // likewise a zero scale
    }
    const int8 = parseCodec('int8');
    corrupt(int8, (bytes) => bytes.fill(0x80, 32, 40)); // −128 is outside ±127
    corrupt(int8, (bytes) => bytes.fill(0, 32, 32 + 128)); // block 0 no longer reaches ±127
    const int4 = parseCodec('int4');
    corrupt(int4, (bytes) => bytes.fill(0x88, 32, 40)); // −8 is outside ±7
    const odd = parseCodec('int4');
    const packed = encode(values.subarray(0, 999), odd);
    packed[packed.length - 1] |= 0x10; // the unused last nibble
    assert.throws(() => decode(packed, odd, 999), CorruptPayloadError);
    assert.throws(() => decode(encode(values, int8), int8, 1_000, new Float32Array(999)), /into an array of 999/);
  });

  it('never hand out their scratch space: payloads and results stay as they were', () => {
    for (const name of ['fp16+shuffle+lz4', 'int8+lz4', 'int4+shuffle', 'fp32+shuffle']) {
      const codec = parseCodec(name);
      const first = gradientLike(2_000, 1);
      const payload = encode(first, codec);
      const copy = payload.slice();
      const decoded = decode(payload, codec, first.length);
      const decodedCopy = decoded.slice();
      decode(encode(gradientLike(2_000, 2), codec), codec, 2_000);
      assert.deepEqual(payload, copy, name);
      assert.deepEqual(decoded, decodedCopy, name);
    }
  });

  it('error feedback carries the residual: the sum of what arrives tracks the sum of what was meant', () => {
    const codec = parseCodec('int4');
    const feedback = new ErrorFeedback();
    const rounds = Array.from({ length: 20 }, (_, round) => gradientLike(512, round + 100));
    const meant = new Float64Array(512);
    const plain = new Float64Array(512);
    const withFeedback = new Float64Array(512);
    for (const values of rounds) {
      const sent = feedback.compensate('w', values);
      const arrived = decode(encode(sent, codec), codec, sent.length);
      feedback.remember('w', sent, arrived);
      const direct = decode(encode(values, codec), codec, values.length);
      for (let i = 0; i < 512; i++) {
        meant[i] += values[i];
        plain[i] += direct[i];
        withFeedback[i] += arrived[i];
      }
    }
    const error = (sums: Float64Array) => Math.sqrt(sums.reduce((s, v, i) => s + (v - meant[i]) ** 2, 0));
    assert.ok(error(withFeedback) < error(plain) / 2, `${error(withFeedback)} vs ${error(plain)}`);
  });

  it('error feedback drops a non-finite residual and refuses a tensor of another size', () => {
    const feedback = new ErrorFeedback();
    feedback.remember('w', Float32Array.of(Number.NaN, 1, Number.POSITIVE_INFINITY), Float32Array.of(0, 0.75, 0));
    const values = Float32Array.of(1, 1, 1);
    assert.deepEqual(feedback.compensate('w', values), Float32Array.of(1, 1.25, 1));
    assert.deepEqual(values, Float32Array.of(1, 1, 1));
    assert.throws(() => feedback.compensate('w', new Float32Array(2)), /holds 3 values, not 2/);
    assert.throws(() => feedback.remember('w', new Float32Array(2), new Float32Array(3)), /2 values sent but 3/);
  });
});
