/**
 * How pseudo-gradients travel: fp32, fp16 (round to nearest even), blockwise int8 (one
 * absmax scale per 128 values) or blockwise int4 (two values a byte), each optionally
 * followed by a byte-plane shuffle (byte k of every value together, which lz4 compresses
 * far better for floats) and lz4. Payload layouts are in docs/protocol.md. Decoding checks
 * every length and fails with CorruptPayloadError rather than return garbage.
 */
import lz4 from 'lz4';

export type Quantizer = 'fp32' | 'fp16' | 'int8' | 'int4';
export interface Codec {
  quantizer: Quantizer;
  shuffle: boolean;
  lz4: boolean;
  /** Values per absmax scale (int8, int4). */
  blockSize: number;
}

export class CorruptPayloadError extends Error {
  constructor(detail: string) {
    super(`Corrupt payload: ${detail}.`);
    this.name = 'CorruptPayloadError';
  }
}

const QUANTIZERS: Quantizer[] = ['fp32', 'fp16', 'int8', 'int4'];
export const BLOCK_SIZE = 128;

export function parseCodec(name: string): Codec {
  const [quantizer, ...options] = name.split('+');
  const valid =
    QUANTIZERS.includes(quantizer as Quantizer) &&
    options.every((option) => option === 'shuffle' || option === 'lz4') &&
    new Set(options).size === options.length;
  if (!valid) {
    throw new Error(
      `Unknown codec "${name}": use fp32, fp16, int8 or int4, optionally followed by +shuffle and/or +lz4 (e.g. int8+lz4).`,
    );
  }
  return {
    quantizer: quantizer as Quantizer,
    shuffle: options.includes('shuffle'),
    lz4: options.includes('lz4'),
    blockSize: BLOCK_SIZE,
  };
}

export function codecName(codec: Codec): string {
  return [codec.quantizer, ...(codec.shuffle ? ['shuffle'] : []), ...(codec.lz4 ? ['lz4'] : [])].join('+');
}

/** The wire id: quantizer in bits 0–1, shuffle in bit 2, lz4 in bit 3. */
export function codecId(codec: Codec): number {
  return QUANTIZERS.indexOf(codec.quantizer) | (codec.shuffle ? 4 : 0) | (codec.lz4 ? 8 : 0);
}

export function codecFromId(id: number): Codec {
  if (!Number.isInteger(id) || id < 0 || id > 15) throw new Error(`Unknown codec id ${id}.`);
  return { quantizer: QUANTIZERS[id & 3], shuffle: (id & 4) !== 0, lz4: (id & 8) !== 0, blockSize: BLOCK_SIZE };
}

const blocksOf = (elements: number, codec: Codec) => Math.ceil(elements / codec.blockSize);

/** Bytes of the quantized payload before lz4: [scales as float32][values]. */
function rawLength(elements: number, codec: Codec): number {
  switch (codec.quantizer) {
    case 'fp32':
      return elements * 4;
    case 'fp16':
      return elements * 2;
    case 'int8':
      return blocksOf(elements, codec) * 4 + elements;
    case 'int4':
      return blocksOf(elements, codec) * 4 + Math.ceil(elements / 2);
  }
}

export function encode(values: Float32Array, codec: Codec): Uint8Array {
  const raw = quantize(values, codec);
  if (codec.shuffle) shuffleInPlace(raw, codec, values.length, true);
  return codec.lz4 ? compress(raw) : raw;
}

export function decode(payload: Uint8Array, codec: Codec, elements: number): Float32Array {
  const expected = rawLength(elements, codec);
  const raw = codec.lz4 ? decompress(payload, expected) : payload;
  if (raw.length !== expected)
    throw new CorruptPayloadError(`${raw.length} bytes where ${codecName(codec)} needs ${expected}`);
  if (codec.quantizer === 'fp32' && !codec.shuffle) return new Float32Array(raw.slice().buffer);
  // Typed-array views need alignment and the shuffle works in place: use a private copy
  // unless decompression already made one.
  const bytes = codec.lz4 ? raw : raw.slice();
  if (codec.shuffle) shuffleInPlace(bytes, codec, elements, false);
  return dequantize(bytes, codec, elements);
}

function quantize(values: Float32Array, codec: Codec): Uint8Array {
  const n = values.length;
  const out = new Uint8Array(rawLength(n, codec));
  if (codec.quantizer === 'fp32') {
    out.set(new Uint8Array(values.buffer, values.byteOffset, values.byteLength));
    return out;
  }
  if (codec.quantizer === 'fp16') {
    const halves = new Uint16Array(out.buffer);
    const bits = new Uint32Array(values.buffer, values.byteOffset, n);
    for (let i = 0; i < n; i++) halves[i] = toHalf(bits[i]);
    return out;
  }
  const blocks = blocksOf(n, codec);
  const scales = new Float32Array(out.buffer, 0, blocks);
  const int8 = codec.quantizer === 'int8';
  const levels = int8 ? 127 : 7;
  const signed = new Int8Array(out.buffer, blocks * 4);
  for (let block = 0; block < blocks; block++) {
    const start = block * codec.blockSize;
    const end = Math.min(n, start + codec.blockSize);
    let absmax = 0;
    let finite = true;
    for (let i = start; i < end; i++) {
      const a = Math.abs(values[i]);
      if (a > absmax) absmax = a;
      else if (!(a <= absmax)) finite = false; // NaN
    }
    // A non-finite block travels as a NaN scale and decodes to NaN: the receiver sees it.
    if (!finite || absmax === Number.POSITIVE_INFINITY) {
      scales[block] = Number.NaN;
      continue;
    }
    scales[block] = absmax / levels;
    const inverse = absmax > 0 ? levels / absmax : 0;
    // Round half away from zero by truncating q ± 0.5 (|q| ≤ levels, so no overflow).
    if (int8) {
      for (let i = start; i < end; i++) {
        const q = values[i] * inverse;
        signed[i] = (q + (q < 0 ? -0.5 : 0.5)) | 0;
      }
    } else {
      for (let i = start; i < end; i += 2) {
        const q0 = values[i] * inverse;
        const q1 = i + 1 < end ? values[i + 1] * inverse : 0;
        const n0 = (q0 + (q0 < 0 ? -0.5 : 0.5)) | 0;
        const n1 = (q1 + (q1 < 0 ? -0.5 : 0.5)) | 0;
        signed[i >> 1] = (n0 & 0xf) | ((n1 & 0xf) << 4);
      }
    }
  }
  return out;
}

function dequantize(bytes: Uint8Array, codec: Codec, n: number): Float32Array {
  const out = new Float32Array(n);
  if (codec.quantizer === 'fp32') {
    new Uint8Array(out.buffer).set(bytes);
    return out;
  }
  if (codec.quantizer === 'fp16') {
    const halves = new Uint16Array(bytes.buffer, bytes.byteOffset, n);
    const table = halfTable();
    for (let i = 0; i < n; i++) out[i] = table[halves[i]];
    return out;
  }
  const blocks = blocksOf(n, codec);
  const scales = new Float32Array(bytes.buffer, bytes.byteOffset, blocks);
  const body = bytes.subarray(blocks * 4);
  const signed = new Int8Array(body.buffer, body.byteOffset, body.length);
  for (let block = 0; block < blocks; block++) {
    const scale = scales[block];
    if (scale < 0 || scale === Number.POSITIVE_INFINITY)
      throw new CorruptPayloadError(`block ${block} has scale ${scale}`);
    const start = block * codec.blockSize;
    const end = Math.min(n, start + codec.blockSize);
    if (codec.quantizer === 'int8') for (let i = start; i < end; i++) out[i] = signed[i] * scale;
    else for (let i = start; i < end; i++) out[i] = (((body[i >> 1] >> ((i & 1) * 4)) << 28) >> 28) * scale;
  }
  return out;
}

/** Groups byte k of every float (fp32, fp16) or of every scale (int8, int4) together. */
function shuffleInPlace(bytes: Uint8Array, codec: Codec, n: number, forward: boolean): void {
  const [width, count] =
    codec.quantizer === 'fp32' ? [4, n] : codec.quantizer === 'fp16' ? [2, n] : [4, blocksOf(n, codec)];
  const section = bytes.subarray(0, width * count);
  const copy = section.slice();
  for (let i = 0; i < count; i++) {
    for (let k = 0; k < width; k++) {
      if (forward) section[k * count + i] = copy[i * width + k];
      else section[i * width + k] = copy[k * count + i];
    }
  }
}

/** [flag: 0 raw, 1 lz4][raw length u32][block] — incompressible data goes raw. */
function compress(raw: Uint8Array): Uint8Array {
  const input = Buffer.from(raw.buffer, raw.byteOffset, raw.byteLength);
  const output = Buffer.allocUnsafe(5 + lz4.encodeBound(raw.length));
  const written = raw.length > 0 ? lz4.encodeBlock(input, output.subarray(5)) : 0;
  output.writeUInt32LE(raw.length, 1);
  if (written > 0 && written < raw.length) {
    output[0] = 1;
    return new Uint8Array(output.buffer, output.byteOffset, 5 + written);
  }
  output[0] = 0;
  output.set(raw, 5);
  return new Uint8Array(output.buffer, output.byteOffset, 5 + raw.length);
}

function decompress(payload: Uint8Array, expected: number): Uint8Array {
  if (payload.length < 5) throw new CorruptPayloadError('lz4 header truncated');
  const view = Buffer.from(payload.buffer, payload.byteOffset, payload.byteLength);
  const length = view.readUInt32LE(1);
  if (length !== expected) throw new CorruptPayloadError(`declares ${length} bytes where ${expected} are needed`);
  const body = view.subarray(5);
  if (payload[0] === 0) {
    if (body.length !== length) throw new CorruptPayloadError('raw section has the wrong length');
    return new Uint8Array(body);
  }
  if (payload[0] !== 1) throw new CorruptPayloadError(`unknown compression flag ${payload[0]}`);
  const out = Buffer.alloc(length);
  let decoded: number;
  try {
    decoded = lz4.decodeBlock(body, out);
  } catch {
    decoded = -1;
  }
  if (decoded !== length) throw new CorruptPayloadError('lz4 block does not decode to the declared length');
  return new Uint8Array(out.buffer, out.byteOffset, length);
}

/** float32 bits → float16 bits, rounding to nearest even; overflow goes to ±Infinity. */
function toHalf(x: number): number {
  const sign = (x >>> 16) & 0x8000;
  const exponent = (x >>> 23) & 0xff;
  let mantissa = x & 0x7fffff;
  if (exponent === 0xff) return sign | 0x7c00 | (mantissa ? 0x200 : 0);
  const e = exponent - 112; // rebias 127 → 15
  if (e >= 0x1f) return sign | 0x7c00;
  if (e <= 0) {
    if (e < -10) return sign;
    mantissa |= 0x800000;
    const shift = 14 - e;
    let half = mantissa >>> shift;
    const rest = mantissa & ((1 << shift) - 1);
    const halfway = 1 << (shift - 1);
    if (rest > halfway || (rest === halfway && half & 1)) half++;
    return sign | half;
  }
  let half = sign | (e << 10) | (mantissa >>> 13);
  const rest = mantissa & 0x1fff;
  if (rest > 0x1000 || (rest === 0x1000 && half & 1)) half++;
  return half;
}

let halves: Float32Array | undefined;
/** Every float16 value as float32: 256 KiB, built on first use. */
function halfTable(): Float32Array {
  if (halves) return halves;
  halves = new Float32Array(65_536);
  for (let h = 0; h < 65_536; h++) {
    const sign = h & 0x8000 ? -1 : 1;
    const exponent = (h >> 10) & 0x1f;
    const mantissa = h & 0x3ff;
    halves[h] =
      exponent === 0
        ? sign * mantissa * 2 ** -24
        : exponent === 0x1f
          ? mantissa
            ? Number.NaN
            : sign * Number.POSITIVE_INFINITY
          : sign * (1 + mantissa / 1024) * 2 ** (exponent - 15);
  }
  return halves;
}

/** The largest error `codec` may make on any of `values` (used to test the codecs' bounds). */
export function maxAbsError(values: Float32Array, codec: Codec): number {
  if (codec.quantizer === 'fp32') return 0;
  let bound = 0;
  if (codec.quantizer === 'fp16') {
    for (const v of values) bound = Math.max(bound, Math.abs(v) * 2 ** -11 + 2 ** -25);
    return bound;
  }
  const levels = codec.quantizer === 'int8' ? 127 : 7;
  for (let start = 0; start < values.length; start += codec.blockSize) {
    let absmax = 0;
    for (let i = start; i < Math.min(values.length, start + codec.blockSize); i++)
      absmax = Math.max(absmax, Math.abs(values[i]));
    // Half a quantisation step, plus float32 rounding of the scale and of the product.
    bound = Math.max(bound, (absmax / levels) * 0.5 + absmax * 2 ** -22);
  }
  return bound;
}

/** Error feedback: what quantisation dropped from a tensor this round is added back next round. */
export class ErrorFeedback {
  private readonly residuals = new Map<string, Float32Array>();

  compensate(key: string, values: Float32Array): Float32Array {
    const residual = this.residuals.get(key);
    const out = Float32Array.from(values);
    if (residual && residual.length === out.length) for (let i = 0; i < out.length; i++) out[i] += residual[i];
    return out;
  }

  remember(key: string, sent: Float32Array, decoded: Float32Array): void {
    const residual = new Float32Array(sent.length);
    for (let i = 0; i < sent.length; i++) residual[i] = sent[i] - decoded[i];
    this.residuals.set(key, residual);
  }

  reset(): void {
    this.residuals.clear();
  }
}
