/** The REST API in process against a real Redis: auth, documents, errors that never become 5xx. */
import assert from 'node:assert/strict';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { startApi } from '@grove/api';
import { buildApi } from '@grove/api/server';
import { connectRedis, type PrivateRedis, RunScheduler, startPrivateRedis } from '@grove/jobs';
import type { FastifyInstance } from 'fastify';
import type { Redis } from 'ioredis';

describe('REST API', () => {
  const state = mkdtempSync(join(tmpdir(), 'grove-api-'));
  let redis: PrivateRedis;
  let connection: Redis;
  let scheduler: RunScheduler;
  let app: FastifyInstance;
  const auth = { authorization: 'Bearer secret' };

  before(async () => {
    redis = await startPrivateRedis(state);
    connection = connectRedis(redis.url);
    scheduler = new RunScheduler(connection);
    app = await buildApi({ scheduler, stateFolder: state, tokens: ['secret'] });
  });
  after(async () => {
    await app.close();
    await scheduler.close();
    connection.disconnect();
    await redis.stop();
  });

  it('requires a valid bearer token on /v1, not on health checks', async () => {
    assert.equal((await app.inject({ method: 'GET', url: '/v1/runs' })).statusCode, 401);
    assert.equal(
      (await app.inject({ method: 'GET', url: '/v1/runs', headers: { authorization: 'Bearer nope' } })).statusCode,
      401,
    );
    assert.equal((await app.inject({ method: 'GET', url: '/v1/runs', headers: auth })).statusCode, 200);
    assert.equal((await app.inject({ method: 'GET', url: '/healthz' })).statusCode, 200);
    assert.equal((await app.inject({ method: 'GET', url: '/readyz' })).statusCode, 200);
  });

  it('queues a submitted run and shows its planned jobs', async () => {
    const submitted = await app.inject({
      method: 'POST',
      url: '/v1/runs',
      headers: auth,
      payload: { id: 'api-run', domains: ['press', 'lore'] },
    });
    assert.equal(submitted.statusCode, 202);
    const run = (await app.inject({ method: 'GET', url: '/v1/runs/api-run', headers: auth })).json();
    assert.equal(run.status, 'queued');
    assert.equal(run.spec.seed.steps, 300, 'defaults are filled in');
    assert.deepEqual(
      run.jobs.map((job: { name: string; state: string }) => `${job.name}:${job.state}`),
      ['seed:waiting', 'expert:not-created', 'expert:not-created', 'merge:not-created', 'eval:not-created'],
    );
    const cancelled = await app.inject({ method: 'DELETE', url: '/v1/runs/api-run', headers: auth });
    assert.deepEqual([cancelled.statusCode, cancelled.json().status], [202, 'cancelled']);
    assert.equal(await scheduler.trainQueue.getJob('api-run.seed'), undefined, 'the waiting seed job was removed');
  });

  it('documents the API and the run spec in OpenAPI', async () => {
    const document = (await app.inject({ method: 'GET', url: '/openapi.json', headers: auth })).json();
    assert.ok(document.paths['/v1/runs'].post);
    const body = document.paths['/v1/runs'].post.requestBody.content['application/json'].schema;
    assert.ok(body.properties.domains && body.properties.seed && body.properties.experts);
    assert.equal((await app.inject({ method: 'GET', url: '/docs', headers: auth })).statusCode < 400, true);
  });

  it('answers unknown runs with 404, path escapes with 400, and never 5xx for bad input', async () => {
    assert.equal((await app.inject({ method: 'GET', url: '/v1/runs/nope', headers: auth })).statusCode, 404);
    assert.equal((await app.inject({ method: 'DELETE', url: '/v1/runs/nope', headers: auth })).statusCode, 404);
    const escaped = await app.inject({
      method: 'GET',
      url: '/v1/runs/api-run/artifacts/..%2F..%2Fetc%2Fpasswd',
      headers: auth,
    });
    assert.equal(escaped.statusCode, 400);
    const huge = await app.inject({
      method: 'POST',
      url: '/v1/runs',
      headers: { ...auth, 'content-type': 'application/json' },
      payload: 'x'.repeat(2_000_000),
    });
    assert.equal(huge.statusCode, 413);
    const wrongType = await app.inject({
      method: 'POST',
      url: '/v1/runs',
      headers: { ...auth, 'content-type': 'text/plain' },
      payload: 'hello',
    });
    assert.ok(wrongType.statusCode >= 400 && wrongType.statusCode < 500);
  });

  it('refuses to listen beyond loopback without tokens', async () => {
    await assert.rejects(
      startApi({ redisUrl: redis.url, host: '0.0.0.0', port: 0, tokens: [] }),
      /Refusing to serve 0.0.0.0 without GROVE_API_TOKENS/,
    );
  });
});
