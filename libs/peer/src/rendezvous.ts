/**
 * How the replicas of one expert find each other, through the Redis the queue already uses:
 * each registers its address and rank and keeps a heartbeat key alive; each round's member
 * list (the roster) is fixed by whichever replica asks first, so every member agrees on it.
 * The group's progress (last finished round, inner steps done) lives here too, so a replica
 * job that starts late — or after the expert finished — knows where the group stands.
 */
import type { Redis } from 'ioredis';
import type { PeerIdentity } from './identity.js';
import type { PeerAddress } from './node.js';
import { type RateLimitedLog, rateLimitedLog } from './rate-limited-log.js';

export interface Member extends PeerAddress, PeerIdentity {
  /** Takes part in rounds: the next roster includes it (a joiner is active before it has the state). */
  active: boolean;
  /** Holds the group's current state and can hand it to a joiner. */
  ready: boolean;
  /** The group incarnation it belongs to: a cold start from a checkpoint begins a new one. */
  epoch: number;
}

export interface GroupProgress {
  /** The group incarnation the record is about: a cold start begins a new one. */
  epoch: number;
  /** Rounds completed by the group. */
  round: number;
  /** Inner steps contributed so far, summed over replicas. */
  steps: number;
  finished: boolean;
}

export interface RendezvousOptions {
  heartbeatMs?: number;
  /**
   * A member whose heartbeat is older than this is gone. Generous on purpose: a training step
   * can hold the event loop for seconds, and a dead member is noticed sooner anyway, when its
   * link closes.
   */
  ttlMs?: number;
  log?: (message: string) => void;
}

const DAY_SECONDS = 86_400;

export class Rendezvous {
  private heartbeat?: NodeJS.Timeout;
  private member?: Member;
  private readonly heartbeatMs: number;
  private readonly ttlMs: number;
  private readonly log: RateLimitedLog;

  constructor(
    private readonly redis: Redis,
    /** The expert's key, e.g. `grove:run:<run>:expert:<domain>`. */
    private readonly key: string,
    readonly rank: number,
    options: RendezvousOptions = {},
  ) {
    this.heartbeatMs = options.heartbeatMs ?? 1_000;
    this.ttlMs = options.ttlMs ?? 30_000;
    this.log = rateLimitedLog(options.log ?? ((message) => console.error(message)));
  }

  /**
   * Lists this replica under its rank with the identity its peers will check: its session
   * and public key. The rendezvous is the trust anchor: whoever can write here can join.
   */
  async register(url: string | undefined, identity: PeerIdentity): Promise<void> {
    this.member = {
      rank: this.rank,
      url,
      active: false,
      ready: false,
      epoch: 0,
      session: identity.session,
      publicKey: identity.publicKey,
    };
    await this.beat();
    this.heartbeat = setInterval(() => {
      this.beat().catch((error) =>
        // Missed beats end in eviction once the alive key expires: say why while it can still be fixed.
        this.log(
          'heartbeat',
          `rendezvous heartbeat failed (evicted after ${this.ttlMs} ms of these): ${error.message}`,
        ),
      );
    }, this.heartbeatMs);
    this.heartbeat.unref();
  }

  /** The identity `rank` has registered, while its heartbeat is fresh. */
  async identityOf(rank: number): Promise<PeerIdentity | undefined> {
    const [entry, alive] = await Promise.all([
      this.redis.hget(`${this.key}:members`, String(rank)),
      this.redis.exists(`${this.key}:alive:${rank}`),
    ]);
    if (!entry || !alive) return undefined;
    const member = JSON.parse(entry) as Partial<Member>;
    if (typeof member.session !== 'string' || typeof member.publicKey !== 'string') return undefined;
    return { session: member.session, publicKey: member.publicKey };
  }

  async setActive(active: boolean, epoch: number, ready = active): Promise<void> {
    if (!this.member) throw new Error('Register before changing state.');
    this.member.active = active;
    this.member.ready = ready;
    this.member.epoch = epoch;
    await this.beat();
  }

  /**
   * Starting the group from stored state (the seed or the last group checkpoint) must happen
   * once: the replica that wins this lock does it and begins a new epoch; the others wait
   * for it to become active and copy its state.
   */
  async claimColdStart(holdMs: number): Promise<number | undefined> {
    const won = await this.redis.set(`${this.key}:cold-start`, String(this.rank), 'PX', holdMs, 'NX');
    // The epoch bumps even when the claimant then finds the group already started: harmless,
    // epochs only need to differ between incarnations.
    return won ? this.redis.incr(`${this.key}:epoch`) : undefined;
  }

  async releaseColdStart(): Promise<void> {
    await this.redis.del(`${this.key}:cold-start`);
  }

  /** Members whose heartbeat is fresh, by rank. */
  async liveMembers(): Promise<Member[]> {
    const entries = await this.redis.hgetall(`${this.key}:members`);
    const members = Object.values(entries).map((json) => JSON.parse(json) as Member);
    if (members.length === 0) return [];
    const alive = await this.redis.mget(members.map((m) => `${this.key}:alive:${m.rank}`));
    return members.filter((_, i) => alive[i] !== null).sort((a, b) => a.rank - b.rank);
  }

  /**
   * The roster of a round attempt: the first caller's proposal wins and every caller gets
   * the same list back.
   */
  async roster(epoch: number, round: number, attempt: number, proposal: number[]): Promise<number[]> {
    const key = `${this.key}:roster:${epoch}:${round}:${attempt}`;
    await this.redis.set(key, JSON.stringify(proposal), 'EX', DAY_SECONDS, 'NX');
    return JSON.parse((await this.redis.get(key)) as string);
  }

  async progress(): Promise<GroupProgress> {
    const fields = await this.redis.hgetall(`${this.key}:progress`);
    return {
      epoch: Number(fields.epoch ?? 0),
      round: Number(fields.round ?? 0),
      steps: Number(fields.steps ?? 0),
      finished: fields.finished === '1',
    };
  }

  /**
   * Records a finished round, or a cold start's starting point (a new epoch): within an
   * epoch rounds only move forward, whoever writes first; a later epoch starts afresh.
   */
  async recordProgress(progress: GroupProgress): Promise<void> {
    await this.redis.eval(
      `local epoch = tonumber(redis.call('HGET', KEYS[1], 'epoch') or '0')
       local round = tonumber(redis.call('HGET', KEYS[1], 'round') or '-1')
       local newEpoch = tonumber(ARGV[5])
       if newEpoch > epoch or (newEpoch == epoch and tonumber(ARGV[1]) > round) or ARGV[3] == '1' then
         redis.call('HSET', KEYS[1], 'epoch', ARGV[5], 'round', ARGV[1], 'steps', ARGV[2], 'finished', ARGV[3])
       end
       redis.call('EXPIRE', KEYS[1], ARGV[4])`,
      1,
      `${this.key}:progress`,
      progress.round,
      progress.steps,
      progress.finished ? '1' : '0',
      DAY_SECONDS * 7,
      progress.epoch,
    );
  }

  async leave(): Promise<void> {
    clearInterval(this.heartbeat);
    this.heartbeat = undefined;
    await this.redis.del(`${this.key}:alive:${this.rank}`);
    await this.redis.hdel(`${this.key}:members`, String(this.rank));
  }

  private async beat(): Promise<void> {
    if (!this.member) return;
    await this.redis
      .multi()
      .hset(`${this.key}:members`, String(this.rank), JSON.stringify(this.member))
      .expire(`${this.key}:members`, DAY_SECONDS * 7)
      .set(`${this.key}:alive:${this.rank}`, '1', 'PX', this.ttlMs)
      .exec();
  }
}
