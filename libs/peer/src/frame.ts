/**
 * The versioned binary frame every peer message travels in (layout in docs/protocol.md).
 * Decoding checks everything — magic, version, kind, lengths, the link's MAC, strings —
 * before a frame exists at all, so nothing unauthenticated ever reaches the round protocol.
 * The MAC is Poly1305 (ChaCha20-Poly1305 with an empty plaintext and the frame as associated
 * data), keyed per link and direction, its nonce the frame's sequence number: measured
 * several times cheaper than HMAC-SHA256 on shard-sized frames (BENCHMARKS.md).
 */
import { createCipheriv, timingSafeEqual } from 'node:crypto';

export const PROTOCOL_VERSION = 2;
const MAGIC = 0x46565247; // 'GRVF' read as a little-endian u32
const FIXED_HEADER = 48;
const TAG = 16;
/** The most bytes a frame adds to its payload (longest names): size transport limits with it. */
export const MAX_FRAME_OVERHEAD = FIXED_HEADER + 1 + 255 + 1 + 255 + 2 + 65_535 + TAG;

export const FrameKind = {
  reduce: 1,
  gather: 2,
  meta: 3,
  stateRequest: 4,
  state: 5,
  stateEnd: 6,
  abort: 7,
  heartbeat: 8,
} as const;
export type FrameKind = (typeof FrameKind)[keyof typeof FrameKind];
const KINDS = new Set<number>(Object.values(FrameKind));

export interface FrameHeader {
  kind: FrameKind;
  codec: number;
  run: string;
  expert: string;
  /** The rank that sent the frame: a link only accepts its own peer's. */
  sender: number;
  /** The group incarnation the round belongs to. */
  epoch: number;
  round: number;
  attempt: number;
  tensor: string;
  shard: number;
  shards: number;
  /** Decoded element count of the payload. */
  elements: number;
  /** Per link and direction, from 0 with no gaps: a replayed or dropped frame is refused. */
  sequence: number;
}

export interface Frame {
  header: FrameHeader;
  payload: Uint8Array;
}

export type FrameErrorReason = 'truncated' | 'magic' | 'version' | 'kind' | 'mac' | 'oversized' | 'length' | 'string';

export class FrameError extends Error {
  constructor(
    readonly reason: FrameErrorReason,
    detail: string,
  ) {
    super(`Bad frame (${reason}): ${detail}.`);
    this.name = 'FrameError';
  }
}

const encoder = new TextEncoder();
const strictDecoder = new TextDecoder('utf-8', { fatal: true });
const U32 = 0xffff_ffff;

function checkU32(name: string, value: number): void {
  if (!Number.isInteger(value) || value < 0 || value > U32)
    throw new Error(`Frame field ${name} must be a u32; got ${value}.`);
}

/** The frame's MAC under `key`: Poly1305 over `bytes`, the nonce its sequence number. */
export function frameTag(key: Uint8Array, sequence: number, bytes: Uint8Array): Buffer {
  const nonce = Buffer.alloc(12);
  nonce.writeBigUInt64LE(BigInt(sequence));
  const cipher = createCipheriv('chacha20-poly1305', key, nonce, { authTagLength: TAG });
  cipher.setAAD(bytes, { plaintextLength: 0 });
  cipher.final();
  return cipher.getAuthTag();
}

export function encodeFrame(header: FrameHeader, payload: Uint8Array, key: Uint8Array): Uint8Array {
  const run = encoder.encode(header.run);
  const expert = encoder.encode(header.expert);
  const tensor = encoder.encode(header.tensor);
  if (run.length > 255 || expert.length > 255) throw new Error('Frame run and expert names must fit in 255 bytes.');
  if (tensor.length > 65_535) throw new Error('Frame tensor names must fit in 65535 bytes.');
  if (!KINDS.has(header.kind)) throw new Error(`Unknown frame kind ${header.kind}.`);
  if (!Number.isInteger(header.codec) || header.codec < 0 || header.codec > 255)
    throw new Error('Frame codec must be a u8.');
  for (const field of ['sender', 'epoch', 'round', 'attempt', 'shard', 'shards', 'elements'] as const)
    checkU32(field, header[field]);
  if (!Number.isSafeInteger(header.sequence) || header.sequence < 0)
    throw new Error(`Frame sequence must be a non-negative integer; got ${header.sequence}.`);
  if (header.shard >= header.shards)
    throw new Error(`Frame shard ${header.shard} is not below shards ${header.shards}.`);
  checkU32('payload length', payload.length);

  const size = FIXED_HEADER + 1 + run.length + 1 + expert.length + 2 + tensor.length + payload.length + TAG;
  const bytes = new Uint8Array(size);
  const view = new DataView(bytes.buffer);
  view.setUint32(0, MAGIC, true);
  bytes[4] = PROTOCOL_VERSION;
  bytes[5] = header.kind;
  bytes[6] = header.codec;
  bytes[7] = 0;
  view.setUint32(8, header.sender, true);
  view.setUint32(12, header.epoch, true);
  view.setUint32(16, header.round, true);
  view.setUint32(20, header.attempt, true);
  view.setUint32(24, header.shard, true);
  view.setUint32(28, header.shards, true);
  view.setUint32(32, header.elements, true);
  view.setUint32(36, payload.length, true);
  view.setBigUint64(40, BigInt(header.sequence), true);
  let offset = FIXED_HEADER;
  bytes[offset++] = run.length;
  bytes.set(run, offset);
  offset += run.length;
  bytes[offset++] = expert.length;
  bytes.set(expert, offset);
  offset += expert.length;
  view.setUint16(offset, tensor.length, true);
  offset += 2;
  bytes.set(tensor, offset);
  offset += tensor.length;
  bytes.set(payload, offset);
  offset += payload.length;
  bytes.set(frameTag(key, header.sequence, bytes.subarray(0, offset)), offset);
  return bytes;
}

/** Checks everything, the MAC under `key` included, and returns the frame, its payload a view into `bytes`. */
export function decodeFrame(bytes: Uint8Array, maxPayload: number, key: Uint8Array): Frame {
  if (!(maxPayload >= 0)) throw new Error(`Frame payload limit must be a number of bytes; got ${maxPayload}.`);
  if (bytes.length < FIXED_HEADER + 4 + TAG)
    throw new FrameError('truncated', `${bytes.length} bytes is shorter than any frame`);
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  if (view.getUint32(0, true) !== MAGIC) throw new FrameError('magic', 'not a Grove peer frame');
  if (bytes[4] !== PROTOCOL_VERSION)
    throw new FrameError('version', `protocol version ${bytes[4]}, this peer speaks ${PROTOCOL_VERSION}`);
  if (!KINDS.has(bytes[5])) throw new FrameError('kind', `unknown kind ${bytes[5]}`);
  const payloadLength = view.getUint32(36, true);
  if (payloadLength > maxPayload)
    throw new FrameError('oversized', `${payloadLength}-byte payload over the ${maxPayload}-byte limit`);

  let offset = FIXED_HEADER;
  const take = (length: number, what: string) => {
    if (offset + length > bytes.length - TAG) throw new FrameError('truncated', `${what} runs past the end`);
    const slice = bytes.subarray(offset, offset + length);
    offset += length;
    return slice;
  };
  const run = take(take(1, 'run length')[0], 'run');
  const expert = take(take(1, 'expert length')[0], 'expert');
  const tensorLength = take(2, 'tensor length');
  const tensor = take(tensorLength[0] | (tensorLength[1] << 8), 'tensor name');
  const payload = take(payloadLength, 'payload');
  if (offset !== bytes.length - TAG) {
    throw new FrameError('length', `${bytes.length - TAG - offset} bytes beyond the declared payload`);
  }
  const sequence = view.getBigUint64(40, true);
  if (sequence > BigInt(Number.MAX_SAFE_INTEGER)) throw new FrameError('length', `sequence ${sequence}`);
  const expected = frameTag(key, Number(sequence), bytes.subarray(0, offset));
  if (!timingSafeEqual(expected, bytes.subarray(offset))) throw new FrameError('mac', 'not authenticated by this link');

  const header: FrameHeader = {
    kind: bytes[5] as FrameKind,
    codec: bytes[6],
    run: utf8(run, 'run'),
    expert: utf8(expert, 'expert'),
    sender: view.getUint32(8, true),
    epoch: view.getUint32(12, true),
    round: view.getUint32(16, true),
    attempt: view.getUint32(20, true),
    shard: view.getUint32(24, true),
    shards: view.getUint32(28, true),
    elements: view.getUint32(32, true),
    tensor: utf8(tensor, 'tensor'),
    sequence: Number(sequence),
  };
  if (header.shard >= header.shards) throw new FrameError('length', `shard ${header.shard} of ${header.shards}`);
  return { header, payload };
}

function utf8(bytes: Uint8Array, what: string): string {
  try {
    return strictDecoder.decode(bytes);
  } catch {
    throw new FrameError('string', `${what} is not valid UTF-8`);
  }
}
