/**
 * `grove up` as a user runs it: its private Redis asks for a password the printed URL does not
 * show, and its services read data only from the folders given with --data-root.
 */
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { mkdirSync, mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { freePort } from '@grove/jobs';

const GROVE = join(import.meta.dirname, '..', 'bin', 'grove.mjs');

describe('grove up', () => {
  it('hides the Redis password and serves only its data roots', { timeout: 120_000 }, async () => {
    const base = mkdtempSync(join(tmpdir(), 'grove-up-'));
    const state = join(base, 'state');
    const docs = join(base, 'root', 'docs');
    mkdirSync(docs, { recursive: true });
    for (let i = 0; i < 3; i++) writeFileSync(join(docs, `doc${i}.txt`), `document ${i}`);
    const port = await freePort();
    const up = spawn(
      process.execPath,
      [GROVE, 'up', '--workers', '1', '--port', String(port), '--data-root', join(base, 'root'), '--no-auth'],
      {
        env: { ...process.env, GROVE_STATE_DIR: state, GROVE_BACKEND: 'wasm', REDIS_URL: '', GROVE_DATA_ROOTS: '' },
        stdio: ['ignore', 'pipe', 'pipe'],
      },
    );
    let printed = '';
    const exited = new Promise<number | null>((done) => up.once('exit', (code) => done(code)));
    await new Promise<void>((ready, fail) => {
      up.stderr.on('data', (chunk) => {
        printed += chunk;
        if (printed.includes('grove is up')) ready();
      });
      exited.then((code) => fail(new Error(`grove up exited with ${code}: ${printed}`)));
    });
    try {
      const submit = (domains: string[]) =>
        fetch(`http://127.0.0.1:${port}/v1/runs`, {
          method: 'POST',
          headers: { 'content-type': 'application/json' },
          body: JSON.stringify({ domains, seed: { steps: 1 }, expertSteps: 1 }),
        });
      const refused = await submit([`x=/etc`]);
      assert.equal(refused.status, 400);
      assert.equal(((await refused.json()) as { fields: { path: string }[] }).fields[0].path, 'domains.0');
      const accepted = await submit([`mine=${docs}`, 'press']);
      assert.equal(accepted.status, 202, await accepted.clone().text());
      const { id } = (await accepted.json()) as { id: string };
      await fetch(`http://127.0.0.1:${port}/v1/runs/${id}`, { method: 'DELETE' });
    } finally {
      up.kill('SIGINT');
    }
    assert.equal(await exited, 0);
    const password = readFileSync(join(state, 'redis', 'grove.password'), 'utf8').trim();
    assert.match(password, /^[0-9a-f]{48}$/);
    assert.ok(!printed.includes(password), 'the password is not printed');
    assert.match(printed, /redis redis:\/\/grove:\*\*\*@127\.0\.0\.1:\d+,/);
  });
});
