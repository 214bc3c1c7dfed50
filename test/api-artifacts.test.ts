/**
 * Artifact reads stay inside their run's folder, over a real socket and real files: run ids
 * are checked on every route, symlinks are resolved before the check, and folders are listed
 * one level and one page at a time.
 */
import assert from 'node:assert/strict';
import { mkdirSync, mkdtempSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { type ListeningApi, listenApi, send as sendTo } from './api-server.js';

const AUTH = { authorization: 'Bearer secret' };

describe('artifact confinement and listing', () => {
  const state = mkdtempSync(join(tmpdir(), 'grove-api-files-'));
  const outside = mkdtempSync(join(tmpdir(), 'grove-outside-'));
  const run = join(state, 'runs', 'files-run');
  let api: ListeningApi;
  const send = (method: string, path: string, body?: unknown) =>
    body === undefined
      ? sendTo(api.port, method, path, AUTH)
      : sendTo(api.port, method, path, { ...AUTH, 'content-type': 'application/json' }, JSON.stringify(body));
  const get = (path: string) => send('GET', path);

  before(async () => {
    mkdirSync(join(run, 'experts', 'press'), { recursive: true });
    writeFileSync(join(run, 'report.json'), '{"ok":true}');
    writeFileSync(join(outside, 'secret.txt'), 'top secret');
    writeFileSync(join(outside, 'model.safetensors'), 'not yours');
    symlinkSync(join(outside, 'secret.txt'), join(run, 'leak.txt'));
    symlinkSync(outside, join(run, 'elsewhere'));
    symlinkSync(outside, join(run, 'experts', 'fiction'));
    api = await listenApi(state, ['secret']);
  });
  after(() => api.stop());

  it('refuses run ids that are paths, on every route', async () => {
    const climb = '..%2F'.repeat(7);
    const cases: [string, string][] = [
      ['GET', `/v1/runs/${climb}etc/artifacts/passwd`],
      ['GET', '/v1/runs/%2e%2e/artifacts/redis/'],
      ['GET', '/v1/runs/%2e%2e/artifacts/redis/appendonlydir/'],
      ['GET', '/v1/runs/%2e%2e'],
      ['DELETE', '/v1/runs/%2e%2e'],
      ['GET', '/v1/runs/%2e%2e/metrics'],
      ['GET', '/v1/runs/%2e%2e/models'],
      ['GET', '/v1/runs/%2e%2e/events'],
      ['POST', '/v1/runs/%2e%2e/experts'],
      ['POST', '/v1/runs/%2e%2e/sample'],
    ];
    for (const [method, path] of cases) {
      const answer = await send(method, path, method === 'POST' ? { domain: 'press', model: 'seed' } : undefined);
      assert.equal(answer.status, 400, `${method} ${path} → ${answer.status} ${answer.body.slice(0, 100)}`);
      assert.deepEqual(JSON.parse(answer.body).fields[0].path, 'id', `${method} ${path} names the field`);
    }
  });

  it('refuses paths and symlinks that lead out of the run folder', async () => {
    assert.equal((await get('/v1/runs/files-run/artifacts/report.json')).body, '{"ok":true}');
    for (const path of ['..%2F..%2F..%2Fetc%2Fpasswd', 'leak.txt', 'elsewhere/', 'elsewhere/secret.txt']) {
      const answer = await get(`/v1/runs/files-run/artifacts/${path}`);
      assert.equal(answer.status, 400, `${path} → ${answer.status}`);
      assert.doesNotMatch(answer.body, /top secret/);
    }
    const listing = JSON.parse((await get('/v1/runs/files-run/artifacts/')).body);
    assert.ok(listing.entries.some((entry: { name: string }) => entry.name === 'report.json'));
  });

  it('samples and lists models only inside the run folder', async () => {
    for (const model of ['experts/fiction', 'elsewhere', '../../../tmp']) {
      const answer = await send('POST', '/v1/runs/files-run/sample', { model });
      assert.equal(answer.status, 400, `${model} → ${answer.status} ${answer.body}`);
    }
    const models = JSON.parse((await get('/v1/runs/files-run/models')).body).models;
    assert.deepEqual(models, [], 'a symlinked model outside the run is not offered');
  });

  it('lists one level of a folder, a page at a time, without blocking other requests', async () => {
    const big = join(run, 'big');
    mkdirSync(join(big, 'nested', 'deeper'), { recursive: true });
    writeFileSync(join(big, 'nested', 'deeper', 'hidden.bin'), 'x');
    const names = Array.from({ length: 2_500 }, (_, i) => `file-${String(i).padStart(5, '0')}.bin`);
    for (const name of names) writeFileSync(join(big, name), 'x');

    const seen: string[] = [];
    let cursor = '';
    for (let page = 0; page < 20; page++) {
      const answer = await get(`/v1/runs/files-run/artifacts/big/?limit=1000&cursor=${encodeURIComponent(cursor)}`);
      assert.equal(answer.status, 200, answer.body);
      const { entries, next } = JSON.parse(answer.body) as { entries: { name: string }[]; next?: string };
      assert.ok(entries.length <= 1000);
      seen.push(...entries.map((entry) => entry.name));
      if (!next) break;
      cursor = next;
    }
    assert.deepEqual(seen, [...names, 'nested'], 'every entry once, in name order, one level deep');

    // While a large folder is read, health checks still answer.
    const listing = get('/v1/runs/files-run/artifacts/big/?limit=1000');
    const started = Date.now();
    assert.equal((await get('/healthz')).status, 200);
    const healthMs = Date.now() - started;
    assert.equal((await listing).status, 200);
    assert.ok(healthMs < 1_000, `/healthz took ${healthMs} ms during a listing`);

    assert.equal((await get('/v1/runs/files-run/artifacts/big/?limit=100000')).status, 400);
    assert.equal((await get('/v1/runs/files-run/artifacts/big/?limit=0')).status, 400);
  });
});
