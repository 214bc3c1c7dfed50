/**
 * Ring all-reduce over peer links: a reduce-scatter then an all-gather, R−1 steps each, so
 * every replica sends 2·(R−1)/R of the tensor whatever R is. Each all-gathered shard is
 * encoded once by the replica that finished summing it and forwarded byte for byte, and that
 * replica keeps the decoded copy too: every replica ends with bit-identical sums.
 */
import { type Codec, codecId, decode, encode } from './codec.js';
import { type Frame, FrameKind } from './frame.js';
import type { PeerNode } from './node.js';

export interface RingRound {
  node: PeerNode;
  /** Ranks in ring order; this node's rank must be among them. */
  ring: number[];
  epoch: number;
  round: number;
  attempt: number;
  codec: Codec;
  /** Longest wait for one frame from a live neighbour. */
  timeoutMs: number;
  /**
   * The largest L2 norm any partial or finished sum of a shard may have: the group's bound
   * from the norms declared in the round's meta exchange. Anything larger, or not finite,
   * did not come from honest contributions and is refused before it is added.
   */
  normBound?: number;
}

/** Contiguous, nearly equal pieces of `length` elements: [start, end) for each of `count` shards. */
export function shardBounds(length: number, count: number): [number, number][] {
  return Array.from({ length: count }, (_, i) => [
    Math.floor((i * length) / count),
    Math.floor(((i + 1) * length) / count),
  ]);
}

export class ProtocolError extends Error {
  constructor(
    readonly rank: number,
    detail: string,
  ) {
    super(`Peer ${rank} broke the protocol: ${detail}.`);
    this.name = 'ProtocolError';
  }
}

/** The element-wise sum of `values` over every replica of the ring. `values` is not modified. */
export async function ringAllReduce(context: RingRound, tensor: string, values: Float32Array): Promise<Float32Array> {
  const { node, ring } = context;
  const size = ring.length;
  const sum = Float32Array.from(values);
  if (size === 1) return sum;
  const me = ring.indexOf(node.rank);
  if (me < 0) throw new Error(`Rank ${node.rank} is not in the ring ${ring.join(',')}.`);
  const right = ring[(me + 1) % size];
  const left = ring[(me - 1 + size) % size];
  const bounds = shardBounds(values.length, size);
  const shard = (index: number) => sum.subarray(bounds[index][0], bounds[index][1]);
  const mod = (n: number) => ((n % size) + size) % size;

  // Reduce-scatter: after step s this replica holds the sum of s + 2 replicas for shard me−s−1.
  for (let step = 0; step < size - 1; step++) {
    const outgoing = mod(me - step);
    const incoming = mod(me - step - 1);
    const [, frame] = await Promise.all([
      sendShard(
        context,
        right,
        FrameKind.reduce,
        tensor,
        [outgoing, shard(outgoing).length],
        encode(shard(outgoing), context.codec),
      ),
      receiveShard(context, left, FrameKind.reduce, tensor, incoming, shard(incoming).length),
    ]);
    const target = shard(incoming);
    const addend = checked(context, left, tensor, decodeFrom(context, left, frame, target.length));
    for (let i = 0; i < target.length; i++) target[i] += addend[i];
  }

  // All-gather: the finished shard me+1 goes round the ring, encoded once.
  const owned = mod(me + 1);
  let payload = encode(shard(owned), context.codec);
  shard(owned).set(decodeFrom(context, node.rank, { payload } as Frame, shard(owned).length));
  for (let step = 0; step < size - 1; step++) {
    const outgoing = mod(me + 1 - step);
    const incoming = mod(me - step);
    const [, frame] = await Promise.all([
      sendShard(context, right, FrameKind.gather, tensor, [outgoing, shard(outgoing).length], payload),
      receiveShard(context, left, FrameKind.gather, tensor, incoming, shard(incoming).length),
    ]);
    shard(incoming).set(checked(context, left, tensor, decodeFrom(context, left, frame, shard(incoming).length)));
    payload = frame.payload;
  }
  return sum;
}

/** The element count travels in the header so a receiver can check it before decoding. */
export function sendShard(
  context: RingRound,
  to: number,
  kind: FrameKind,
  tensor: string,
  [shard, elements]: [number, number],
  payload: Uint8Array,
) {
  const { epoch, round, attempt, ring } = context;
  const codec = codecId(context.codec);
  const header = { kind, codec, epoch, round, attempt, tensor, shard, shards: ring.length, elements };
  return context.node.send(to, header, payload);
}

/** The next frame of `kind` from `from`, refused unless it fits the round. */
export async function receiveShard(
  context: RingRound,
  from: number,
  kind: FrameKind,
  tensor: string,
  shard: number,
  elements: number,
): Promise<Frame> {
  const frame = await context.node.receive(
    from,
    { epoch: context.epoch, round: context.round, attempt: context.attempt, kind, tensor, shard },
    context.timeoutMs,
  );
  const { header } = frame;
  const problem =
    header.shards !== context.ring.length
      ? `${header.shards} shards for a ring of ${context.ring.length}`
      : header.codec !== codecId(context.codec)
        ? `codec ${header.codec} instead of ${codecId(context.codec)}`
        : header.elements !== elements
          ? `${header.elements} elements in shard ${shard} of ${tensor}, expected ${elements}`
          : undefined;
  if (problem) {
    context.node.disconnect(from, problem);
    throw new ProtocolError(from, problem);
  }
  return frame;
}

/** `values` from `from`, once they are finite and within the round's norm bound. */
export function checked(context: RingRound, from: number, tensor: string, values: Float32Array): Float32Array {
  let squares = 0;
  for (let i = 0; i < values.length; i++) {
    const value = values[i];
    if (!Number.isFinite(value)) return refuse(context, from, `a non-finite value in ${tensor}`);
    squares += value * value;
  }
  const bound = context.normBound ?? Number.POSITIVE_INFINITY;
  if (Math.sqrt(squares) > bound)
    return refuse(
      context,
      from,
      `a ${tensor} shard of norm ${Math.sqrt(squares).toPrecision(3)}, over the round's bound ${bound.toPrecision(3)}`,
    );
  return values;
}

function refuse(context: RingRound, from: number, problem: string): never {
  context.node.disconnect(from, problem);
  throw new ProtocolError(from, problem);
}

export function decodeFrom(context: RingRound, from: number, frame: Frame, elements: number): Float32Array {
  try {
    return decode(frame.payload, context.codec, elements);
  } catch (error) {
    const detail = `undecodable payload (${error instanceof Error ? error.message : String(error)})`;
    if (from !== context.node.rank) context.node.disconnect(from, detail);
    throw new ProtocolError(from, detail);
  }
}
