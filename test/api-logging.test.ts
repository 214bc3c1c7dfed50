/** The API's request logs, through the shared logger: structured, and without a credential in them. */
import assert from 'node:assert/strict';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Writable } from 'node:stream';
import { after, before, describe, it } from 'node:test';
import { buildApi } from '@grove/api/server';
import { connectRedis, createLogger, type PrivateRedis, RunScheduler, startPrivateRedis } from '@grove/jobs';
import type { Redis } from 'ioredis';

describe('API logs', () => {
  const state = mkdtempSync(join(tmpdir(), 'grove-api-logs-'));
  let redis: PrivateRedis;
  let connection: Redis;
  let scheduler: RunScheduler;

  before(async () => {
    redis = await startPrivateRedis(state);
    connection = connectRedis(redis.url);
    scheduler = new RunScheduler(connection);
  });
  after(async () => {
    await scheduler.close();
    connection.disconnect();
    await redis.stop();
  });

  it('logs requests as JSON lines with tokens, cookies and Redis passwords redacted', async () => {
    const lines: string[] = [];
    const sink = new Writable({
      write(chunk, _encoding, done) {
        lines.push(...String(chunk).trim().split('\n'));
        done();
      },
    });
    const logger = createLogger('api', sink);
    const app = await buildApi({ scheduler, stateFolder: state, tokens: ['hunter2-token'], logger });
    await app.inject({ method: 'GET', url: '/v1/runs', headers: { authorization: 'Bearer hunter2-token' } });
    await app.inject({ method: 'GET', url: '/ui?token=hunter2-token' });
    await app.inject({ method: 'GET', url: '/v1/runs', headers: { cookie: 'grove_session=hunter2-session' } });
    logger.info({ password: 'hunter2-pass', config: { token: 'hunter2-nested' } }, 'settings');
    logger.warn('cannot reach redis://grove:hunter2-redis@db.example:6379 yet');
    await app.close();

    const records = lines.map((line) => JSON.parse(line));
    assert.ok(
      records.some((record) => record.req?.url === '/v1/runs'),
      'requests are logged',
    );
    assert.ok(records.some((record) => record.req?.url === '/ui?token=[Redacted]'));
    assert.ok(records.some((record) => record.msg === 'cannot reach redis://grove:[Redacted]@db.example:6379 yet'));
    assert.doesNotMatch(lines.join('\n'), /hunter2/);
  });
});
