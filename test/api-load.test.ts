/**
 * The REST API under concurrent and hostile load, listening on loopback against a real Redis:
 * racing grows of one run, many idle event-stream clients, a client that never reads.
 */
import assert from 'node:assert/strict';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { buildApi } from '@grove/api/server';
import { connectRedis, type PrivateRedis, RunScheduler, startPrivateRedis } from '@grove/jobs';
import type { FastifyInstance } from 'fastify';
import type { Redis } from 'ioredis';

describe('API under load', () => {
  const state = mkdtempSync(join(tmpdir(), 'grove-api-load-'));
  let redis: PrivateRedis;
  let connection: Redis;
  let scheduler: RunScheduler;
  let app: FastifyInstance;
  let base: string;

  before(async () => {
    redis = await startPrivateRedis(state);
    connection = connectRedis(redis.url);
    scheduler = new RunScheduler(connection);
    app = await buildApi({ scheduler, stateFolder: state, tokens: [] });
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
        headers: { 'content-type': 'application/json' },
        body: JSON.stringify({ domain: 'fiction' }),
      }).then((response) => response.status);
    const pairs = await Promise.all(ids.map((id) => Promise.all([grow(id), grow(id)])));
    for (const [index, pair] of pairs.entries())
      assert.deepEqual([...pair].sort(), [202, 409], `run ${ids[index]}: ${pair.join(', ')}`);
    for (const id of ids) assert.equal((await scheduler.runs.get(id))?.generation, 1);
  });
});
