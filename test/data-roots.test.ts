/** The REST API in process: a run may name only folders inside the server's data roots. */
import assert from 'node:assert/strict';
import { mkdirSync, mkdtempSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { buildApi } from '@grove/api/server';
import { FOLDER_REFUSED } from '@grove/data';
import { connectRedis, type PrivateRedis, RunScheduler, startPrivateRedis } from '@grove/jobs';
import type { FastifyInstance } from 'fastify';
import type { Redis } from 'ioredis';

describe('data roots over the REST API', () => {
  const base = mkdtempSync(join(tmpdir(), 'grove-api-roots-'));
  const root = join(base, 'root');
  const docs = join(root, 'docs');
  let redis: PrivateRedis;
  let connection: Redis;
  let scheduler: RunScheduler;
  let app: FastifyInstance;
  const submit = (domains: string[]) =>
    app.inject({ method: 'POST', url: '/v1/runs', headers: { authorization: 'Bearer t' }, payload: { domains } });

  before(async () => {
    mkdirSync(docs, { recursive: true });
    mkdirSync(join(base, 'outside'));
    for (let i = 0; i < 3; i++) writeFileSync(join(docs, `doc${i}.txt`), `document ${i}`);
    symlinkSync(join(base, 'outside'), join(root, 'escape'));
    redis = await startPrivateRedis(join(base, 'state'));
    connection = connectRedis(redis.url);
    scheduler = new RunScheduler(connection);
    app = await buildApi({ scheduler, stateFolder: join(base, 'state'), tokens: ['t'] });
  });
  after(async () => {
    delete process.env.GROVE_DATA_ROOTS;
    await app.close();
    await scheduler.close();
    connection.disconnect();
    await redis.stop();
  });

  it('refuses every name=folder domain when no data roots are set', async () => {
    delete process.env.GROVE_DATA_ROOTS;
    const answer = await submit(['press', `mine=${docs}`]);
    assert.equal(answer.statusCode, 400);
    assert.deepEqual(answer.json().fields, [{ path: 'domains.1', message: FOLDER_REFUSED }]);
  });

  it('answers x=/etc, a missing folder and a symlink out of the root with the same 400', async () => {
    process.env.GROVE_DATA_ROOTS = root;
    const answers = [];
    for (const folder of ['/etc', join(root, 'absent'), join(root, 'escape'), `${root}/../outside`]) {
      const answer = await submit([`x=${folder}`]);
      assert.equal(answer.statusCode, 400, folder);
      answers.push(answer.json().fields);
    }
    for (const fields of answers) assert.deepEqual(fields, [{ path: 'domains.0', message: FOLDER_REFUSED }]);
    assert.equal(await scheduler.runs.list().then((runs) => runs.length), 0, 'nothing was queued');
  });

  it('queues a run whose folder lies inside a root', async () => {
    process.env.GROVE_DATA_ROOTS = `/nonexistent:${root}`;
    const answer = await submit(['press', `mine=${docs}`]);
    assert.equal(answer.statusCode, 202, answer.body);
  });
});
