/**
 * Robust aggregation for groups whose members do not trust each other. Instead of the ring,
 * whose partial sums hide who added what, every member sends shard j of its Δ to the shard's
 * owner (roster position j), which sees every member's values and aggregates them
 * coordinate-wise — a trimmed mean, or centred clipping around the previous round's result —
 * then sends its finished shard, encoded once, to everyone. Each member sends (R−1)/R of the
 * payload in each phase, 2·(R−1)/R in all, as in the ring, and all end bit-identical.
 */
import { checked, decodeFrom, type RingRound, receiveShard, sendShard, shardBounds } from './allreduce.js';
import { decode, encode } from './codec.js';
import { FrameKind } from './frame.js';

export type Aggregation = 'mean' | 'trimmed-mean' | 'centered-clip';

/** `ring` is the roster in ascending order: position j owns shard j. */
export interface RobustRound extends RingRound {
  aggregation: Exclude<Aggregation, 'mean'>;
  /** Members whose Δ counts this round (scale above 0); the others' shards are ignored. */
  counted: Set<number>;
  /** Fraction dropped at each end, per coordinate, by `trimmed-mean`. */
  trim: number;
  /** `centered-clip`: the previous round's aggregate of this tensor, if there was one. */
  previous?: Float32Array;
}

/** The robust aggregate of every member's `values` for `tensor`; the same on every member. */
export async function robustAllReduce(context: RobustRound, tensor: string, values: Float32Array) {
  const { node, ring: roster } = context;
  const size = roster.length;
  const me = roster.indexOf(node.rank);
  if (me < 0) throw new Error(`Rank ${node.rank} is not in the roster ${roster.join(',')}.`);
  const bounds = shardBounds(values.length, size);
  const slice = (array: Float32Array, index: number) => array.subarray(bounds[index][0], bounds[index][1]);
  const peers = roster.filter((rank) => rank !== node.rank);
  const length = (index: number) => bounds[index][1] - bounds[index][0];

  // Scatter: shard j of this member's Δ to its owner; this member's own shard from everyone.
  const mine = new Map<number, Float32Array>([[node.rank, Float32Array.from(slice(values, me))]]);
  await Promise.all(
    peers.map(async (rank) => {
      const owner = roster.indexOf(rank);
      const [, frame] = await Promise.all([
        sendShard(
          context,
          rank,
          FrameKind.reduce,
          tensor,
          [owner, length(owner)],
          encode(slice(values, owner), context.codec),
        ),
        receiveShard(context, rank, FrameKind.reduce, tensor, me, length(me)),
      ]);
      mine.set(rank, checked(context, rank, tensor, decodeFrom(context, rank, frame, length(me))));
    }),
  );
  const members = [...mine.keys()].filter((rank) => context.counted.has(rank)).sort((a, b) => a - b);
  const aggregate = aggregateShard(
    context,
    members.map((rank) => mine.get(rank) as Float32Array),
    context.previous && slice(context.previous, me),
    length(me),
  );

  // All-gather: this member's finished shard, encoded once, to everyone; theirs from them.
  const result = new Float32Array(values.length);
  const payload = encode(aggregate, context.codec);
  slice(result, me).set(decode(payload, context.codec, length(me)));
  await Promise.all(
    peers.map(async (rank) => {
      const owner = roster.indexOf(rank);
      const [, frame] = await Promise.all([
        sendShard(context, rank, FrameKind.gather, tensor, [me, length(me)], payload),
        receiveShard(context, rank, FrameKind.gather, tensor, owner, length(owner)),
      ]);
      slice(result, owner).set(checked(context, rank, tensor, decodeFrom(context, rank, frame, length(owner))));
    }),
  );
  return result;
}

function aggregateShard(
  context: RobustRound,
  shards: Float32Array[],
  previous: Float32Array | undefined,
  length: number,
): Float32Array {
  const out = new Float32Array(length);
  if (shards.length === 0) return out;
  if (context.aggregation === 'trimmed-mean') {
    const drop = Math.min(Math.floor(context.trim * shards.length), Math.floor((shards.length - 1) / 2));
    const column = new Float64Array(shards.length);
    for (let i = 0; i < length; i++) {
      for (let m = 0; m < shards.length; m++) column[m] = shards[m][i];
      column.sort();
      let sum = 0;
      for (let m = drop; m < shards.length - drop; m++) sum += column[m];
      out[i] = sum / (shards.length - 2 * drop);
    }
    return out;
  }
  // Centred clipping: each member's step from the previous aggregate, clipped to the median
  // step length, so one member can move the result by at most 1/n of an honest step.
  const centre = previous ?? new Float32Array(length);
  const distances = shards.map((shard) => {
    let squares = 0;
    for (let i = 0; i < length; i++) squares += (shard[i] - centre[i]) ** 2;
    return Math.sqrt(squares);
  });
  const radius = [...distances].sort((a, b) => a - b)[Math.floor((distances.length - 1) / 2)];
  for (let i = 0; i < length; i++) {
    let sum = 0;
    for (let m = 0; m < shards.length; m++) {
      const factor = distances[m] > radius && distances[m] > 0 ? radius / distances[m] : 1;
      sum += (shards[m][i] - centre[i]) * factor;
    }
    out[i] = centre[i] + sum / shards.length;
  }
  return out;
}
