/**
 * Parameters travel in buckets, one per transformer layer (plus the embeddings and the
 * head): EDiT's layer-wise synchronisation, so the extra memory of a round is about one
 * layer and a bucket is a natural unit to log and to check.
 */
import type { NamedArrays } from './outer.js';

export interface Bucket {
  name: string;
  tensors: { name: string; offset: number; length: number }[];
  length: number;
}

/** `layers.3.ffn.up.weight` → `layers.3`; anything else by its first part (`embed`, `norm`, `head`). */
function bucketNameOf(tensor: string): string {
  const layer = /^layers\.\d+/.exec(tensor);
  return layer ? layer[0] : tensor.split('.')[0];
}

/** Buckets in the model's parameter order, which every replica shares. */
export function bucketsOf(params: NamedArrays): Bucket[] {
  const buckets = new Map<string, Bucket>();
  for (const [name, values] of params) {
    const key = bucketNameOf(name);
    const bucket = buckets.get(key) ?? { name: key, tensors: [], length: 0 };
    bucket.tensors.push({ name, offset: bucket.length, length: values.length });
    bucket.length += values.length;
    buckets.set(key, bucket);
  }
  return [...buckets.values()];
}

export function flatten(bucket: Bucket, arrays: NamedArrays): Float32Array {
  const flat = new Float32Array(bucket.length);
  for (const { name, offset } of bucket.tensors) flat.set(arrays.get(name) as Float32Array, offset);
  return flat;
}

export function unflatten(bucket: Bucket, flat: Float32Array, into: NamedArrays): void {
  for (const { name, offset, length } of bucket.tensors) into.set(name, flat.slice(offset, offset + length));
}
