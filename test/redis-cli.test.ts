/** `grove up` as a user runs it: its private Redis asks for a password the printed URL does not show. */
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { mkdtempSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { freePort } from '@grove/jobs';

const GROVE = join(import.meta.dirname, '..', 'bin', 'grove.mjs');

describe('grove up and its Redis', () => {
  it('prints the Redis URL without the password it keeps in a 0600 file', { timeout: 90_000 }, async () => {
    const state = mkdtempSync(join(tmpdir(), 'grove-up-'));
    const port = await freePort();
    const up = spawn(process.execPath, [GROVE, 'up', '--workers', '1', '--port', String(port)], {
      env: { ...process.env, GROVE_STATE_DIR: state, GROVE_BACKEND: 'wasm', REDIS_URL: '' },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let printed = '';
    const exited = new Promise<number | null>((done) => up.once('exit', (code) => done(code)));
    await new Promise<void>((ready, fail) => {
      up.stderr.on('data', (chunk) => {
        printed += chunk;
        if (printed.includes('grove is up')) ready();
      });
      exited.then((code) => fail(new Error(`grove up exited with ${code}: ${printed}`)));
    });
    up.kill('SIGINT');
    assert.equal(await exited, 0);
    const password = readFileSync(join(state, 'redis', 'grove.password'), 'utf8').trim();
    assert.match(password, /^[0-9a-f]{48}$/);
    assert.ok(!printed.includes(password), 'the password is not printed');
    assert.match(printed, /redis redis:\/\/grove:\*\*\*@127\.0\.0\.1:\d+,/);
  });
});
