/**
 * How pseudo-gradients travel: fp32, fp16 (round to nearest even), blockwise int8 (one
 * absmax scale per 128 values) or blockwise int4 (two values a byte), each optionally
 * followed by a byte-plane shuffle (byte k of every value together, which lz4 compresses
 * far better for floats) and lz4. Payload layouts are in docs/protocol.md.
 *
 * Decoding checks every length, every scale and every quantized value's range against what
 * the encoder can produce, and fails with CorruptPayloadError rather than return garbage.
 * A non-finite input value is never lost: fp32 and fp16 carry it as is, int8 and int4 turn
 * its whole block into NaN. Callers check finiteness after decoding.
 *
 * Encoding and decoding are synchronous, so they share two module-level scratch buffers for
 * intermediate bytes; what they return is always freshly allocated and never aliases them.
 */
import lz4 from 'lz4';

export type Quantizer = 'fp32' | 'fp16' | 'int8' | 'int4';
export interface Codec {
  quantizer: Quantizer;
  shuffle: boolean;
  lz4: boolean;
  /** Values per absmax scale (int8, int4). The wire always uses BLOCK_SIZE. */
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
/** Quantisation levels either side of zero. */
const LEVELS = { int8: 127, int4: 7 } as const;
/** The one NaN bit pattern the encoder writes as the scale of a block holding NaN or ±∞. */
const NAN_SCALE = 0x7fc0_0000;
const ROUNDER = 6_755_399_441_055_744;
/** `[flag u8][raw length u32]` in front of an lz4-wrapped payload. */
const LZ4_HEADER = 5;

if (new Uint8Array(Uint16Array.of(1).buffer)[0] !== 1) {
  throw new Error('Grove peer codecs need a little-endian machine.');
}

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

/** The wire id: quantizer in bits 0–1, shuffle in bit 2, lz4 in bit 3; the block size is always BLOCK_SIZE. */
export function codecId(codec: Codec): number {
  if (codec.blockSize !== BLOCK_SIZE) {
    throw new Error(
      `Codec ${codecName(codec)} has block size ${codec.blockSize}; the wire carries only ${BLOCK_SIZE}.`,
    );
  }
  return QUANTIZERS.indexOf(codec.quantizer) | (codec.shuffle ? 4 : 0) | (codec.lz4 ? 8 : 0);
}

function checkCodec(codec: Codec): void {
  if (!QUANTIZERS.includes(codec.quantizer)) throw new Error(`Unknown quantizer "${codec.quantizer}".`);
  if (!Number.isInteger(codec.blockSize) || codec.blockSize < 1) {
    throw new Error(`Codec block size must be a positive integer; got ${codec.blockSize}.`);
  }
}

const blocksOf = (elements: number, codec: Codec) => Math.ceil(elements / codec.blockSize);

/** The section `+shuffle` transposes: [byte width, element count]. */
function shuffledSection(elements: number, codec: Codec): [number, number] {
  if (codec.quantizer === 'fp32') return [4, elements];
  if (codec.quantizer === 'fp16') return [2, elements];
  return [4, blocksOf(elements, codec)];
}

/** Bytes of the payload before lz4: fp32/fp16 values, or [float32 scales][int8 values | int4 pairs]. */
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
  checkCodec(codec);
  const size = rawLength(values.length, codec);
  // With lz4 the quantized bytes are only an intermediate; without it they are the payload.
  const raw = codec.lz4 ? scratch(0, size) : new Uint8Array(size);
  switch (codec.quantizer) {
    case 'fp32':
      raw.set(new Uint8Array(values.buffer, values.byteOffset, values.byteLength));
      break;
    case 'fp16':
      toHalves(values, new Uint16Array(raw.buffer, raw.byteOffset, values.length));
      break;
    default:
      quantizeBlocks(values, codec, raw);
  }
  if (codec.shuffle) shuffle(raw, ...shuffledSection(values.length, codec));
  return codec.lz4 ? compress(raw) : raw;
}

/**
 * Decodes `elements` values, into `into` when given (it must hold exactly that many; after a
 * CorruptPayloadError its contents are unspecified) or else into a new array.
 */
export function decode(payload: Uint8Array, codec: Codec, elements: number, into?: Float32Array): Float32Array {
  checkCodec(codec);
  if (!Number.isInteger(elements) || elements < 0) throw new Error(`Element count must be a natural number.`);
  if (into && into.length !== elements) {
    throw new Error(`Cannot decode ${elements} values into an array of ${into.length}.`);
  }
  const out = into ?? new Float32Array(elements);
  const expected = rawLength(elements, codec);
  let raw = codec.lz4 ? decompress(payload, expected) : payload;
  if (raw.length !== expected) {
    throw new CorruptPayloadError(
      `${raw.length} bytes where ${codecName(codec)} of ${elements} values needs ${expected}`,
    );
  }
  // Typed-array views need 4-byte alignment, and a frame's payload starts wherever its names end.
  if (codec.shuffle) raw = unshuffled(raw, ...shuffledSection(elements, codec));
  else if (raw.byteOffset % 4 !== 0) raw = copyToScratch(raw);
  switch (codec.quantizer) {
    case 'fp32': {
      new Uint8Array(out.buffer, out.byteOffset, out.byteLength).set(raw);
      return out;
    }
    case 'fp16':
      return fromHalves(new Uint16Array(raw.buffer, raw.byteOffset, elements), out);
    default:
      return dequantizeBlocks(raw, codec, out);
  }
}

/** float32 → float16 bits, round to nearest even; overflow goes to ±∞, NaN stays NaN. */
function toHalves(values: Float32Array, halves: Uint16Array): void {
  const bits = new Uint32Array(values.buffer, values.byteOffset, values.length);
  for (let i = 0; i < bits.length; i++) {
    const b = bits[i];
    const magnitude = b & 0x7fff_ffff;
    let half: number;
    if (magnitude < 0x3880_0000) {
      // Below 2⁻¹⁴ (subnormal half or zero): round |x|·2²⁴ to an integer; adding 2⁵² makes
      // the float64 unit do it, ties to even. 1024 is the smallest normal half, as it should be.
      half = Math.abs(values[i]) * 16_777_216 + 4_503_599_627_370_496 - 4_503_599_627_370_496;
    } else if (magnitude < 0x4780_0000) {
      // Rebias the exponent (127 → 15) and drop 13 mantissa bits, adding just under half of
      // them plus the kept lowest bit: round to nearest, ties to even; a carry bumps the exponent.
      half = (magnitude - 0x3800_0000 + 0x0fff + ((magnitude >>> 13) & 1)) >>> 13;
    } else {
      half = magnitude > 0x7f80_0000 ? 0x7e00 : 0x7c00;
    }
    halves[i] = ((b >>> 16) & 0x8000) | half;
  }
}

function fromHalves(halves: Uint16Array, out: Float32Array): Float32Array {
  const table = halfTable();
  for (let i = 0; i < halves.length; i++) out[i] = table[halves[i]];
  return out;
}

let halfValues: Float32Array | undefined;
/** Every float16 value as float32: 256 KiB, built on first use, small enough to stay in cache. */
function halfTable(): Float32Array {
  if (halfValues) return halfValues;
  halfValues = new Float32Array(65_536);
  for (let h = 0; h < 65_536; h++) {
    const sign = h & 0x8000 ? -1 : 1;
    const exponent = (h >> 10) & 0x1f;
    const mantissa = h & 0x3ff;
    if (exponent === 0) halfValues[h] = sign * mantissa * 2 ** -24;
    else if (exponent < 0x1f) halfValues[h] = sign * (1 + mantissa / 1024) * 2 ** (exponent - 15);
    else halfValues[h] = mantissa ? Number.NaN : sign * Number.POSITIVE_INFINITY;
  }
  return halfValues;
}

/**
 * Blockwise symmetric absmax: scale = absmax / levels (float32), q = x / scale rounded to
 * nearest (ties to even). A block with NaN or ±∞ gets the NaN scale and zeros; one whose
 * scale underflows float32 gets 0 and zeros.
 */
const oneBits = new Int32Array(1);
const oneFloat = new Float32Array(oneBits.buffer);

function quantizeBlocks(values: Float32Array, codec: Codec, raw: Uint8Array): void {
  const n = values.length;
  const levels = LEVELS[codec.quantizer as 'int8' | 'int4'];
  const blocks = blocksOf(n, codec);
  const scales = new Float32Array(raw.buffer, raw.byteOffset, blocks);
  const scaleBits = new Uint32Array(raw.buffer, raw.byteOffset, blocks);
  // int8 values go straight into the payload; int4 values are packed in pairs afterwards.
  // Non-negative floats order like their bits, and NaN's bits lie above +∞'s: an integer max
  // finds the absmax and any non-finite value at once, faster than Math.max on floats.
  const bits = new Int32Array(values.buffer, values.byteOffset, n);
  const q =
    codec.quantizer === 'int8'
      ? new Int8Array(raw.buffer, raw.byteOffset + blocks * 4, n)
      : new Int8Array(scratch(1, n).buffer, 0, n);
  for (let block = 0; block < blocks; block++) {
    const start = block * codec.blockSize;
    const end = Math.min(n, start + codec.blockSize);
    let peak = 0;
    for (let i = start; i < end; i++) peak = Math.max(peak, bits[i] & 0x7fff_ffff);
    oneBits[0] = peak;
    const absmax = oneFloat[0];
    const scale = Math.fround(absmax / levels);
    if (peak >= 0x7f80_0000) {
      scaleBits[block] = NAN_SCALE;
      q.fill(0, start, end);
    } else if (scale === 0) {
      scales[block] = 0;
      q.fill(0, start, end);
    } else {
      scales[block] = scale;
      const inverse = levels / absmax;
      // Adding and taking away 1.5·2⁵² rounds to nearest, ties to even, in the float64 unit:
      // several times faster than Math.round here, and |q| ≤ levels is far inside its range.
      for (let i = start; i < end; i++) q[i] = values[i] * inverse + ROUNDER - ROUNDER;
    }
  }
  if (codec.quantizer === 'int4') {
    const pairs = raw.subarray(blocks * 4);
    const whole = n >> 1;
    for (let j = 0; j < whole; j++) pairs[j] = (q[2 * j] & 0xf) | (q[2 * j + 1] << 4);
    if (n & 1) pairs[whole] = q[n - 1] & 0xf; // the unused high nibble stays 0
  }
}

function dequantizeBlocks(raw: Uint8Array, codec: Codec, out: Float32Array): Float32Array {
  const n = out.length;
  const levels = LEVELS[codec.quantizer as 'int8' | 'int4'];
  const int4 = codec.quantizer === 'int4';
  const blocks = blocksOf(n, codec);
  const scales = new Float32Array(raw.buffer, raw.byteOffset, blocks);
  const scaleBits = new Uint32Array(raw.buffer, raw.byteOffset, blocks);
  const body = raw.subarray(blocks * 4);
  const signed = new Int8Array(body.buffer, body.byteOffset, body.length);
  for (let block = 0; block < blocks; block++) {
    const bits = scaleBits[block];
    // Anything at or above +∞'s bits is negative, infinite or NaN; only the NaN scale is legal.
    if (bits >= 0x7f80_0000 && bits !== NAN_SCALE) {
      throw new CorruptPayloadError(`block ${block} has scale ${scales[block]} (bits 0x${bits.toString(16)})`);
    }
    const scale = bits === NAN_SCALE ? Number.NaN : scales[block];
    const start = block * codec.blockSize;
    const end = Math.min(n, start + codec.blockSize);
    // The encoder maps the block's absmax to ±levels exactly, and writes zeros under a 0 or NaN scale.
    let peak = 0;
    if (int4) {
      for (let i = start; i < end; i++) {
        const v = (body[i >> 1] << (28 - 4 * (i & 1))) >> 28;
        peak = Math.max(peak, Math.abs(v));
        out[i] = v * scale;
      }
    } else {
      for (let i = start; i < end; i++) {
        const v = signed[i];
        peak = Math.max(peak, Math.abs(v));
        out[i] = v * scale;
      }
    }
    const expectedPeak = scale > 0 ? levels : 0;
    if (peak !== expectedPeak) {
      throw new CorruptPayloadError(`block ${block} peaks at ${peak} where its scale ${scale} implies ${expectedPeak}`);
    }
  }
  if (int4 && n & 1 && body[n >> 1] >> 4 !== 0) throw new CorruptPayloadError('the unused last nibble is not 0');
  return out;
}

/** Regroups `count` elements of `width` bytes at the start of `bytes` by byte significance, in place. */
function shuffle(bytes: Uint8Array, width: number, count: number): void {
  const section = bytes.subarray(0, width * count);
  const copy = scratch(1, section.length);
  copy.set(section);
  for (let k = 0; k < width; k++) {
    const plane = k * count;
    for (let i = 0, j = k; i < count; i++, j += width) section[plane + i] = copy[j];
  }
}

/** The inverse of `shuffle`, into scratch (never into the caller's payload). */
function unshuffled(bytes: Uint8Array, width: number, count: number): Uint8Array {
  const out = scratch(1, bytes.length);
  const sectionEnd = width * count;
  for (let k = 0; k < width; k++) {
    const plane = k * count;
    for (let i = 0, j = k; i < count; i++, j += width) out[j] = bytes[plane + i];
  }
  out.set(bytes.subarray(sectionEnd), sectionEnd);
  return out;
}

/** `[flag: 0 raw, 1 lz4][raw length u32][body]`: what lz4 cannot shrink goes raw. */
function compress(raw: Uint8Array): Uint8Array {
  const packed = scratch(1, lz4.encodeBound(raw.length));
  const written = raw.length > 0 ? lz4.encodeBlock(asBuffer(raw), packed) : 0;
  const compressed = written > 0 && written < raw.length;
  const body = compressed ? packed.subarray(0, written) : raw;
  const out = new Uint8Array(LZ4_HEADER + body.length);
  out[0] = compressed ? 1 : 0;
  new DataView(out.buffer).setUint32(1, raw.length, true);
  out.set(body, LZ4_HEADER);
  return out;
}

function decompress(payload: Uint8Array, expected: number): Uint8Array {
  if (payload.length < LZ4_HEADER) throw new CorruptPayloadError('lz4 header truncated');
  const length = new DataView(payload.buffer, payload.byteOffset, payload.byteLength).getUint32(1, true);
  if (length !== expected) throw new CorruptPayloadError(`declares ${length} bytes where ${expected} are needed`);
  const body = payload.subarray(LZ4_HEADER);
  if (payload[0] === 0) return body;
  if (payload[0] !== 1) throw new CorruptPayloadError(`unknown compression flag ${payload[0]}`);
  if (body.length >= length) throw new CorruptPayloadError('an lz4 block no smaller than its data');
  // Exactly `length` bytes of room: lz4's safe decoder fails rather than write past them.
  const out = scratch(0, length);
  let decoded: number;
  try {
    decoded = lz4.decodeBlock(asBuffer(body), out);
  } catch {
    decoded = -1;
  }
  if (decoded !== length) throw new CorruptPayloadError('lz4 block does not decode to the declared length');
  return out;
}

function copyToScratch(bytes: Uint8Array): Uint8Array {
  const copy = scratch(0, bytes.length);
  copy.set(bytes);
  return copy;
}

const asBuffer = (bytes: Uint8Array) => Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength);

/**
 * Intermediate bytes: two reusable, 4-byte aligned buffers (slot 0: quantized or decompressed
 * payload; slot 1: shuffle copy, int4 values, lz4 output). Above 32 MiB each call allocates
 * instead, so a huge tensor does not pin its size in memory for good.
 */
const SCRATCH_LIMIT = 32 * 1024 * 1024;
const scratchBuffers = [new ArrayBuffer(0), new ArrayBuffer(0)];
function scratch(slot: 0 | 1, bytes: number): Buffer {
  if (bytes > SCRATCH_LIMIT) return Buffer.alloc(bytes);
  if (scratchBuffers[slot].byteLength < bytes) {
    scratchBuffers[slot] = new ArrayBuffer(
      Math.min(SCRATCH_LIMIT, Math.max(bytes, 2 * scratchBuffers[slot].byteLength)),
    );
  }
  return Buffer.from(scratchBuffers[slot], 0, bytes);
}

/** Error feedback: what quantisation dropped from a tensor this round is added back next round. */
export class ErrorFeedback {
  private readonly residuals = new Map<string, Float32Array>();

  /** `values` plus the residual remembered for `key`, as a new array. */
  compensate(key: string, values: Float32Array): Float32Array {
    const out = Float32Array.from(values);
    const residual = this.residuals.get(key);
    if (!residual) return out;
    if (residual.length !== values.length) {
      throw new Error(
        `Error feedback for "${key}" holds ${residual.length} values, not ${values.length}; reset it first.`,
      );
    }
    for (let i = 0; i < out.length; i++) out[i] += residual[i];
    return out;
  }

  /** Keeps `sent − decoded`; a non-finite difference is dropped (kept as 0) so one bad round cannot poison the next. */
  remember(key: string, sent: Float32Array, decoded: Float32Array): void {
    if (sent.length !== decoded.length) {
      throw new Error(`Error feedback for "${key}": ${sent.length} values sent but ${decoded.length} decoded.`);
    }
    let residual = this.residuals.get(key);
    if (residual?.length !== sent.length) residual = new Float32Array(sent.length);
    for (let i = 0; i < sent.length; i++) {
      const difference = sent[i] - decoded[i];
      residual[i] = Number.isFinite(difference) ? difference : 0;
    }
    this.residuals.set(key, residual);
  }
}
