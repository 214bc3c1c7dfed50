import assert from 'node:assert/strict';
import { describe, it, mock } from 'node:test';
import type { Redis } from 'ioredis';
import { failureLog } from './failures.js';
import { workerMetrics } from './metrics.js';

const settle = () => new Promise((wake) => setImmediate(wake));

describe('failures of work nobody waits for', () => {
  it('are logged once per interval, with how many were not', async (t) => {
    const log = t.mock.method(console, 'error', () => {});
    const failed = failureLog('updating job progress', 50);
    for (let i = 0; i < 3; i++) failed(Promise.reject(new Error('Connection is closed.')));
    failed(Promise.resolve());
    await settle();
    await new Promise((wake) => setTimeout(wake, 60));
    failed(Promise.reject(new Error('Connection is closed.')));
    await settle();
    assert.deepEqual(
      log.mock.calls.map((call) => call.arguments[0]),
      [
        'worker: updating job progress failed: Connection is closed.',
        'worker: updating job progress failed: Connection is closed. (and 2 more times since the last report)',
      ],
    );
  });

  it('in metrics publishing are logged, not swallowed', async (t) => {
    const log = t.mock.method(console, 'error', () => {});
    const unreachable = new Error('Connection is closed.');
    const redis = {
      hset: mock.fn(async () => Promise.reject(unreachable)),
      hdel: async () => Promise.reject(unreachable),
    };
    const metrics = workerMetrics(redis as unknown as Redis);
    await new Promise((wake) => setTimeout(wake, 50));
    await metrics.close();
    assert.ok(redis.hset.mock.callCount() >= 1);
    const lines = log.mock.calls.map((call) => String(call.arguments[0]));
    assert.ok(lines.includes('worker: publishing metrics failed: Connection is closed.'), lines.join('\n'));
    assert.ok(lines.includes('worker: withdrawing metrics failed: Connection is closed.'), lines.join('\n'));
  });
});
