import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { type PrivateRedis, startPrivateRedis } from '@grove/jobs';
import { type ModelConfig, presetConfig, selectBackend } from '@grove/model';
import { type GroupState, parseCodec } from '@grove/peer';
import { TRAINING_DEFAULTS, Trainer, type TrainingSettings } from '@grove/train';
import { type LocalReplica, startLocalReplica } from './local-group.js';
import type { NamedArrays } from './outer.js';
import { PENALTY_DEFAULTS } from './penalty.js';
import type { LocalSgdSettings, ReplicaHooks } from './replica.js';

const config: ModelConfig = {
  ...presetConfig('tiny'),
  layers: 1,
  width: 16,
  heads: 2,
  ffnWidth: 32,
  contextLength: 16,
};
const training: TrainingSettings = {
  ...TRAINING_DEFAULTS,
  batchSize: 4,
  warmupSteps: 2,
  learningRate: 1e-2,
  steps: 100,
};
const text = new TextEncoder().encode('the quick brown fox jumps over the lazy dog. '.repeat(200));
const settings: LocalSgdSettings = {
  mode: 'sync',
  innerSteps: 3,
  syncEverySeconds: 1,
  outer: { learningRate: 0.7, momentum: 0.9 },
  codec: parseCodec('int8+lz4'),
  errorFeedback: false,
  penalty: PENALTY_DEFAULTS,
  slowdown: 1,
};

let redis: PrivateRedis;
let seedParams: NamedArrays;
let expertCounter = 0;

before(async () => {
  await selectBackend();
  redis = await startPrivateRedis(mkdtempSync(join(tmpdir(), 'grove-localsgd-')));
  const seed = Trainer.fresh(config, training, text);
  seedParams = seed.model.toArrays();
  seed.dispose();
});
after(async () => {
  await redis?.stop();
});

const hashOf = (params: NamedArrays) => {
  const hash = createHash('sha256');
  for (const [name, values] of params)
    hash.update(name).update(new Uint8Array(values.buffer, values.byteOffset, values.byteLength));
  return hash.digest('hex');
};

const trainerFor = (params: NamedArrays, dataSeed: number) =>
  Trainer.fromArrays(config, params, { ...training, seed: dataSeed }, text);

/** Starts one replica of the group under `key` in this process. */
const startReplica = (
  key: string,
  rank: number,
  budget: number,
  hooks?: (replica: LocalReplica) => Partial<ReplicaHooks>,
  overrides: Partial<LocalSgdSettings> = {},
) =>
  startLocalReplica({
    redisUrl: redis.url,
    key,
    rank,
    budget,
    plannedReplicas: 3,
    settings: { ...settings, ...overrides },
    start: { round: 0, steps: 0, params: seedParams, momentum: new Map(), extra: {} },
    trainer: trainerFor,
    hooks,
  });

const nextKey = () => `grove:test:expert:${++expertCounter}`;

describe('Local-SGD replicas', () => {
  it('train together and leave every round with bit-identical parameters', async () => {
    const key = nextKey();
    const started = await Promise.all([0, 1, 2].map((rank) => startReplica(key, rank, 27)));
    const outcomes = await Promise.all(started.map((replica) => replica.outcome));
    const hashes = outcomes.map((outcome) => {
      assert.equal(outcome.kind, 'finished');
      return hashOf((outcome as { state: GroupState }).state.params);
    });
    assert.equal(new Set(hashes).size, 1, 'replicas disagree');
    // And the models the replicas hold are the group's parameters, byte for byte.
    for (const replica of started)
      assert.equal(hashOf(replica.trainers.at(-1)?.model.toArrays() as NamedArrays), hashes[0]);
    const rounds = started[0].rounds;
    assert.equal(rounds.at(-1)?.groupSteps, 27);
    // One replica starts the group; the others copy its state and join within a round or two.
    const together = rounds.filter((round) => round.replicas === 3);
    assert.ok(together.length > 0 && together.every((round) => round.bytesSent > 0));
    assert.ok(together[0].compressionRatio > 3, `compression ${together[0].compressionRatio}`);
    assert.ok((rounds.at(-1)?.loss as number) < rounds[0].loss, 'loss did not fall');
    assert.equal(
      started.reduce((n, replica) => n + replica.finals.length, 0),
      1,
      'the finished expert is saved once',
    );
  });

  it('lets a late replica join with the group state and finish bit-identical', async () => {
    const key = nextKey();
    const early = await Promise.all([0, 1].map((rank) => startReplica(key, rank, 90)));
    // Start the third once the first two have finished a round together.
    while (!early[0].rounds.some((round) => round.replicas === 2))
      await new Promise((resolve) => setTimeout(resolve, 5));
    const late = await startReplica(key, 2, 90);
    const outcomes = await Promise.all([...early, late].map((replica) => replica.outcome));
    const hashes = outcomes.map((o) => hashOf((o as { state: GroupState }).state.params));
    assert.equal(new Set(hashes).size, 1);
    const joinedAt = Number(/joined at round (\d+)/.exec(late.logs.join('\n'))?.[1]);
    assert.ok(joinedAt >= 1, late.logs.join('\n'));
    assert.ok(late.rounds.length > 0 && late.rounds.every((round) => round.replicas === 3));
    assert.ok(late.rounds[0].round > joinedAt);
  });

  it('completes a round without a replica that dies in it, and goes on with the survivors', async () => {
    const key = nextKey();
    const started = await Promise.all(
      [0, 1, 2].map((rank) =>
        startReplica(key, rank, 30, (replica) => ({
          onRound: (metrics) => {
            replica.rounds.push(metrics);
            if (rank !== 2 || replica.rounds.length !== 1) return;
            // Dies without a word: sockets gone, no goodbye in the rendezvous.
            replica.rendezvous.leave = async () => {};
            clearInterval((replica.rendezvous as unknown as { heartbeat: NodeJS.Timeout }).heartbeat);
            replica.stop = true;
            void replica.node.close();
          },
        })),
      ),
    );
    const [a, b, dead] = await Promise.all(started.map((replica) => replica.outcome));
    assert.equal(dead.kind, 'stopped');
    assert.equal(a.kind, 'finished');
    assert.equal(hashOf((a as { state: GroupState }).state.params), hashOf((b as { state: GroupState }).state.params));
    const survivors = started[0].rounds;
    assert.ok(
      survivors.some((round) => round.replicas === 2),
      'no round ran with the two survivors',
    );
    // The last round may overshoot the budget by less than a step per replica.
    const total = survivors.at(-1)?.groupSteps as number;
    assert.ok(total >= 30 && total < 33, `${total} steps`);
  });

  it('leaves a replica whose pseudo-gradient is NaN out of the round, and it recovers', async () => {
    const key = nextKey();
    let poisoned = false;
    const started = await Promise.all(
      [0, 1, 2].map((rank) =>
        startReplica(key, rank, 36, (replica) => ({
          onStep: () => {
            if (rank !== 1 || poisoned || replica.rounds.length !== 1) return;
            poisoned = true;
            const trainer = replica.trainers.at(-1) as Trainer;
            trainer.model.assign(new Map([...trainer.model.toArrays()].map(([name, v]) => [name, v.fill(Number.NaN)])));
          },
        })),
      ),
    );
    const outcomes = await Promise.all(started.map((replica) => replica.outcome));
    const rounds = started[1].rounds;
    const bad = rounds.findIndex((round) => round.excluded[1] !== undefined);
    assert.ok(bad >= 0, 'no round left replica 1 out');
    assert.match(rounds[bad].excluded[1], /non-finite/);
    assert.ok(rounds[bad].replicas >= 2);
    // Back in from the next round on, with a fresh inner optimizer on the group's parameters.
    assert.ok(rounds.length > bad + 1, 'no round after the poisoned one');
    assert.deepEqual(rounds[bad + 1].excluded, {});
    const params = (outcomes[1] as { state: GroupState }).state.params;
    for (const values of params.values()) assert.ok(values.every(Number.isFinite));
    assert.equal(new Set(outcomes.map((o) => hashOf((o as { state: GroupState }).state.params))).size, 1);
  });

  it('meets on a clock in async mode, each replica bringing the steps it managed', async () => {
    const key = nextKey();
    const asyncMode = {
      mode: 'async' as const,
      syncEverySeconds: 0.15,
      penalty: { ...PENALTY_DEFAULTS, weightBySteps: true },
    };
    const started = await Promise.all([0, 1, 2].map((rank) => startReplica(key, rank, 60, undefined, asyncMode)));
    const outcomes = await Promise.all(started.map((replica) => replica.outcome));
    assert.equal(new Set(outcomes.map((o) => hashOf((o as { state: GroupState }).state.params))).size, 1);
    const rounds = started[0].rounds;
    assert.ok(rounds.filter((round) => round.replicas === 3).length >= 2);
    // Rounds end on the clock, not after a fixed number of steps (stragglers: bench/localsgd.ts).
    assert.ok(rounds.every((round) => round.innerSteps >= 1));
    assert.ok(new Set(rounds.map((round) => round.innerSteps)).size > 1, 'every round took the same steps');
    assert.ok((rounds.at(-1)?.groupSteps as number) >= 60);
  });
});
