/**
 * `grove up` as a user runs it: it generates a token, prints it with the dashboard link, keeps
 * it in a file only its user can read, and the CLI finds it there; `--no-auth` opts out;
 * `--workers 0` runs the API and the merge service alone.
 */
import assert from 'node:assert/strict';
import { type ChildProcess, spawn, spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { freePort } from '@grove/jobs';

const GROVE = join(import.meta.dirname, '..', 'bin', 'grove.mjs');

/** Starts `grove up` and resolves once it has printed where the dashboard is. */
async function groveUp(state: string, port: number, ...args: string[]) {
  const child = spawn(process.execPath, [GROVE, 'up', '--workers', '0', '--port', String(port), ...args], {
    env: { ...process.env, GROVE_STATE_DIR: state, GROVE_API_TOKEN: '' },
    stdio: ['ignore', 'ignore', 'pipe'],
  });
  let output = '';
  child.stderr?.setEncoding('utf8');
  await new Promise<void>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`grove up did not start within 60 s: ${output}`)), 60_000);
    child.stderr?.on('data', (chunk) => {
      output += chunk;
      if (/^dashboard /m.test(output)) {
        clearTimeout(timer);
        resolve();
      }
    });
    child.once('exit', (code) => reject(new Error(`grove up exited ${code}: ${output}`)));
  });
  return { child, output };
}

function stop(child: ChildProcess): Promise<void> {
  return new Promise((done) => {
    child.once('exit', () => done());
    child.kill('SIGINT');
  });
}

describe('grove up access', { timeout: 180_000 }, () => {
  it('requires the token it prints and stores, which the CLI then uses', async () => {
    const state = mkdtempSync(join(tmpdir(), 'grove-up-'));
    const port = await freePort();
    const api = `http://127.0.0.1:${port}`;
    const { child, output } = await groveUp(state, port);
    try {
      assert.match(output, /0 workers/);
      const token = /^token (\S+)/m.exec(output)?.[1] ?? '';
      assert.ok(token.length >= 32, output);
      assert.match(output, new RegExp(`^dashboard ${api}/ui\\?token=${token}$`, 'm'));
      const file = join(state, 'api-token');
      assert.equal(readFileSync(file, 'utf8').trim(), token);
      assert.equal(statSync(file).mode & 0o777, 0o600, 'only this user can read the token');

      assert.equal((await fetch(`${api}/v1/runs`)).status, 401);
      assert.equal((await fetch(`${api}/v1/runs`, { headers: { authorization: `Bearer ${token}` } })).status, 200);
      const status = spawnSync(process.execPath, [GROVE, 'status', '--api', api], {
        encoding: 'utf8',
        env: { ...process.env, GROVE_STATE_DIR: state, GROVE_API_TOKEN: '' },
      });
      assert.equal(status.status, 0, status.stderr);
      const elsewhere = spawnSync(process.execPath, [GROVE, 'status', '--api', api], {
        encoding: 'utf8',
        env: { ...process.env, GROVE_STATE_DIR: mkdtempSync(join(tmpdir(), 'grove-other-')), GROVE_API_TOKEN: '' },
      });
      assert.equal(elsewhere.status, 1, 'without the token file the CLI is refused');
      assert.match(elsewhere.stderr, /valid token is required/);
    } finally {
      await stop(child);
    }
  });

  it('serves without a token with --no-auth', async () => {
    const state = mkdtempSync(join(tmpdir(), 'grove-up-open-'));
    const port = await freePort();
    const { child, output } = await groveUp(state, port, '--no-auth');
    try {
      assert.doesNotMatch(output, /^token /m);
      assert.equal((await fetch(`http://127.0.0.1:${port}/v1/runs`)).status, 200);
    } finally {
      await stop(child);
    }
  });
});
