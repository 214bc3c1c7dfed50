/**
 * One expert's replicas as a group: who takes part in each round (the roster, fixed through
 * the rendezvous), the exchange of what each replica brings (its pseudo-gradient's norm and
 * inner steps), and the bucket-by-bucket all-reduce. A member that dies or misbehaves
 * mid-round ends that attempt; the survivors start the next attempt without it, so a round
 * never waits on a dead peer.
 */
import { ProtocolError, ringAllReduce } from './allreduce.js';
import { type Codec, codecId, decode, type ErrorFeedback, encode } from './codec.js';
import { FrameKind } from './frame.js';
import { PeerGoneError, RoundAbortedError } from './link.js';
import type { PeerNode } from './node.js';
import { type RateLimitedLog, rateLimitedLog } from './rate-limited-log.js';
import type { Member, Rendezvous } from './rendezvous.js';
import { type Aggregation, robustAllReduce } from './robust.js';

/** What each replica declares about its pseudo-gradient before the exchange. */
export interface Contribution {
  rank: number;
  norm: number;
  steps: number;
  finite: boolean;
  /** The round whose result this replica started from. */
  baseRound: number;
}

export interface GroupSettings {
  codec: Codec;
  /**
   * Longest wait for a member's contribution (a sync-mode straggler may still be computing).
   * The wait is ten times this replica's own compute time for the round, within
   * [`contributionFloorMs`, this]; it ends sooner when the member's heartbeats stop.
   */
  contributionTimeoutMs: number;
  /** Shortest wait for a contribution, however fast this replica was (default 30 s). */
  contributionFloorMs?: number;
  /** Longest wait for one all-reduce frame from a live neighbour. */
  frameTimeoutMs: number;
  maxAttempts: number;
  /**
   * `mean` (the default): the weighted sum over the ring. `trimmed-mean` and `centered-clip`
   * aggregate every member's Δ coordinate-wise at each shard's owner instead (robust.ts),
   * for groups that do not trust each other; the penalty's weights then only say who counts.
   */
  aggregation?: Aggregation;
  /** Fraction `trimmed-mean` drops at each end (default 0.25). */
  trim?: number;
  /** Longest wait for a link to a roster member; a member that cannot be reached is left out. */
  connectTimeoutMs?: number;
  log: (message: string) => void;
}

export interface RoundRequest {
  epoch: number;
  round: number;
  contribution: Contribution;
  /**
   * The buckets of this replica's pseudo-gradient, in the group's fixed order. Each is
   * computed when its turn comes, so a round holds one bucket of Δ at a time.
   */
  buckets: { name: string; length: number; values(): Float32Array }[];
  /** How long this replica computed before the round: sizes the wait for the others. */
  computeMs?: number;
  /** Carries this replica's quantisation residual from round to round, when set. */
  errorFeedback?: ErrorFeedback;
  /** How much each member's Δ counts, from everyone's contributions; the same on every replica. */
  scales(contributions: Contribution[]): Map<number, number>;
}

export type RoundOutcome =
  | {
      kind: 'reduced';
      roster: number[];
      attempts: number;
      contributions: Contribution[];
      scales: Map<number, number>;
      /** Σ_i scale_i · Δ_i per bucket, bit-identical on every member. */
      sums: Float32Array[];
    }
  | { kind: 'excluded'; roster: number[] };

export class ReplicaGroup {
  private readonly warn: RateLimitedLog;
  /** The last round's aggregate per bucket, the centre `centered-clip` clips around. */
  private readonly previous = new Map<string, Float32Array>();

  constructor(
    readonly node: PeerNode,
    readonly rendezvous: Rendezvous,
    readonly settings: GroupSettings,
  ) {
    this.warn = rateLimitedLog(settings.log);
  }

  async round(request: RoundRequest): Promise<RoundOutcome> {
    const elements = request.buckets.reduce((sum, bucket) => sum + bucket.length, 0);
    this.node.enterRound({ epoch: request.epoch, round: request.round }, 4 * elements);
    const failed = new Set<number>();
    /**
     * Member incarnations that failed an attempt of this round: a dead replica's record
     * outlives it until its heartbeat expires and must not be proposed again meanwhile.
     * Forgotten when the round ends, so a member that dropped out once is welcome back.
     */
    const failedSessions = new Set<string>();
    let previous: number[] | undefined;
    let members: Member[] = [];
    for (let attempt = 0; attempt < this.settings.maxAttempts; attempt++) {
      for (const m of members) if (failed.has(m.rank) && m.rank !== this.node.rank) failedSessions.add(m.session);
      members = await this.rendezvous.liveMembers();
      const eligible = new Set(
        members
          .filter((m) => m.active && m.epoch === request.epoch && !failedSessions.has(m.session))
          .map((m) => m.rank),
      );
      eligible.add(this.node.rank);
      const proposal = (previous ?? [...eligible]).filter((rank) => eligible.has(rank) && !failed.has(rank));
      const roster = (
        await this.rendezvous.roster(
          request.epoch,
          request.round,
          attempt,
          proposal.sort((a, b) => a - b),
        )
      )
        .slice()
        .sort((a, b) => a - b);
      if (!roster.includes(this.node.rank)) {
        this.node.leaveRound();
        return { kind: 'excluded', roster };
      }
      try {
        return { ...(await this.attempt(request, attempt, roster, members)), attempts: attempt + 1 };
      } catch (error) {
        if (!(error instanceof PeerGoneError || error instanceof RoundAbortedError || error instanceof ProtocolError)) {
          throw error;
        }
        if (error instanceof RoundAbortedError) for (const rank of error.failed) failed.add(rank);
        else failed.add(error.rank);
        failed.delete(this.node.rank);
        this.settings.log(`round ${request.round} attempt ${attempt} failed: ${error.message}`);
        await this.abort(request, attempt, roster, [...failed]);
        previous = roster;
      }
    }
    throw new Error(`Round ${request.round} failed ${this.settings.maxAttempts} times; giving up on this group.`);
  }

  private async attempt(request: RoundRequest, attempt: number, roster: number[], members: Member[]) {
    const peers = roster.filter((rank) => rank !== this.node.rank);
    const address = new Map(members.map((m) => [m.rank, m.url]));
    const timeout = this.settings.connectTimeoutMs;
    await Promise.all(peers.map((rank) => this.node.connect({ rank, url: address.get(rank) }, timeout)));
    const watch = this.watchMembers(request.epoch, peers);
    const contributions = await this.exchangeContributions(request, attempt, peers).finally(watch);
    const scales = request.scales(contributions);
    const own = scales.get(this.node.rank) ?? 0;
    const context = {
      node: this.node,
      ring: roster,
      epoch: request.epoch,
      round: request.round,
      attempt,
      codec: this.settings.codec,
      timeoutMs: this.settings.frameTimeoutMs,
      normBound: normBound(contributions, scales),
    };
    const sums: Float32Array[] = [];
    const aggregation = this.settings.aggregation ?? 'mean';
    if (aggregation !== 'mean') {
      const counted = new Set([...scales].filter(([, scale]) => scale > 0).map(([rank]) => rank));
      for (const bucket of request.buckets) {
        // A member left out sends zeros, never its (perhaps non-finite) Δ.
        const values = own !== 0 ? bucket.values() : new Float32Array(bucket.length);
        // Outliers are the aggregation's to handle: no norm bound refuses a member's own Δ.
        const robust = { ...context, normBound: undefined, aggregation, counted, trim: this.settings.trim ?? 0.25 };
        const result = await robustAllReduce(
          { ...robust, previous: this.previous.get(bucket.name) },
          bucket.name,
          values,
        );
        sums.push(result);
      }
      for (const [i, bucket] of request.buckets.entries()) this.previous.set(bucket.name, sums[i]);
      return { kind: 'reduced' as const, roster, contributions, scales, sums };
    }
    for (const bucket of request.buckets) {
      // An excluded Δ contributes exact zeros (never 0 · NaN).
      let scaled: Float32Array = new Float32Array(bucket.length);
      if (own !== 0) {
        const values = bucket.values();
        for (let i = 0; i < scaled.length; i++) scaled[i] = own * values[i];
      }
      const feedback = request.errorFeedback;
      if (feedback && own !== 0) {
        scaled = feedback.compensate(bucket.name, scaled);
        feedback.remember(
          bucket.name,
          scaled,
          decode(encode(scaled, this.settings.codec), this.settings.codec, scaled.length),
        );
      }
      sums.push(await ringAllReduce(context, bucket.name, scaled));
    }
    return { kind: 'reduced' as const, roster, contributions, scales, sums };
  }

  /**
   * While contributions are awaited (a sync-mode straggler can take long), a member that
   * leaves the rendezvous or stops being active ends the wait for it. Returns the stopper.
   */
  private watchMembers(epoch: number, peers: number[]): () => void {
    const timer = setInterval(() => {
      this.rendezvous
        .liveMembers()
        .then((members) => {
          const present = new Set(members.filter((m) => m.active && m.epoch === epoch).map((m) => m.rank));
          for (const rank of peers) {
            if (!present.has(rank)) this.node.interrupt(rank, new PeerGoneError(rank, 'it left the group'));
          }
        })
        .catch((error) => this.warn('member watch', `could not read the group's members: ${error.message}`));
    }, 2_000);
    return () => clearInterval(timer);
  }

  /** Every member sends its contribution to every other; all end with the same list. */
  private async exchangeContributions(request: RoundRequest, attempt: number, peers: number[]) {
    const position = { epoch: request.epoch, round: request.round, attempt };
    const payload = new TextEncoder().encode(JSON.stringify(request.contribution));
    const { contributionTimeoutMs, contributionFloorMs = 30_000 } = this.settings;
    const wait = Math.min(contributionTimeoutMs, Math.max(contributionFloorMs, 10 * (request.computeMs ?? Infinity)));
    const header = {
      ...position,
      kind: FrameKind.meta,
      codec: codecId(this.settings.codec),
      tensor: 'meta',
      shard: 0,
      shards: 1,
      elements: 0,
    };
    const received = await Promise.all(
      peers.map(async (rank) => {
        const [, frame] = await Promise.all([
          this.node.send(rank, header, payload),
          this.node.receive(rank, { ...position, kind: FrameKind.meta }, wait),
        ]);
        return parseContribution(rank, frame.payload, this.node);
      }),
    );
    return [request.contribution, ...received].sort((a, b) => a.rank - b.rank);
  }

  private async abort(request: RoundRequest, attempt: number, roster: number[], failed: number[]): Promise<void> {
    const payload = new TextEncoder().encode(JSON.stringify(failed));
    const header = {
      epoch: request.epoch,
      round: request.round,
      attempt,
      kind: FrameKind.abort,
      codec: codecId(this.settings.codec),
      tensor: 'abort',
      shard: 0,
      shards: 1,
      elements: 0,
    };
    await Promise.allSettled(
      roster
        .filter((rank) => rank !== this.node.rank && this.node.link(rank))
        .map((rank) => this.node.send(rank, header, payload)),
    );
  }
}

/**
 * How large any sum of the round's scaled Δ can honestly be: Σ scale·‖Δ‖ by the triangle
 * inequality, doubled for quantisation and error-feedback residuals. It catches injected
 * values far beyond what members declared; subtler poisoning is robust aggregation's job.
 */
function normBound(contributions: Contribution[], scales: Map<number, number>): number {
  const declared = contributions.reduce((sum, c) => {
    const scale = scales.get(c.rank) ?? 0;
    return scale !== 0 && Number.isFinite(c.norm) ? sum + Math.abs(scale) * c.norm : sum;
  }, 0);
  return 2 * declared + 1e-6;
}

function parseContribution(rank: number, payload: Uint8Array, node: PeerNode): Contribution {
  let value: Partial<Contribution>;
  try {
    value = JSON.parse(new TextDecoder().decode(payload));
  } catch {
    value = {};
  }
  const valid =
    value.rank === rank &&
    (typeof value.norm === 'number' || (value.norm === null && value.finite === false)) &&
    Number.isInteger(value.steps) &&
    typeof value.finite === 'boolean' &&
    Number.isInteger(value.baseRound);
  if (!valid) {
    node.disconnect(rank, 'malformed contribution');
    throw new ProtocolError(rank, 'malformed contribution');
  }
  // JSON has no NaN: a non-finite norm arrives as null and is declared non-finite.
  return { ...(value as Contribution), norm: value.norm ?? Number.NaN };
}
