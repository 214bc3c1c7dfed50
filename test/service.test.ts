/**
 * The service end to end: a real Redis, the API, merge service and workers as separate
 * processes, real training on Brown text with budgets small enough for CI.
 */
import assert from 'node:assert/strict';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { type Cluster, startCluster } from '@grove/cli/cluster';
import { connectRedis, QUEUES, type RunSpecInput } from '@grove/jobs';
import { Queue } from 'bullmq';

const SMALL_RUN: RunSpecInput = {
  domains: ['press', 'fiction'],
  seed: { steps: 6 },
  expertSteps: 4,
  training: { batchSize: 2, learningRate: 3e-3, warmupSteps: 2, checkpointEvery: 2, seed: 1 },
  eval: { bytes: 2048 },
};

interface RunView {
  id: string;
  status: string;
  error?: string;
  rows?: { model: string; domain: string; bitsPerByte: number }[];
  jobs: { id: string; name: string; state: string; progress: unknown }[];
}

async function api(
  cluster: Cluster,
  method: string,
  path: string,
  body?: unknown,
  headers: Record<string, string> = {},
) {
  const auth = { authorization: `Bearer ${cluster.token}`, ...headers };
  const response = await fetch(`${cluster.apiUrl}${path}`, {
    method,
    headers: body === undefined ? auth : { 'content-type': 'application/json', ...auth },
    body: body === undefined ? undefined : typeof body === 'string' ? body : JSON.stringify(body),
  });
  return { status: response.status, body: (await response.json().catch(() => ({}))) as Record<string, unknown> };
}

async function waitFor<T>(probe: () => Promise<T | undefined>, timeoutMs: number, what: string): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const value = await probe();
    if (value !== undefined) return value;
    if (Date.now() > deadline) throw new Error(`Timed out after ${timeoutMs} ms waiting for ${what}.`);
    await new Promise((wake) => setTimeout(wake, 250));
  }
}

/** A queue handle for the test's own producer; closed with its connection. */
function producerQueue(cluster: Cluster) {
  const connection = connectRedis(cluster.redisUrl);
  const queue = new Queue(QUEUES.train, { connection });
  return {
    queue,
    async close() {
      await queue.close();
      connection.disconnect();
    },
  };
}

const runView = async (cluster: Cluster, id: string) =>
  (await api(cluster, 'GET', `/v1/runs/${id}`)).body as unknown as RunView;
const finished = (cluster: Cluster, id: string, timeoutMs = 240_000) =>
  waitFor(
    async () => {
      const run = await runView(cluster, id);
      return ['completed', 'failed', 'cancelled'].includes(run.status) ? run : undefined;
    },
    timeoutMs,
    `run ${id} to finish`,
  );

describe('service end to end', { timeout: 900_000 }, () => {
  let cluster: Cluster;
  before(async () => {
    cluster = await startCluster({
      stateFolder: mkdtempSync(join(tmpdir(), 'grove-service-')),
      workers: 2,
      env: { GROVE_LOCK_MS: '4000', GROVE_BACKEND: 'wasm' },
    });
  });
  after(async () => {
    await cluster?.stop();
  });

  it('runs seed → experts → merge → eval from a REST submission and reports the table', async () => {
    const submitted = await api(cluster, 'POST', '/v1/runs', { ...SMALL_RUN, id: 'rest-run' });
    assert.equal(submitted.status, 202);
    assert.equal(submitted.body.id, 'rest-run');
    const run = await finished(cluster, 'rest-run');
    assert.equal(run.status, 'completed', run.error);
    const models = [...new Set(run.rows?.map((row) => row.model))].sort();
    assert.deepEqual(models, ['expert:fiction', 'expert:press', 'merged:linear', 'merged:posterior', 'seed']);
    for (const row of run.rows ?? [])
      assert.ok(row.bitsPerByte > 0.5 && row.bitsPerByte < 9, `${row.model} ${row.bitsPerByte}`);
    assert.ok(run.jobs.every((job) => job.state === 'completed'));
    const listing = await api(cluster, 'GET', '/v1/runs/rest-run/artifacts/merged/linear/');
    assert.ok((listing.body.entries as { name: string }[]).some((entry) => entry.name === 'model.safetensors'));
    const metrics = await api(cluster, 'GET', '/v1/runs/rest-run/metrics');
    assert.ok((metrics.body.points as unknown[]).length > 0);
  });

  it('creates one run for a repeated id or Idempotency-Key', async () => {
    const first = await api(cluster, 'POST', '/v1/runs', SMALL_RUN, { 'idempotency-key': 'same-key' });
    const second = await api(cluster, 'POST', '/v1/runs', SMALL_RUN, { 'idempotency-key': 'same-key' });
    assert.equal(first.status, 202);
    assert.equal(second.status, 200);
    assert.equal(second.body.id, first.body.id);
    assert.equal(second.body.created, false);
    await api(cluster, 'DELETE', `/v1/runs/${first.body.id}`);
    const again = await api(cluster, 'POST', '/v1/runs', { ...SMALL_RUN, id: 'rest-run' });
    assert.deepEqual([again.status, again.body.created], [200, false]);
  });

  it('answers 20 malformed specs with 400s naming the field, and queues nothing', async () => {
    const producer = producerQueue(cluster);
    const { queue } = producer;
    const before = await queue.getJobCounts();
    const cases: [unknown, string][] = [
      ['{not json', ''],
      [[], ''],
      [{ domains: [] }, 'domains'],
      [{ domains: ['poetry'] }, 'domains.0'],
      [{ domains: ['press', 'press'] }, 'domains.1'],
      [{ domains: 'press' }, 'domains'],
      [{ model: { preset: 'huge' } }, 'model.preset'],
      [{ model: { positions: 'absolute' } }, 'model.positions'],
      [{ seed: { steps: -1 } }, 'seed.steps'],
      [{ seed: { steps: 1.5 } }, 'seed.steps'],
      [{ expertSteps: 0 }, 'expertSteps'],
      [{ training: { batchSize: 0 } }, 'training.batchSize'],
      [{ training: { learningRate: 0 } }, 'training.learningRate'],
      [{ training: { learningRate: 'fast' } }, 'training.learningRate'],
      [{ experts: [{ domain: 'poetry', steps: 5 }] }, 'experts.0.domain'],
      [{ experts: [{ domain: 'press', steps: 5, replicas: 0 }] }, 'experts.0.replicas'],
      [{ localSgd: { outerMomentum: 1.5 } }, 'localSgd.outerMomentum'],
      [{ localSgd: { codec: 'zip' } }, 'localSgd.codec'],
      [{ merge: { methods: ['merge-all'] } }, 'merge.methods.0'],
      [{ eval: { bytes: 10 } }, 'eval.bytes'],
      [{ id: 'Has Spaces' }, 'id'],
      [{ surprise: true }, ''],
    ];
    for (const [spec, path] of cases) {
      const response = await api(cluster, 'POST', '/v1/runs', typeof spec === 'string' ? spec : spec);
      assert.equal(response.status, 400, `${JSON.stringify(spec)} → ${response.status}`);
      assert.equal(typeof response.body.error, 'string');
      if (path) {
        const fields = response.body.fields as { path: string }[];
        assert.ok(
          fields.some((field) => field.path === path),
          `${JSON.stringify(spec)}: fields ${JSON.stringify(fields)}`,
        );
      }
    }
    assert.deepEqual(await queue.getJobCounts(), before);
    await producer.close();
  });

  it('takes a run from a plain BullMQ producer, validating its payload', async () => {
    const producer = producerQueue(cluster);
    const { queue } = producer;
    await queue.add('seed', { runId: 'producer-run', role: 'seed', spec: SMALL_RUN }, { jobId: 'producer-run.seed' });
    const bad = await queue.add('seed', { runId: 'bad-producer-run', role: 'seed', spec: { domains: ['poetry'] } });
    const run = await finished(cluster, 'producer-run');
    assert.equal(run.status, 'completed', run.error);
    const failed = await waitFor(
      async () => ((await bad.getState()) === 'failed' ? await queue.getJob(bad.id as string) : undefined),
      30_000,
      'the invalid producer job to fail',
    );
    assert.match(failed?.failedReason ?? '', /domains\.0: unknown Brown domain/);
    assert.equal(failed?.attemptsMade, 1, 'a bad payload is not retried');
    assert.equal((await api(cluster, 'GET', '/v1/runs/bad-producer-run')).status, 404);
    await producer.close();
  });

  it('cancels a run: every job stops within 10 s and nothing is marked complete', async () => {
    await api(cluster, 'POST', '/v1/runs', { ...SMALL_RUN, id: 'cancelled-run', seed: { steps: 5000 } });
    await waitFor(
      async () => {
        const seed = (await runView(cluster, 'cancelled-run')).jobs[0];
        return seed.state === 'active' && typeof seed.progress === 'object' ? true : undefined;
      },
      60_000,
      'the seed to start training',
    );
    const started = Date.now();
    assert.equal((await api(cluster, 'DELETE', '/v1/runs/cancelled-run')).status, 202);
    const run = await waitFor(
      async () => {
        const view = await runView(cluster, 'cancelled-run');
        return view.jobs.every((job) => job.state !== 'active') ? view : undefined;
      },
      10_000,
      'every job to stop',
    );
    assert.ok(Date.now() - started <= 10_000);
    assert.equal(run.status, 'cancelled');
    assert.ok(run.jobs.every((job) => job.state !== 'completed'));
  });

  it('survives kill -9 of a worker mid-training: another worker resumes from the checkpoint', async () => {
    await api(cluster, 'POST', '/v1/runs', { ...SMALL_RUN, id: 'killed-run', seed: { steps: 40 } });
    const seedJobStep = async () => {
      const seed = (await runView(cluster, 'killed-run')).jobs[0];
      const step = (seed.progress as { step?: number }).step ?? 0;
      return seed.state === 'active' && step >= 8 ? step : undefined;
    };
    await waitFor(seedJobStep, 120_000, 'the seed to pass a checkpoint');
    // Kill every worker so the one holding the job surely dies, then start a fresh one.
    for (const worker of cluster.workers) worker.kill('SIGKILL');
    cluster.addWorker();
    const run = await finished(cluster, 'killed-run');
    assert.equal(run.status, 'completed', run.error);
    const metrics = (await api(cluster, 'GET', '/v1/runs/killed-run/metrics')).body.points as {
      job: string;
      resumedFromStep?: number;
    }[];
    const resumed = metrics.find((point) => point.job === 'seed' && point.resumedFromStep !== undefined);
    assert.ok(resumed && (resumed.resumedFromStep as number) >= 8, `no resume recorded: ${JSON.stringify(resumed)}`);
  });

  it('on SIGTERM a worker checkpoints and hands its job back at once; the next worker resumes it', async () => {
    await api(cluster, 'POST', '/v1/runs', { ...SMALL_RUN, id: 'sigterm-run', seed: { steps: 40 } });
    await waitFor(
      async () => {
        const seed = (await runView(cluster, 'sigterm-run')).jobs[0];
        return seed.state === 'active' && ((seed.progress as { step?: number }).step ?? 0) >= 3 ? true : undefined;
      },
      120_000,
      'the seed to train a few steps',
    );
    const live = cluster.workers.filter((worker) => worker.exitCode === null && worker.signalCode === null);
    const stopped = live.map((worker) => new Promise((done) => worker.once('exit', done)));
    for (const worker of live) worker.kill('SIGTERM');
    await Promise.all(stopped);
    // Run views are cached for a second: the handed-back job shows within a moment, not a lock timeout.
    await waitFor(
      async () => {
        const seed = (await runView(cluster, 'sigterm-run')).jobs[0];
        return ['waiting', 'delayed'].includes(seed.state) ? true : undefined;
      },
      3_000,
      'the job to be back in the queue',
    );
    cluster.addWorker();
    const run = await finished(cluster, 'sigterm-run');
    assert.equal(run.status, 'completed', run.error);
    const metrics = (await api(cluster, 'GET', '/v1/runs/sigterm-run/metrics')).body.points as {
      job: string;
      resumedFromStep?: number;
    }[];
    assert.ok(
      metrics.some((point) => point.job === 'seed' && (point.resumedFromStep ?? 0) >= 3),
      'resumed from the SIGTERM checkpoint',
    );
  });

  it('trains one expert on two replicas over peer links, and finishes it when one is killed mid-run', async () => {
    // Earlier tests stop workers: make sure two are up, one per replica.
    const alive = () => cluster.workers.filter((worker) => worker.exitCode === null && worker.signalCode === null);
    while (alive().length < 2) cluster.addWorker();
    const spec: RunSpecInput = {
      ...SMALL_RUN,
      id: 'replica-run',
      experts: [{ domain: 'press', steps: 80, replicas: 2 }],
      localSgd: { innerSteps: 4 },
    };
    assert.equal((await api(cluster, 'POST', '/v1/runs', spec)).status, 202);
    type Point = {
      job: string;
      kind?: string;
      replica?: number;
      replicas?: number;
      bytesSent?: number;
      round?: number;
    };
    const points = async () => (await api(cluster, 'GET', '/v1/runs/replica-run/metrics')).body.points as Point[];
    await waitFor(
      async () => ((await points()).some((p) => p.kind === 'round' && p.replicas === 2) ? true : undefined),
      120_000,
      'a round with both replicas',
    );
    // One replica's worker dies without warning; its job is retried on a fresh worker.
    alive()[0].kill('SIGKILL');
    cluster.addWorker();
    const run = await finished(cluster, 'replica-run');
    assert.equal(run.status, 'completed', run.error);
    const rounds = (await points()).filter((p) => p.kind === 'round' && p.job === 'expert:press');
    assert.ok(rounds.every((p) => (p.bytesSent as number) > 0 || p.replicas === 1));
    const last = Math.max(...rounds.map((p) => p.round as number));
    assert.ok(last >= 80 / 2 / 4, `only ${last} rounds`);
    const experts = run.jobs.filter((job) => job.name === 'expert');
    assert.equal(experts.length, 2);
    assert.ok(experts.every((job) => job.state === 'completed'));
    assert.ok(run.rows?.some((row) => row.model === 'expert:press'));
  });
});
