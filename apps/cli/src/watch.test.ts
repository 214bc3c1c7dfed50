import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import type { RunView } from './api-client.js';
import { renderBars, renderRun } from './watch.js';

const run = {
  id: 'r1',
  status: 'running',
  jobs: [
    { id: 'r1.seed', name: 'seed', state: 'completed', progress: { step: 6, steps: 6 }, attempts: 1 },
    {
      id: 'r1.expert.press.1',
      name: 'expert',
      domain: 'press',
      replica: 1,
      state: 'active',
      progress: { step: 4, steps: 16 },
      attempts: 1,
    },
    { id: 'r1.merge', name: 'merge', state: 'waiting-children', progress: 0, attempts: 0 },
  ],
  latestMetrics: { 'expert:press#1': { step: 4, loss: 3.25 } },
} as unknown as RunView;

describe('run rendering', () => {
  it('draws a bar per job, filled by its progress', () => {
    const [title, seed, expert, merge] = renderBars(run);
    assert.equal(title, 'run r1: running');
    assert.match(seed, /^ {2}seed +█{24} completed/);
    assert.match(expert, /^ {2}expert:press#1 +█{6}░{18} active +step 4\/16 {2}loss 3\.250$/);
    assert.match(merge, /░{24} waiting-children/);
  });

  it('prints plain lines for logs', () => {
    assert.deepEqual(renderRun(run).slice(2), [
      '  expert:press#1     active           step 4/16  loss 3.250',
      '  merge              waiting-children',
    ]);
  });
});
