/**
 * Who may reach the API, over a real socket against a real Redis: every spelling of a path
 * needs a token, the dashboard trades its token for a session cookie, cookies need the CSRF
 * header to change anything, idempotency keys are bounded and belong to their caller, and a
 * foreign Host is refused.
 */
import assert from 'node:assert/strict';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { buildApi } from '@grove/api/server';
import type { RunScheduler } from '@grove/jobs';
import type { Redis } from 'ioredis';
import { type ListeningApi, listenApi, send as sendTo, storedKeys } from './api-server.js';

const RUN = JSON.stringify({ domains: ['press'] });
const JSON_BODY = { 'content-type': 'application/json' };

describe('API access control', () => {
  const state = mkdtempSync(join(tmpdir(), 'grove-api-auth-'));
  let api: ListeningApi;
  let connection: Redis;
  let scheduler: RunScheduler;
  const bearer = (token: string) => ({ authorization: `Bearer ${token}` });
  const send = (method: string, path: string, headers?: Record<string, string>, body?: string) =>
    sendTo(api.port, method, path, headers, body);

  before(async () => {
    api = await listenApi(state, ['alpha', 'beta']);
    ({ connection, scheduler } = api);
  });
  after(() => api.stop());

  it('refuses every spelling of a protected path without a token', async () => {
    const cases: [string, string][] = [
      ['GET', '/%76%31/runs'],
      ['GET', '/v1/%72uns'],
      ['POST', '/%76%31/runs'],
      ['DELETE', '/%76%31/runs/some-run'],
      ['GET', '/%75i/queues/'],
      ['GET', '/%75i'],
      ['GET', '/%6detrics'],
      ['GET', '/metrics'],
      ['GET', '/openapi.json'],
      ['GET', '/v1/runs/some-run/artifacts/report.html'],
      ['GET', '/no/such/route'],
      ['GET', '/%76%31/no-such-route'],
    ];
    for (const [method, path] of cases) {
      const answer = await send(method, path, method === 'POST' ? JSON_BODY : {}, method === 'POST' ? RUN : undefined);
      assert.equal(answer.status, 401, `${method} ${path} → ${answer.status} ${answer.body.slice(0, 80)}`);
      assert.doesNotMatch(answer.body, /route|runs/i, `${method} ${path} says nothing about what exists`);
    }
    assert.deepEqual(
      (await scheduler.runs.list()).map((run) => run.id),
      [],
      'no run was created',
    );
    for (const path of ['/healthz', '/readyz', '/%68ealthz'])
      assert.equal((await send('GET', path)).status, 200, `${path} needs no token`);
    assert.equal((await send('GET', '/%76%31/runs', bearer('alpha'))).status, 200, 'decoded routes still work');
    assert.equal((await send('GET', '/v1/runs', bearer('alphax'))).status, 401);
    assert.equal((await send('GET', '/v1/runs', bearer('alph'))).status, 401);
  });

  it('refuses a Host that is not this server (DNS rebinding)', async () => {
    const rebound = await send('GET', '/healthz', { host: 'attacker.example' });
    assert.equal(rebound.status, 421);
    assert.match(rebound.body, /GROVE_API_HOSTS/);
    assert.equal((await send('GET', '/v1/runs', { ...bearer('alpha'), host: 'attacker.example:80' })).status, 421);
    for (const host of [`127.0.0.1:${api.port}`, `localhost:${api.port}`, `[::1]:${api.port}`])
      assert.equal((await send('GET', '/healthz', { host })).status, 200, host);
  });

  it('trades a dashboard token for an expiring HttpOnly session cookie and takes the token out of the address', async () => {
    assert.equal((await send('GET', '/ui?token=wrong')).status, 401);
    const exchange = await send('GET', '/ui?token=alpha');
    assert.equal(exchange.status, 303);
    assert.equal(exchange.headers.location, '/ui');
    const cookie = String(exchange.headers['set-cookie']);
    assert.match(cookie, /^grove_session=[\w-]{40,};/);
    assert.match(cookie, /HttpOnly/);
    assert.match(cookie, /SameSite=Strict/);
    assert.match(cookie, /Max-Age=\d+/);
    assert.doesNotMatch(cookie, /alpha/, 'the token never goes into a cookie');
    const session = cookie.split(';')[0];

    assert.equal((await send('GET', '/ui', { cookie: session })).status, 200);
    assert.equal((await send('GET', '/v1/runs', { cookie: session })).status, 200, 'the dashboard reads runs');
    assert.equal((await send('GET', '/v1/runs', { cookie: 'grove_session=forged' })).status, 401);
    // The raw token in a cookie or the query string is no credential for the JSON API.
    assert.equal((await send('GET', '/v1/runs', { cookie: 'grove_token=alpha' })).status, 401);
    assert.equal((await send('GET', '/v1/runs?token=alpha')).status, 401);

    const forged = await send('POST', '/v1/runs', { ...JSON_BODY, cookie: session }, RUN);
    assert.equal(forged.status, 403, 'a cookie alone cannot change anything (CSRF)');
    assert.match(forged.body, /x-grove-ui/);
    const fromDashboard = await send('POST', '/v1/runs', { ...JSON_BODY, cookie: session, 'x-grove-ui': '1' }, RUN);
    assert.equal(fromDashboard.status, 202);
  });

  it('bounds idempotency keys and keeps each caller’s keys its own', async () => {
    const submit = (token: string, key: string) =>
      send('POST', '/v1/runs', { ...JSON_BODY, ...bearer(token), 'idempotency-key': key }, RUN);
    const huge = await submit('alpha', 'k'.repeat(12_000));
    assert.equal(huge.status, 400);
    assert.equal(JSON.parse(huge.body).fields[0].path, 'idempotency-key');
    assert.equal((await submit('alpha', 'k'.repeat(201))).status, 400);
    assert.equal((await submit('alpha', 'tab\there')).status, 400);
    assert.deepEqual(await storedKeys(connection, 'grove:idempotency:*'), [], 'a refused key is not stored');

    const first = JSON.parse((await submit('alpha', 'nightly-1')).body);
    const again = JSON.parse((await submit('alpha', 'nightly-1')).body);
    const other = JSON.parse((await submit('beta', 'nightly-1')).body);
    assert.equal(first.created, true);
    assert.deepEqual([again.id, again.created], [first.id, false], 'the same caller gets its run back');
    assert.equal(other.created, true, 'another caller with the same key makes its own run');
    assert.notEqual(other.id, first.id);
    for (const stored of await storedKeys(connection, 'grove:idempotency:*'))
      assert.match(stored, /^grove:idempotency:[0-9a-f]{64}$/, 'keys are stored hashed, at a fixed length');
  });

  it('sheds load with 503 and Retry-After while the event loop lags', async () => {
    // Sustained lag, as from synchronous work in handlers: every turn of the loop waits 1.5 s.
    for (let turn = 0; turn < 3; turn++) {
      const blockedUntil = Date.now() + 1_500;
      while (Date.now() < blockedUntil);
      await new Promise((wake) => setTimeout(wake, 1));
    }
    const shed = await send('GET', '/v1/runs', bearer('alpha'));
    assert.equal(shed.status, 503, shed.body);
    assert.ok(Number(shed.headers['retry-after']) > 0);
    await new Promise((wake) => setTimeout(wake, 2_500));
    assert.equal((await send('GET', '/v1/runs', bearer('alpha'))).status, 200, 'and recovers');
  });

  it('limits how fast one caller submits', async () => {
    const limited = await buildApi({ scheduler, stateFolder: state, tokens: ['alpha'], postsPerMinute: 3 });
    const post = () =>
      limited.inject({ method: 'POST', url: '/v1/runs', headers: bearer('alpha'), payload: { domains: ['press'] } });
    const statuses = [];
    for (let i = 0; i < 4; i++) statuses.push((await post()).statusCode);
    assert.deepEqual(statuses, [202, 202, 202, 429]);
    await limited.close();
  });
});
