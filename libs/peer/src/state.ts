/**
 * The group's state as a joiner copies it: one `state` frame per tensor, then a `stateEnd`
 * summary. A joiner trusts none of it: every tensor must be one the model has, of its size
 * and finite, and the summary's round and steps must be progress the rendezvous recorded
 * for the group, within the expert's budget.
 */
import { ProtocolError } from './allreduce.js';
import { codecId, parseCodec } from './codec.js';
import { FrameKind } from './frame.js';
import type { PeerAddress, PeerNode } from './node.js';
import type { GroupProgress } from './rendezvous.js';

export type NamedArrays = Map<string, Float32Array>;

/** Everything a joiner needs to take part in the next round. */
export interface GroupState {
  epoch: number;
  /** Rounds the group has completed; `params` is their result. */
  round: number;
  /** Inner steps contributed so far, summed over replicas. */
  steps: number;
  params: NamedArrays;
  momentum: NamedArrays;
  /** Small JSON state of the outer loop (penalty statistics, the round clock). */
  extra: Record<string, unknown>;
}

const STATE_POSITION = { epoch: 0, round: 0, attempt: 0, shard: 0, shards: 1 };
const FP32 = codecId(parseCodec('fp32'));

/** Lets `node` answer late joiners with whatever `current` returns at the time they ask. */
export function serveGroupState(node: PeerNode, current: () => GroupState | undefined): void {
  node.stateProvider = () => {
    const state = current();
    if (!state) return undefined;
    const tensors = [
      ...[...state.params].map(([name, values]) => [`param/${name}`, values] as const),
      ...[...state.momentum].map(([name, values]) => [`momentum/${name}`, values] as const),
    ];
    const { params: _params, momentum: _momentum, ...summary } = state;
    const end = new TextEncoder().encode(JSON.stringify(summary));
    return [
      ...tensors.map(([tensor, values]) => ({
        header: { ...STATE_POSITION, kind: FrameKind.state, codec: FP32, tensor, elements: values.length },
        payload: new Uint8Array(values.buffer, values.byteOffset, values.byteLength),
      })),
      {
        header: { ...STATE_POSITION, kind: FrameKind.stateEnd, codec: FP32, tensor: 'state', elements: 0 },
        payload: end,
      },
    ];
  };
}

/** What a joiner checks the state it copies against. */
export interface StateExpectation {
  /** The model's parameter shapes: the state holds exactly these parameters (and momentum for some). */
  shapes: Map<string, number[]>;
  /** The most inner steps the group can have taken (the budget plus the last round's overshoot). */
  maxSteps: number;
  /** The group's progress as the rendezvous records it; polled while the state arrives. */
  progress(): Promise<GroupProgress>;
}

/** Asks `peer` for the group's state, waits for all of it and checks it against `expected`. */
export async function fetchGroupState(
  node: PeerNode,
  peer: PeerAddress,
  timeoutMs: number,
  expected: StateExpectation,
): Promise<GroupState> {
  const observed = observeProgress(expected);
  try {
    const state = await receiveState(node, peer, timeoutMs, expected);
    const problem = stateProblem(state, expected) ?? (await observed.matches(state));
    if (problem) throw new ProtocolError(peer.rank, problem);
    return state;
  } catch (error) {
    // The rest of a refused state must not be read as the next one.
    if (error instanceof ProtocolError) node.disconnect(peer.rank, error.message);
    throw error;
  } finally {
    observed.stop();
  }
}

const sizeOf = (shape: number[]) => shape.reduce((a, b) => a * b, 1);

function stateProblem(state: GroupState, expected: StateExpectation): string | undefined {
  for (const [name, shape] of expected.shapes) {
    if (!state.params.has(name)) return `the state lacks parameter ${name}`;
    for (const [kind, tensors] of [
      ['parameter', state.params],
      ['momentum', state.momentum],
    ] as const) {
      const values = tensors.get(name);
      if (values && values.length !== sizeOf(shape))
        return `${kind} ${name} has ${values.length} values, the model's shape [${shape}] has ${sizeOf(shape)}`;
      if (values && !values.every(Number.isFinite)) return `${kind} ${name} is not finite`;
    }
  }
  for (const name of [...state.params.keys(), ...state.momentum.keys()])
    if (!expected.shapes.has(name)) return `the state has ${name}, which the model does not`;
  if (state.steps > expected.maxSteps)
    return `the state claims ${state.steps} steps, over the ${expected.maxSteps} possible`;
  return undefined;
}

/**
 * Reads the group's progress from before the request until a moment after the state has
 * arrived: an honest holder's round and steps are what the round's leader recorded, at
 * some point in that window (it may be a round ahead of, or behind, the record).
 */
function observeProgress(expected: StateExpectation) {
  const seen: GroupProgress[] = [];
  let polling = true;
  const reads = (async () => {
    while (polling) {
      seen.push(await expected.progress());
      await new Promise((resolve) => setTimeout(resolve, 20));
    }
  })();
  const found = (state: GroupState) =>
    seen.some((p) => p.epoch === state.epoch && p.round === state.round && p.steps === state.steps);
  return {
    stop: () => {
      polling = false;
    },
    async matches(state: GroupState): Promise<string | undefined> {
      const until = Date.now() + PROGRESS_GRACE_MS;
      while (!found(state) && Date.now() < until) await new Promise((resolve) => setTimeout(resolve, 20));
      polling = false;
      await reads.catch(() => {});
      if (found(state)) return undefined;
      const last = seen.at(-1);
      return `the state is at round ${state.round} with ${state.steps} steps (epoch ${state.epoch}); the rendezvous records round ${last?.round} with ${last?.steps} (epoch ${last?.epoch})`;
    },
  };
}

/** How long after the state arrives a joiner waits for the leader to record the round it holds. */
const PROGRESS_GRACE_MS = 2_000;

async function receiveState(
  node: PeerNode,
  peer: PeerAddress,
  timeoutMs: number,
  expected: StateExpectation,
): Promise<GroupState> {
  await node.connect(peer, timeoutMs, true);
  await node.send(
    peer.rank,
    { ...STATE_POSITION, kind: FrameKind.stateRequest, codec: FP32, tensor: 'state', elements: 0 },
    new Uint8Array(0),
  );
  const params: NamedArrays = new Map();
  const momentum: NamedArrays = new Map();
  for (;;) {
    const frame = await node.receive(peer.rank, { ...STATE_POSITION, kind: FrameKind.state }, timeoutMs);
    const { header, payload } = frame;
    if (header.kind === FrameKind.stateEnd) return { ...parseSummary(peer.rank, payload), params, momentum };
    const [section, ...rest] = header.tensor.split('/');
    const name = rest.join('/');
    const shape = expected.shapes.get(name);
    // Checked before the copy: a peer cannot make a joiner hold more than the model's size.
    if (!shape || header.elements !== sizeOf(shape))
      throw new ProtocolError(peer.rank, `state tensor ${header.tensor} is not one of the model's`);
    if (payload.byteLength !== header.elements * 4)
      throw new ProtocolError(peer.rank, `state tensor ${header.tensor} has the wrong size`);
    const values = new Float32Array(payload.slice().buffer);
    if (section === 'param') params.set(name, values);
    else if (section === 'momentum') momentum.set(name, values);
    else throw new ProtocolError(peer.rank, `unknown state tensor ${header.tensor}`);
  }
}

function parseSummary(rank: number, payload: Uint8Array): Omit<GroupState, 'params' | 'momentum'> {
  let summary: Partial<GroupState> | undefined;
  try {
    summary = JSON.parse(new TextDecoder().decode(payload));
  } catch {
    summary = undefined;
  }
  const valid =
    Number.isInteger(summary?.epoch) &&
    Number.isInteger(summary?.round) &&
    Number.isInteger(summary?.steps) &&
    typeof summary?.extra === 'object';
  if (!valid) throw new ProtocolError(rank, 'malformed state summary');
  return summary as Omit<GroupState, 'params' | 'momentum'>;
}
