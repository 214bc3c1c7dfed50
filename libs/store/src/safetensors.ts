/**
 * safetensors files: an 8-byte little-endian header length, a JSON header mapping each
 * tensor name to {dtype, shape, data_offsets} plus `__metadata__` (string values only),
 * then the raw little-endian data. Grove adds a SHA-256 of the data section to the
 * metadata and refuses any file whose bytes do not match it.
 */
import { createHash } from 'node:crypto';

export interface Tensor {
  shape: number[];
  data: Float32Array;
}

export type TensorMap = Map<string, Tensor>;

interface HeaderEntry {
  dtype: string;
  shape: number[];
  data_offsets: [number, number];
}

export const DATA_HASH_KEY = 'grove.data_sha256';
const HEADER_ALIGNMENT = 8;
/** A header larger than this is not a checkpoint we wrote; refuse before allocating it. */
const MAX_HEADER_BYTES = 100 * 1024 * 1024;

export class CorruptFileError extends Error {
  constructor(source: string, reason: string) {
    super(`${source} is not a valid safetensors file (${reason}); it was not loaded.`);
    this.name = 'CorruptFileError';
  }
}

/** Serialises float32 tensors (in the map's order) with string metadata. */
export function encodeSafetensors(tensors: TensorMap, metadata: Record<string, string> = {}): Uint8Array {
  const header: Record<string, HeaderEntry | Record<string, string>> = {};
  let offset = 0;
  for (const [name, tensor] of tensors) {
    const size = tensor.shape.reduce((a, b) => a * b, 1);
    if (size !== tensor.data.length) {
      throw new Error(`Tensor "${name}" has ${tensor.data.length} values but shape [${tensor.shape}].`);
    }
    header[name] = { dtype: 'F32', shape: tensor.shape, data_offsets: [offset, offset + tensor.data.byteLength] };
    offset += tensor.data.byteLength;
  }
  const data = new Uint8Array(offset);
  for (const [name, tensor] of tensors) {
    const [start] = (header[name] as HeaderEntry).data_offsets;
    data.set(new Uint8Array(tensor.data.buffer, tensor.data.byteOffset, tensor.data.byteLength), start);
  }
  header.__metadata__ = { ...metadata, [DATA_HASH_KEY]: sha256(data) };

  let json = JSON.stringify(header);
  // Pad with spaces so the data section starts 8-byte aligned, as the reference writer does.
  json += ' '.repeat((HEADER_ALIGNMENT - ((8 + Buffer.byteLength(json)) % HEADER_ALIGNMENT)) % HEADER_ALIGNMENT);
  const headerBytes = Buffer.from(json, 'utf8');
  const file = new Uint8Array(8 + headerBytes.length + data.length);
  new DataView(file.buffer).setBigUint64(0, BigInt(headerBytes.length), true);
  file.set(headerBytes, 8);
  file.set(data, 8 + headerBytes.length);
  return file;
}

export interface DecodedSafetensors {
  tensors: TensorMap;
  metadata: Record<string, string>;
}

/** Parses and verifies a safetensors file; throws CorruptFileError naming `source` on any mismatch. */
export function decodeSafetensors(file: Uint8Array, source = 'file'): DecodedSafetensors {
  const fail = (reason: string): never => {
    throw new CorruptFileError(source, reason);
  };
  if (file.length < 8) fail(`only ${file.length} bytes long`);
  const headerLength = Number(new DataView(file.buffer, file.byteOffset, 8).getBigUint64(0, true));
  if (headerLength > MAX_HEADER_BYTES || 8 + headerLength > file.length) fail('header runs past the end of the file');
  let header: Record<string, unknown>;
  try {
    header = JSON.parse(Buffer.from(file.buffer, file.byteOffset + 8, headerLength).toString('utf8'));
  } catch {
    return fail('header is not JSON');
  }
  if (typeof header !== 'object' || header === null || Array.isArray(header)) fail('header is not a JSON object');
  const data = file.subarray(8 + headerLength);
  const metadata = (header.__metadata__ ?? {}) as Record<string, string>;
  const expectedHash = metadata[DATA_HASH_KEY];
  if (expectedHash !== undefined && expectedHash !== sha256(data))
    fail('content hash does not match: truncated or modified');

  const tensors: TensorMap = new Map();
  const entries = Object.entries(header).filter(([name]) => name !== '__metadata__');
  for (const [name, value] of entries) {
    const entry = value as Partial<HeaderEntry>;
    if (entry.dtype !== 'F32') fail(`tensor "${name}" has dtype ${entry.dtype}; only F32 is supported`);
    const shape = entry.shape;
    const offsets = entry.data_offsets;
    if (!Array.isArray(shape) || !shape.every((d) => Number.isInteger(d) && d >= 0))
      fail(`tensor "${name}" has a bad shape`);
    if (!Array.isArray(offsets) || offsets.length !== 2) fail(`tensor "${name}" has bad data_offsets`);
    const [start, end] = offsets as [number, number];
    const size = (shape as number[]).reduce((a, b) => a * b, 1);
    if (!(start >= 0 && end <= data.length && end - start === size * 4)) fail(`tensor "${name}" lies outside the data`);
    // Copy: the file's buffer may not be 4-byte aligned at this offset.
    const values = new Float32Array(size);
    new Uint8Array(values.buffer).set(data.subarray(start, end));
    tensors.set(name, { shape: shape as number[], data: values });
  }
  return { tensors, metadata: Object.fromEntries(Object.entries(metadata).filter(([key]) => key !== DATA_HASH_KEY)) };
}

export function sha256(bytes: Uint8Array): string {
  return createHash('sha256').update(bytes).digest('hex');
}
