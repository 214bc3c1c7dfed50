/**
 * The REST API under concurrent and hostile load, listening on loopback against a real Redis:
 * racing grows of one run, many idle event-stream clients, a client that never reads.
 */
import assert from 'node:assert/strict';
import { mkdirSync, mkdtempSync } from 'node:fs';
import { get, type IncomingMessage } from 'node:http';
import { connect } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { buildApi } from '@grove/api/server';
import { connectRedis, type PrivateRedis, RunScheduler, startPrivateRedis } from '@grove/jobs';
import type { FastifyInstance } from 'fastify';
import type { Redis } from 'ioredis';

/** Tokens the API accepts: one per simulated caller. */
const TOKENS = Array.from({ length: 260 }, (_, index) => `token-${index}`);

interface Stream {
  status: number;
  /** Resolves at the first `run` event. */
  firstRun: Promise<void>;
  close(): void;
}

/** An event stream client that reads everything it is sent. */
function openStream(base: string, runId: string, token: string): Promise<Stream> {
  return new Promise((resolve, reject) => {
    const request = get(
      `${base}/v1/runs/${runId}/events`,
      { headers: { authorization: `Bearer ${token}` }, agent: false },
      (response: IncomingMessage) => {
        let tail = ''; // an event name may straddle two chunks
        const firstRun = new Promise<void>((seen) => {
          const watch = (chunk: Buffer) => {
            const recent = tail + chunk;
            tail = recent.slice(-20);
            if (!recent.includes('event: run')) return;
            response.off('data', watch);
            response.resume(); // keeps reading, as a dashboard would, without looking
            seen();
          };
          response.on('data', watch);
        });
        response.on('error', () => {});
        resolve({ status: response.statusCode ?? 0, firstRun, close: () => request.destroy() });
      },
    );
    request.on('error', reject);
  });
}

async function commandsProcessed(redis: Redis): Promise<number> {
  const stats = await redis.info('stats');
  return Number(/total_commands_processed:(\d+)/.exec(stats)?.[1]);
}

/** Redis commands per second over `ms`, from every client of the server. */
async function commandRate(redis: Redis, ms: number): Promise<number> {
  const before = await commandsProcessed(redis);
  await new Promise((wake) => setTimeout(wake, ms));
  return ((await commandsProcessed(redis)) - before - 1) / (ms / 1000);
}

async function healthLatencyP95(base: string): Promise<number> {
  const latencies: number[] = [];
  for (let i = 0; i < 20; i++) {
    const start = performance.now();
    assert.equal((await fetch(`${base}/healthz`)).status, 200);
    latencies.push(performance.now() - start);
    await new Promise((wake) => setTimeout(wake, 50));
  }
  return latencies.sort((a, b) => a - b)[Math.floor(latencies.length * 0.95)];
}

describe('API under load', { timeout: 180_000 }, () => {
  const state = mkdtempSync(join(tmpdir(), 'grove-api-load-'));
  // Runs with many experts name folders of their own: empty ones inside a data root do, since
  // submission checks only where a folder is (the worker reads it).
  const dataRoot = join(state, 'data');
  for (let index = 0; index < 17; index++) mkdirSync(join(dataRoot, `d${index}`), { recursive: true });
  const previousRoots = process.env.GROVE_DATA_ROOTS;
  process.env.GROVE_DATA_ROOTS = dataRoot;
  after(() => {
    if (previousRoots === undefined) delete process.env.GROVE_DATA_ROOTS;
    else process.env.GROVE_DATA_ROOTS = previousRoots;
  });
  let redis: PrivateRedis;
  let connection: Redis;
  let scheduler: RunScheduler;
  let app: FastifyInstance;
  let base: string;

  before(async () => {
    redis = await startPrivateRedis(state);
    connection = connectRedis(redis.url);
    scheduler = new RunScheduler(connection);
    app = await buildApi({ scheduler, stateFolder: state, tokens: TOKENS });
    base = await app.listen({ host: '127.0.0.1', port: 0 });
  });
  after(async () => {
    await app.close();
    await scheduler.close();
    connection.disconnect();
    await redis.stop();
  });

  /** A finished run, as the eval job leaves it. */
  async function completedRun(id: string): Promise<void> {
    const { created } = await scheduler.submit({ id, domains: ['press', 'lore'] });
    assert.ok(created);
    await scheduler.runs.setStatus(id, 'completed');
  }

  it('lets exactly one of two concurrent grows of a completed run start', async () => {
    const ids = Array.from({ length: 10 }, (_, index) => `grow-race-${index}`);
    for (const id of ids) await completedRun(id);
    const grow = (id: string) =>
      fetch(`${base}/v1/runs/${id}/experts`, {
        method: 'POST',
        headers: { 'content-type': 'application/json', authorization: `Bearer ${TOKENS[0]}` },
        body: JSON.stringify({ domain: 'fiction' }),
      }).then((response) => response.status);
    const pairs = await Promise.all(ids.map((id) => Promise.all([grow(id), grow(id)])));
    for (const [index, pair] of pairs.entries())
      assert.deepEqual([...pair].sort(), [202, 409], `run ${ids[index]}: ${pair.join(', ')}`);
    for (const id of ids) assert.equal((await scheduler.runs.get(id))?.generation, 1);
  });

  it('follows one run for 200 idle event clients with one poller, and refuses the 201st', async (t) => {
    await scheduler.submit({ id: 'watched', domains: ['press', 'lore', 'fiction', 'hobbies'], expertReplicas: 2 });
    const single = await openStream(base, 'watched', TOKENS[0]);
    await single.firstRun;
    const baseline = await healthLatencyP95(base);
    const oneClient = await commandRate(connection, 3_000);
    single.close();

    const memoryBefore = process.memoryUsage().rss;
    const streams = await Promise.all(TOKENS.slice(0, 200).map((token) => openStream(base, 'watched', token)));
    assert.deepEqual(new Set(streams.map((stream) => stream.status)), new Set([200]));
    await Promise.all(streams.map((stream) => stream.firstRun));
    const manyClients = await commandRate(connection, 3_000);
    const p95 = await healthLatencyP95(base);
    const refused = await openStream(base, 'watched', TOKENS[200]);
    const grownBy = process.memoryUsage().rss - memoryBefore;
    refused.close();
    for (const stream of streams) stream.close();
    t.diagnostic(
      `Redis commands/s: ${oneClient.toFixed(0)} (1 client), ${manyClients.toFixed(0)} (200); /healthz p95 ${p95.toFixed(0)} ms (${baseline.toFixed(0)} ms alone); RSS +${(grownBy / 2 ** 20).toFixed(0)} MB`,
    );

    assert.ok(
      manyClients < oneClient * 1.5 + 20,
      `Redis commands/s: ${manyClients.toFixed(0)} for 200 clients, ${oneClient.toFixed(0)} for one`,
    );
    // Against the machine's own pace: a shared two-core machine can be slow without any streams.
    assert.ok(
      p95 < baseline + 200,
      `95th percentile of /healthz: ${p95.toFixed(0)} ms, ${baseline.toFixed(0)} ms alone`,
    );
    assert.equal(refused.status, 503);
    assert.ok(grownBy < 100 * 1024 * 1024, `the process grew by ${(grownBy / 2 ** 20).toFixed(0)} MB`);

    await new Promise((wake) => setTimeout(wake, 1_500)); // the last tick in flight lands
    const idle = await commandRate(connection, 3_000);
    assert.ok(idle < oneClient / 2, `${idle.toFixed(1)} commands/s once every client left`);
  });

  it('caps the streams of one caller', async () => {
    const streams = await Promise.all(Array.from({ length: 16 }, () => openStream(base, 'watched', TOKENS[0])));
    assert.deepEqual(new Set(streams.map((stream) => stream.status)), new Set([200]));
    const refused = await openStream(base, 'watched', TOKENS[0]);
    const other = await openStream(base, 'watched', TOKENS[1]);
    for (const stream of [...streams, refused, other]) stream.close();
    assert.equal(refused.status, 503);
    assert.equal(other.status, 200, 'another caller still gets a stream');
  });

  it('drops an event client that never reads', async () => {
    process.env.GROVE_EVENTS_MAX_CLIENTS = '1';
    const small = await buildApi({ scheduler, stateFolder: state, tokens: TOKENS });
    delete process.env.GROVE_EVENTS_MAX_CLIENTS;
    const smallBase = await small.listen({ host: '127.0.0.1', port: 0 });
    const { port } = new URL(smallBase);
    try {
      await scheduler.submit({ id: 'flooded', domains: ['press'] });
      const stalled = connect(Number(port), '127.0.0.1');
      stalled.write(
        `GET /v1/runs/flooded/events HTTP/1.1\r\nhost: 127.0.0.1\r\nauthorization: Bearer ${TOKENS[5]}\r\n\r\n`,
      );
      stalled.pause();
      stalled.on('error', () => {});
      await new Promise((wake) => setTimeout(wake, 500));
      const second = await openStream(smallBase, 'flooded', TOKENS[6]);
      second.close();
      assert.equal(second.status, 503, 'the stalled client holds the only slot');

      // Points of 16 KB each, faster than the stalled client's socket buffers can hold.
      let flooding = true;
      const flood = (async () => {
        while (flooding) {
          await Promise.all(
            Array.from({ length: 100 }, (_, step) =>
              scheduler.runs.recordMetric('flooded', { job: 'x'.repeat(16_000), step, loss: 1 }),
            ),
          );
          await new Promise((wake) => setTimeout(wake, 50));
        }
      })();
      const deadline = Date.now() + 60_000;
      let freed = false;
      while (!freed && Date.now() < deadline) {
        await new Promise((wake) => setTimeout(wake, 500));
        const probe = await openStream(smallBase, 'flooded', TOKENS[6]);
        probe.close();
        freed = probe.status === 200;
      }
      flooding = false;
      await flood;
      stalled.destroy();
      assert.ok(freed, 'the stalled client was dropped and its slot freed');
    } finally {
      await small.close();
    }
  });

  it('reads a run view in the same few commands however many jobs the run has', async (t) => {
    const small = { id: 'few-jobs', domains: ['press', 'lore'] };
    const large = {
      id: 'many-jobs',
      domains: Array.from({ length: 16 }, (_, index) => `d${index}=${dataRoot}/d${index}`),
      expertReplicas: 4,
    };
    for (const input of [small, large]) {
      const { record } = await scheduler.submit(input);
      await scheduler.branch(record.id, record.spec);
    }
    const address = /addr=(\S+)/.exec((await connection.client('INFO')) as string)?.[1];
    // MONITOR is the administrator's: the application's user may not run it.
    const admin = connectRedis(redis.adminUrl);
    const monitor = await admin.monitor();
    const sent: string[] = [];
    let scripted = 0;
    monitor.on('monitor', (_time: string, args: string[], source: string) => {
      if (source === address) sent.push(args[0]);
      else if (source === 'lua') scripted += 1;
    });
    const commandsOf = async (id: string) => {
      sent.length = 0;
      scripted = 0;
      const response = await fetch(`${base}/v1/runs/${id}`, { headers: { authorization: `Bearer ${TOKENS[0]}` } });
      const view = await response.json();
      await new Promise((wake) => setTimeout(wake, 200)); // the monitor feed lands
      return { sent: [...sent], scripted, jobs: view.jobs.length as number };
    };
    const few = await commandsOf(small.id);
    const many = await commandsOf(large.id);
    monitor.disconnect();
    admin.disconnect();
    t.diagnostic(
      `${few.jobs} jobs: ${few.sent.length} commands (${few.scripted} in scripts); ${many.jobs} jobs: ${many.sent.length} (${many.scripted})`,
    );
    assert.ok(many.jobs >= 60);
    assert.ok(many.sent.length <= 4, `one GET sent ${many.sent.join(' ')}`);
    assert.equal(many.sent.length, few.sent.length);
  });

  it('refuses a run over a cluster limit with 400 naming the field', async () => {
    const cases: [Record<string, unknown>, string][] = [
      [{ domains: Array.from({ length: 17 }, (_, index) => `d${index}=${dataRoot}/d${index}`) }, 'domains'],
      [{ domains: ['press'], expertReplicas: 9 }, 'expertReplicas'],
      [
        {
          domains: Array.from({ length: 9 }, (_, index) => `d${index}=${dataRoot}/d${index}`),
          experts: Array.from({ length: 9 }, (_, index) => ({ domain: `d${index}`, steps: 10, replicas: 8 })),
        },
        'experts',
      ],
      [{ domains: ['press'], seed: { steps: 1_000_000 } }, 'seed.steps'],
      [{ domains: ['press'], experts: [{ domain: 'press', steps: 1_000_000 }] }, 'experts.0.steps'],
      [{ domains: ['press'], training: { batchSize: 1024 } }, 'training.batchSize'],
      [{ domains: ['press'], eval: { bytes: 10_000_000 } }, 'eval.bytes'],
    ];
    const runsBefore = (await scheduler.runs.list()).length;
    for (const [spec, path] of cases) {
      const response = await fetch(`${base}/v1/runs`, {
        method: 'POST',
        headers: { 'content-type': 'application/json', authorization: `Bearer ${TOKENS[0]}` },
        body: JSON.stringify(spec),
      });
      const body = await response.json();
      assert.equal(response.status, 400, `${path}: ${JSON.stringify(body)}`);
      assert.deepEqual(
        body.fields.map((field: { path: string }) => field.path),
        [path],
      );
      assert.match(body.fields[0].message, /over this cluster's limit .*GROVE_MAX_/);
    }
    assert.equal((await scheduler.runs.list()).length, runsBefore, 'nothing was recorded');
  });
});
