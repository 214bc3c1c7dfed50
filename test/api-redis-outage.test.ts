/**
 * The API process against a Redis that stops answering (SIGSTOP) and then dies (SIGKILL):
 * requests get 503 with Retry-After at once instead of hanging, /readyz answers within a
 * second, and a submission the client gave up on is not applied when Redis comes back.
 */
import assert from 'node:assert/strict';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { startApi } from '@grove/api';
import { connectRedis, freePort, type PrivateRedis, startPrivateRedis } from '@grove/jobs';
import type { Redis } from 'ioredis';
import { pino } from 'pino';
import { storedKeys } from './api-server.js';

const AUTH = { authorization: 'Bearer secret', 'content-type': 'application/json' };

describe('API during a Redis outage', { timeout: 120_000 }, () => {
  const state = mkdtempSync(join(tmpdir(), 'grove-api-outage-'));
  let redis: PrivateRedis;
  let probe: Redis;
  let api: Awaited<ReturnType<typeof startApi>>;
  let url: string;

  const timed = async (path: string, init: RequestInit = {}) => {
    const started = Date.now();
    const response = await fetch(`${url}${path}`, { ...init, signal: init.signal ?? AbortSignal.timeout(10_000) });
    return { response, ms: Date.now() - started };
  };
  const submit = (id: string, signal?: AbortSignal) =>
    timed('/v1/runs', { method: 'POST', headers: AUTH, body: JSON.stringify({ id, domains: ['press'] }), signal });

  before(async () => {
    redis = await startPrivateRedis(state);
    probe = connectRedis(redis.url);
    probe.on('error', () => {}); // refused once Redis is killed: expected
    const port = await freePort();
    process.env.GROVE_STATE_DIR = state;
    api = await startApi({
      redisUrl: redis.url,
      host: '127.0.0.1',
      port,
      tokens: ['secret'],
      logger: pino({ level: 'silent' }),
    });
    url = `http://127.0.0.1:${port}`;
  });
  after(async () => {
    redis.process.kill('SIGCONT');
    await api?.stop();
    probe?.disconnect();
    await redis?.stop();
  });

  it('answers 503 with Retry-After while Redis is stopped, and applies nothing abandoned', async () => {
    assert.equal((await submit('before-outage')).response.status, 202);
    redis.process.kill('SIGSTOP');

    const during = await submit('during-outage');
    assert.equal(during.response.status, 503, await during.response.text());
    assert.ok(Number(during.response.headers.get('retry-after')) > 0, 'Retry-After says when to come back');
    assert.ok(during.ms < 2_000, `POST took ${during.ms} ms`);

    const ready = await timed('/readyz');
    assert.equal(ready.response.status, 503);
    assert.ok(ready.ms < 1_000, `/readyz took ${ready.ms} ms`);

    // A client that gives up early.
    await assert.rejects(submit('abandoned', AbortSignal.timeout(200)));
    await new Promise((wake) => setTimeout(wake, 2_500));

    redis.process.kill('SIGCONT');
    for (let i = 0; (await timed('/readyz')).response.status !== 200; i++) {
      assert.ok(i < 50, 'ready again once Redis answers');
      await new Promise((wake) => setTimeout(wake, 100));
    }
    await new Promise((wake) => setTimeout(wake, 500));
    assert.deepEqual(
      (await storedKeys(probe, 'grove:run:*')).filter((key) => !key.startsWith('grove:run:before-outage')),
      [],
      'nothing of the refused or abandoned submissions reached Redis',
    );
    assert.equal(
      (await storedKeys(probe, 'bull:*:during-outage*')).length + (await storedKeys(probe, 'bull:*:abandoned*')).length,
      0,
    );
    const retried = await submit('abandoned');
    assert.equal(retried.response.status, 202, 'the retry creates the run');
  });

  it('answers 503 at once when Redis is gone', async () => {
    redis.process.kill('SIGKILL');
    await new Promise((wake) => setTimeout(wake, 200));
    const post = await submit('after-death');
    assert.equal(post.response.status, 503);
    assert.ok(post.ms < 2_000, `POST took ${post.ms} ms`);
    const listed = await timed('/v1/runs', { headers: AUTH });
    assert.equal(listed.response.status, 503);
    assert.ok(listed.response.headers.get('retry-after'));
    const ready = await timed('/readyz');
    assert.equal(ready.response.status, 503);
    assert.ok(ready.ms < 1_000, `/readyz took ${ready.ms} ms`);
  });
});
