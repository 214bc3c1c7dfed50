/**
 * One replica of a Local-SGD group (DiLoCo / EDiT / A-EDiT): take inner AdamW steps on its
 * own data, then meet the other replicas, average the pseudo-gradients Δ = θ_start − θ_local
 * and apply the outer Nesterov step — identically everywhere, so the replicas leave every
 * round with bit-identical parameters. `sync` meets every H inner steps; `async` meets on a
 * clock, each replica bringing the steps it managed, so a straggler never holds the others.
 *
 * The expert's budget is a number of inner steps shared by whichever replicas are present:
 * one replica alone finishes it (more slowly), a late one joins the next round with the
 * group's state, a dead one is dropped from the round in progress, and the rounds go on.
 */
import { performance } from 'node:perf_hooks';
import {
  type Codec,
  type Contribution,
  ErrorFeedback,
  fetchGroupState,
  type GroupState,
  type ReplicaGroup,
  serveGroupState,
} from '@grove/peer';
import type { StepReport, Trainer } from '@grove/train';
import { type Bucket, bucketsOf, flatten, unflatten } from './buckets.js';
import { type NamedArrays, OuterOptimizer, type OuterSettings } from './outer.js';
import { type PenaltySettings, type PenaltyState, PseudoGradientPenalty } from './penalty.js';

export interface LocalSgdSettings {
  mode: 'sync' | 'async';
  /** Inner steps between rounds (sync). */
  innerSteps: number;
  /** Seconds between rounds (async). */
  syncEverySeconds: number;
  outer: OuterSettings;
  codec: Codec;
  /** Carry each round's quantisation residual into the next. */
  errorFeedback: boolean;
  penalty: PenaltySettings;
  /** A test setting: this replica runs `slowdown` times slower than it could (a straggler). */
  slowdown: number;
}

export interface RoundMetrics {
  round: number;
  attempts: number;
  replicas: number;
  innerSteps: number;
  groupSteps: number;
  bytesSent: number;
  bytesReceived: number;
  /** fp32 bytes a replica's share of the all-reduce would take, over the bytes it sent. */
  compressionRatio: number;
  computeSeconds: number;
  syncSeconds: number;
  excluded: Record<number, string>;
  loss: number;
}

export interface ReplicaHooks {
  /** The group's starting point when no replica holds it: the seed, or the last group checkpoint. */
  coldStart(): Omit<GroupState, 'epoch'>;
  /** A trainer on `params` with a fresh inner optimizer; `dataSeed` picks its data order. */
  trainer(params: NamedArrays, dataSeed: number): Trainer;
  /** The round's lowest rank stores the group's state after each round. */
  saveGroupState(state: GroupState): void;
  /** The last round's lowest rank stores the finished expert. */
  saveFinal(state: GroupState): void;
  shouldStop(): boolean;
  onStep?(report: StepReport, groupSteps: number): void;
  onRound?(metrics: RoundMetrics): void;
  log(message: string): void;
}

export interface ReplicaOptions {
  group: ReplicaGroup;
  settings: LocalSgdSettings;
  /** Inner steps the expert trains, summed over its replicas. */
  budget: number;
  /** Replicas the run asked for; sets the length of each replica's learning-rate schedule. */
  plannedReplicas: number;
  /** The model's parameter shapes: a joiner refuses a state that does not match them. */
  shapes: Map<string, number[]>;
  hooks: ReplicaHooks;
  /** How long a joiner waits for a peer's state. */
  joinTimeoutMs?: number;
  /**
   * How long the replica that starts a fresh group waits for the planned replicas to show up
   * and copy its state, so that they start together rather than one round apart.
   */
  gatherMs?: number;
}

export type ReplicaOutcome = { kind: 'finished'; state?: GroupState } | { kind: 'stopped' };

const COLD_START_HOLD_MS = 120_000;

interface ExtraState {
  penalty?: PenaltyState;
}

export async function runReplica(options: ReplicaOptions): Promise<ReplicaOutcome> {
  const { group, settings, budget, hooks } = options;
  const { node, rendezvous } = group;
  let state: GroupState | undefined;
  serveGroupState(node, () => state);
  await rendezvous.register(node.url, node.identity);
  try {
    let trainer: Trainer | undefined;
    let outer = new OuterOptimizer(settings.outer);
    let penalty = new PseudoGradientPenalty(settings.penalty);
    const feedback = settings.errorFeedback ? new ErrorFeedback() : undefined;
    let buckets: Bucket[] = [];
    const stepTimes: number[] = [];

    const adopt = (next: GroupState) => {
      state = next;
      outer = new OuterOptimizer(settings.outer, next.momentum);
      penalty = new PseudoGradientPenalty(settings.penalty, (next.extra as ExtraState).penalty);
      buckets = bucketsOf(next.params);
      trainer?.dispose();
      trainer = hooks.trainer(next.params, dataSeed(node.rank, next.epoch, next.round));
    };

    let leftOutOf = 0;
    for (;;) {
      if (!state) {
        const joined = await join(options, leftOutOf);
        if (joined === 'finished') return { kind: 'finished' };
        const { coldStart, ...fetched } = joined as GroupState & { coldStart?: true };
        adopt(fetched);
        // The state is served from here on, so the others can copy it while this one waits.
        if (coldStart) await gather(options, fetched.epoch);
        continue;
      }
      if (state.steps >= budget) return { kind: 'finished', state };
      if (hooks.shouldStop()) return { kind: 'stopped' };
      const start = state;
      const active = trainer as Trainer;
      const round = start.round + 1;

      // Inner steps on this replica's data.
      const computeStarted = performance.now();
      const present = Math.max(1, (await rendezvous.liveMembers()).filter((m) => m.active).length);
      const share = Math.ceil((budget - start.steps) / present);
      const deadline = computeStarted + settings.syncEverySeconds * 1000;
      let steps = 0;
      let lossSum = 0;
      while (steps < share && !hooks.shouldStop()) {
        if (settings.mode === 'sync' ? steps >= settings.innerSteps : steps > 0 && performance.now() >= deadline) break;
        const began = performance.now();
        const report = active.trainStep(scheduleStep(start.steps, steps, present, options.plannedReplicas));
        if (settings.slowdown > 1) blockFor((performance.now() - began) * (settings.slowdown - 1));
        stepTimes.push(performance.now() - began);
        steps++;
        lossSum += report.loss;
        hooks.onStep?.(report, start.steps + steps * present);
        // Let heartbeats and state requests through between steps.
        await new Promise((resolve) => setImmediate(resolve));
      }
      if (steps === 0) return { kind: 'stopped' };
      node.tolerateSilence(10 * median(stepTimes));
      const computeSeconds = (performance.now() - computeStarted) / 1000;

      // The pseudo-gradient, bucket by bucket.
      // Δ bucket by bucket, straight from the model's variables: never a second full copy.
      const deltaOf = (bucket: Bucket) => {
        const delta = flatten(bucket, start.params);
        for (const { name, offset } of bucket.tensors) {
          const local = active.model.params.get(name)?.dataSync() as Float32Array;
          for (let i = 0; i < local.length; i++) delta[offset + i] -= local[i];
        }
        return delta;
      };
      const norm = Math.sqrt(buckets.reduce((sum, bucket) => sum + squaredNorm(deltaOf(bucket)), 0));
      const deltaBuckets = buckets.map((bucket) => ({
        name: bucket.name,
        length: bucket.length,
        values: () => deltaOf(bucket),
      }));
      const contribution: Contribution = {
        rank: node.rank,
        norm,
        steps,
        finite: Number.isFinite(norm),
        baseRound: start.round,
      };

      const syncStarted = performance.now();
      const before = node.stats();
      let judgement: ReturnType<PseudoGradientPenalty['judge']> | undefined;
      const outcome = await group.round({
        epoch: start.epoch,
        round,
        contribution,
        computeMs: computeSeconds * 1000,
        buckets: deltaBuckets,
        errorFeedback: feedback,
        scales: (contributions) => {
          judgement = new PseudoGradientPenalty(settings.penalty, penalty.state).judge(contributions, round);
          return judgement.verdict.scale;
        },
      });
      if (outcome.kind === 'excluded') {
        hooks.log(`left out of round ${round} (roster ${outcome.roster.join(',')}); fetching the group's state again`);
        leftOutOf = round;
        state = undefined;
        continue;
      }
      const judged = judgement as NonNullable<typeof judgement>;
      for (const [rank, why] of judged.verdict.excluded) hooks.log(`round ${round}: replica ${rank} left out: ${why}`);

      // The outer step, the same on every replica.
      const average: NamedArrays = new Map();
      for (const [i, bucket] of buckets.entries()) unflatten(bucket, outcome.sums[i], average);
      const anyKept = [...outcome.scales.values()].some((scale) => scale > 0);
      const params = anyKept ? outer.step(start.params, average) : start.params;
      penalty = new PseudoGradientPenalty(settings.penalty, judged.state);
      const kept = outcome.contributions.filter((c) => (outcome.scales.get(c.rank) ?? 0) > 0);
      const next: GroupState = {
        epoch: start.epoch,
        round,
        steps: start.steps + kept.reduce((sum, c) => sum + c.steps, 0),
        params,
        momentum: outer.momentum,
        extra: { penalty: penalty.state } satisfies ExtraState,
      };
      if (contribution.finite) active.model.assign(params);
      else {
        // Its inner optimizer is poisoned too: start afresh from the group's parameters.
        hooks.log(`round ${round}: this replica's pseudo-gradient was not finite; restarting its inner optimizer`);
        active.dispose();
        trainer = hooks.trainer(params, dataSeed(node.rank, start.epoch, round));
      }
      state = next;

      const leader = outcome.roster[0] === node.rank;
      const finished = next.steps >= budget;
      if (leader) {
        hooks.saveGroupState(next);
        if (finished) hooks.saveFinal(next);
        await rendezvous.recordProgress({ epoch: start.epoch, round, steps: next.steps, finished });
      }
      const after = node.stats();
      // Round traffic only: state copied to a joiner meanwhile is not part of the all-reduce.
      const bytesSent = after.bytesSent - after.stateBytesSent - (before.bytesSent - before.stateBytesSent);
      const elements = buckets.reduce((sum, b) => sum + b.length, 0);
      const replicas = outcome.roster.length;
      hooks.onRound?.({
        round,
        attempts: outcome.attempts,
        replicas,
        innerSteps: steps,
        groupSteps: next.steps,
        bytesSent,
        bytesReceived: after.bytesReceived - before.bytesReceived,
        compressionRatio: bytesSent > 0 ? (elements * 4 * 2 * (replicas - 1)) / replicas / bytesSent : 1,
        computeSeconds,
        syncSeconds: (performance.now() - syncStarted) / 1000,
        excluded: Object.fromEntries(judged.verdict.excluded),
        loss: lossSum / steps,
      });
      if (finished) return { kind: 'finished', state: next };
    }
  } finally {
    state = undefined;
    await rendezvous.leave().catch(() => {});
  }
}

/**
 * Gets the group's state: from an active peer, or by being the one replica that cold-starts
 * it. A joiner counts itself active before it asks, so the next roster includes it and the
 * group waits for its first contribution instead of closing the round without it. After
 * being left out of round `after`, it first waits for that round to finish, so the state it
 * copies is the one the next round starts from.
 */
async function join(
  options: ReplicaOptions,
  after = 0,
): Promise<GroupState | (GroupState & { coldStart: true }) | 'finished'> {
  const { group, hooks } = options;
  const { node, rendezvous } = group;
  const waitUntil = Date.now() + 60_000;
  while (after > 0 && Date.now() < waitUntil && !hooks.shouldStop()) {
    const progress = await rendezvous.progress();
    if (progress.finished || progress.round >= after) break;
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
  for (;;) {
    if ((await rendezvous.progress()).finished) return 'finished';
    if (hooks.shouldStop()) throw new Error('Stopped while joining the group.');
    const members = (await rendezvous.liveMembers()).filter((m) => m.rank !== node.rank);
    const holders = members.filter((m) => m.active && m.ready);
    for (const peer of holders) {
      try {
        // Counted in from the next roster on, though the state is still on its way.
        await rendezvous.setActive(true, peer.epoch, false);
        const state = await fetchGroupState(node, peer, options.joinTimeoutMs ?? 60_000, {
          shapes: options.shapes,
          // The last round may overshoot the budget by less than a step per replica.
          maxSteps: options.budget + options.plannedReplicas,
          progress: () => rendezvous.progress(),
        });
        // A holder a moment behind the round that left this replica out: ask again.
        if (state.round < after) {
          await new Promise((resolve) => setTimeout(resolve, 50));
          break;
        }
        await rendezvous.setActive(true, state.epoch);
        hooks.log(`joined at round ${state.round} with state from replica ${peer.rank}`);
        return state;
      } catch (error) {
        hooks.log(`could not get state from replica ${peer.rank}: ${error instanceof Error ? error.message : error}`);
      }
    }
    if (holders.length === 0) {
      await rendezvous.setActive(false, 0);
      const epoch = await rendezvous.claimColdStart(COLD_START_HOLD_MS);
      if (epoch !== undefined) {
        try {
          // Someone may have started the group between the look and the claim: join them instead.
          if ((await rendezvous.liveMembers()).some((m) => m.active && m.rank !== node.rank)) continue;
          const state = { ...hooks.coldStart(), epoch };
          // Joiners check the state they copy against this record.
          await rendezvous.recordProgress({ epoch, round: state.round, steps: state.steps, finished: false });
          await rendezvous.setActive(true, epoch);
          hooks.log(`started the group (epoch ${epoch}) at round ${state.round}`);
          return { ...state, coldStart: true };
        } finally {
          await rendezvous.releaseColdStart();
        }
      }
    }
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
}

/** Waits a moment for the other planned replicas to become active (they copy this one's state meanwhile). */
async function gather(options: ReplicaOptions, epoch: number): Promise<void> {
  const deadline = Date.now() + (options.gatherMs ?? 3_000);
  while (Date.now() < deadline && !options.hooks.shouldStop()) {
    const members = await options.group.rendezvous.liveMembers();
    if (members.filter((m) => m.active && m.epoch === epoch).length >= options.plannedReplicas) return;
    // Nobody else is even registered: there is no one to wait for.
    if (members.length <= 1 && Date.now() > deadline - (options.gatherMs ?? 3_000) / 2) return;
    await new Promise((resolve) => setTimeout(resolve, 20));
  }
}

/** Each replica's data order differs, and differs again after every rejoin. */
function dataSeed(rank: number, epoch: number, round: number): number {
  return (rank * 1_000_003 + epoch * 10_007 + round * 101 + 1) >>> 0;
}

/**
 * Where an inner step sits on the learning-rate schedule, which spans the budget one
 * replica of the planned group would take: the group's progress, plus this round's steps.
 */
function scheduleStep(groupSteps: number, roundSteps: number, present: number, planned: number): number {
  return Math.floor((groupSteps + roundSteps * present) / planned);
}

function squaredNorm(values: Float32Array): number {
  let sum = 0;
  for (let i = 0; i < values.length; i++) sum += values[i] * values[i];
  return sum;
}

function median(values: number[]): number {
  const sorted = values.slice(-20).sort((a, b) => a - b);
  return sorted[Math.floor(sorted.length / 2)] ?? 0;
}

/**
 * Burns the thread for `ms`, as slower hardware would: the straggler keeps its share of a
 * shared CPU instead of handing it to the others, which would flatter the experiment.
 */
function blockFor(ms: number): void {
  const until = performance.now() + ms;
  while (performance.now() < until) {
    // Busy on purpose.
  }
}
