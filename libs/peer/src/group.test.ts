import assert from 'node:assert/strict';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { type PrivateRedis, startPrivateRedis } from '@grove/jobs';
import { Redis } from 'ioredis';
import { parseCodec } from './codec.js';
import { type Contribution, ReplicaGroup } from './group.js';
import { PeerNode } from './node.js';
import { Rendezvous } from './rendezvous.js';
import { fetchGroupState, type GroupState, serveGroupState } from './state.js';

let redis: PrivateRedis;
const closers: (() => Promise<void> | void)[] = [];
before(async () => {
  redis = await startPrivateRedis(mkdtempSync(join(tmpdir(), 'grove-peer-group-')));
});
after(async () => {
  for (const close of closers.reverse()) await close();
  await redis?.stop();
});

let groupCounter = 0;
const EPOCH = 1;

interface Replica {
  rank: number;
  node: PeerNode;
  rendezvous: Rendezvous;
  group: ReplicaGroup;
  logs: string[];
}

/** `size` registered, active replicas of one expert, each with its own node and Redis connection. */
async function startReplicas(size: number, key = `grove:test:group:${++groupCounter}`): Promise<Replica[]> {
  return Promise.all(
    Array.from({ length: size }, async (_, rank) => {
      const connection = new Redis(redis.url);
      const rendezvous = new Rendezvous(connection, key, rank, { ttlMs: 5_000 });
      const logs: string[] = [];
      const log = (message: string) => logs.push(message);
      const node = await PeerNode.start({
        run: 'run-1',
        expert: 'press',
        rank,
        directory: (peer) => rendezvous.identityOf(peer),
        log,
      });
      closers.push(async () => {
        await node.close();
        await rendezvous.leave().catch(() => {});
        connection.disconnect();
      });
      await rendezvous.register(node.url, node.identity);
      await rendezvous.setActive(true, EPOCH);
      const group = new ReplicaGroup(node, rendezvous, {
        codec: parseCodec('fp32'),
        contributionTimeoutMs: 5_000,
        frameTimeoutMs: 5_000,
        connectTimeoutMs: 800,
        maxAttempts: 4,
        log,
      });
      return { rank, node, rendezvous, group, logs };
    }),
  );
}

/** One round of `replica` with a small Δ of ones, every contribution counted in full. */
function roundOf(replica: Replica, round: number, values = new Float32Array(16).fill(1), computeMs?: number) {
  const contribution: Contribution = { rank: replica.rank, norm: 4, steps: 1, finite: true, baseRound: round - 1 };
  return replica.group.round({
    epoch: EPOCH,
    round,
    contribution,
    computeMs,
    buckets: [{ name: 'layers.0', length: values.length, values: () => values }],
    scales: (contributions) => new Map(contributions.map((c) => [c.rank, 1])),
  });
}

describe('replica group', () => {
  it('welcomes back a member that dropped out of one round in the next one', async () => {
    const [a, b, c] = await startReplicas(3);
    // Round 1: c is registered and active but never connects (a transient drop): left out.
    const first = await Promise.all([roundOf(a, 1), roundOf(b, 1)]);
    for (const outcome of first) {
      assert.equal(outcome.kind, 'reduced');
      assert.deepEqual(outcome.roster, [0, 1]);
    }
    // Round 2: the first roster is proposed by a, which saw c fail a round ago.
    const proposed = roundOf(a, 2);
    await new Promise((resolve) => setTimeout(resolve, 200));
    const second = await Promise.all([proposed, roundOf(b, 2), roundOf(c, 2)]);
    for (const outcome of second) {
      assert.equal(
        outcome.kind,
        'reduced',
        `${JSON.stringify(outcome)}\n${[a, b, c].map((r) => r.logs.join('\n')).join('\n--\n')}`,
      );
      assert.deepEqual(outcome.roster, [0, 1, 2], [a, b, c].map((r) => r.logs.join('\n')).join('\n--\n'));
      if (outcome.kind === 'reduced') assert.ok(outcome.sums[0].every((value) => value === 3));
    }
  });

  it('waits for a live member that sends nothing as long as its own compute time says, not the ceiling', async () => {
    const [a, b] = await startReplicas(2);
    // b is linked and its heartbeats are fine, but it never brings a contribution.
    await b.node.connect({ rank: 0, url: a.node.url });
    a.group = new ReplicaGroup(a.node, a.rendezvous, {
      ...a.group.settings,
      contributionTimeoutMs: 30 * 60_000,
      contributionFloorMs: 500,
    });
    const started = Date.now();
    const outcome = await roundOf(a, 1, undefined, 100);
    const waited = Date.now() - started;
    assert.equal(outcome.kind, 'reduced');
    assert.deepEqual(outcome.roster, [0]);
    // Ten times its 100 ms of compute: about a second, then the round goes on without b.
    assert.ok(waited >= 900 && waited < 5_000, `waited ${waited} ms`);
    assert.ok(
      a.logs.some((line) => /no frame within 1000 ms/.test(line)),
      a.logs.join('\n'),
    );
  });

  it("refuses a holder's state that does not fit the model, is not finite or is not the group's progress", async () => {
    const [holder, joiner] = await startReplicas(2);
    const shapes = new Map([
      ['w', [2, 3]],
      ['b', [3]],
    ]);
    const good: GroupState = {
      epoch: EPOCH,
      round: 2,
      steps: 10,
      params: new Map([
        ['w', new Float32Array(6).fill(0.5)],
        ['b', new Float32Array(3)],
      ]),
      momentum: new Map([['w', new Float32Array(6)]]),
      extra: {},
    };
    await holder.rendezvous.recordProgress({ epoch: EPOCH, round: 2, steps: 10, finished: false });
    let served = good;
    serveGroupState(holder.node, () => served);
    const fetch = () =>
      fetchGroupState(joiner.node, { rank: 0, url: holder.node.url }, 2_000, {
        shapes,
        maxSteps: 100,
        progress: () => joiner.rendezvous.progress(),
      });
    const cases: [string, GroupState, RegExp][] = [
      [
        'NaN',
        { ...good, params: new Map([...good.params, ['b', Float32Array.of(1, Number.NaN, 0)]]) },
        /parameter b is not finite/,
      ],
      [
        'junk tensor',
        { ...good, params: new Map([...good.params, ['w', new Float32Array(1_000)]]) },
        /state tensor param\/w is not one of the model's/,
      ],
      [
        'unknown tensor',
        { ...good, params: new Map([...good.params, ['x', new Float32Array(3)]]) },
        /state tensor param\/x is not one of the model's/,
      ],
      ['missing tensor', { ...good, params: new Map([['w', new Float32Array(6)]]) }, /lacks parameter b/],
      [
        'NaN momentum',
        { ...good, momentum: new Map([['w', new Float32Array(6).fill(Number.NaN)]]) },
        /momentum w is not finite/,
      ],
      ['10¹² steps', { ...good, steps: 1e12 }, /claims 1000000000000 steps, over the 100 possible/],
      ['another round', { ...good, round: 7 }, /at round 7 .* the rendezvous records round 2 with 10/],
    ];
    for (const [label, state, reason] of cases) {
      served = state;
      await assert.rejects(fetch(), reason, label);
    }
    served = good;
    const copied = await fetch();
    assert.deepEqual(copied.params, good.params);
    assert.equal(copied.steps, 10);
  });

  it('says when its rendezvous heartbeat fails, once per interval, instead of being evicted in silence', async () => {
    const connection = new Redis(redis.url);
    const logs: string[] = [];
    const rendezvous = new Rendezvous(connection, 'grove:test:heartbeat', 0, {
      heartbeatMs: 20,
      log: (line) => logs.push(line),
    });
    await rendezvous.register(undefined, { session: 's', publicKey: 'k' });
    connection.disconnect();
    await new Promise((resolve) => setTimeout(resolve, 300));
    await rendezvous.leave().catch(() => {});
    assert.equal(logs.length, 1, logs.join('\n'));
    assert.match(logs[0], /rendezvous heartbeat failed \(evicted after 30000 ms of these\): Connection is closed/);
  });
});
