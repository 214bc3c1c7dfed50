/**
 * The merge service end to end: a run that asks for every merge method, both MoE fine-tunes
 * and the dense baseline, on a real cluster with tiny budgets.
 */
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { mkdtempSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { type Cluster, startCluster } from '@grove/cli/cluster';
import type { RunSpecInput, ScoreRow } from '@grove/jobs';
import { MERGE_METHODS, type MergeMethod } from '@grove/merge';
import { loadCheckpoint } from '@grove/store';

const EVERY_METHOD_RUN: RunSpecInput = {
  id: 'every-method',
  domains: ['press', 'fiction'],
  seed: { steps: 4 },
  expertSteps: 3,
  training: { batchSize: 2, learningRate: 3e-3, warmupSteps: 1, checkpointEvery: 2, seed: 1 },
  merge: { methods: Object.keys(MERGE_METHODS) as MergeMethod[] },
  denseBaseline: true,
  eval: { bytes: 1024 },
};

interface RunView {
  status: string;
  error?: string;
  rows?: ScoreRow[];
  jobs: { id: string; name: string; state: string }[];
}

describe('merge service end to end', { timeout: 600_000 }, () => {
  let cluster: Cluster;
  const auth = () => ({ authorization: `Bearer ${cluster.token}` });
  let stateFolder: string;
  before(async () => {
    stateFolder = mkdtempSync(join(tmpdir(), 'grove-merge-'));
    cluster = await startCluster({ stateFolder, workers: 2, env: { GROVE_BACKEND: 'wasm' } });
  });
  after(async () => {
    await cluster?.stop();
  });

  it('builds and scores every method, fine-tunes BTX and DS-MoE after the merge, and trains the dense baseline', async () => {
    const submitted = await fetch(`${cluster.apiUrl}/v1/runs`, {
      method: 'POST',
      headers: { 'content-type': 'application/json', ...auth() },
      body: JSON.stringify(EVERY_METHOD_RUN),
    });
    assert.equal(submitted.status, 202);
    let run: RunView | undefined;
    const deadline = Date.now() + 500_000;
    while (Date.now() < deadline) {
      run = (await (await fetch(`${cluster.apiUrl}/v1/runs/every-method`, { headers: auth() })).json()) as RunView;
      if (['completed', 'failed', 'cancelled'].includes(run.status)) break;
      await new Promise((wake) => setTimeout(wake, 500));
    }
    assert.equal(run?.status, 'completed', run?.error);
    const rows = run?.rows ?? [];
    const models = [...new Set(rows.map((row) => row.model))];
    assert.deepEqual(models.sort(), [
      'btx',
      'btx:finetuned',
      'dense',
      'ds-moe',
      'ds-moe:dense-inference',
      'ensemble:posterior',
      'ensemble:posterior-top1',
      'ensemble:uniform',
      'expert:fiction',
      'expert:press',
      'merged:dare',
      'merged:karcher',
      'merged:linear',
      'merged:model-stock',
      'merged:multislerp',
      'merged:posterior',
      'merged:slerp',
      'merged:task-arithmetic',
      'merged:ties',
      'seed',
    ]);
    assert.equal(rows.length, models.length * 2);
    for (const row of rows) {
      assert.ok(row.bitsPerByte > 0.5 && row.bitsPerByte < 9, `${row.model} ${row.bitsPerByte}`);
      assert.ok((row.tokensPerSecond ?? 0) > 0, `${row.model} has a speed`);
    }
    // A per-byte mixture of the experts, uniform or by posterior, never does worse than its worst member.
    const score = (model: string, domain: string) =>
      rows.find((row) => row.model === model && row.domain === domain)?.bitsPerByte as number;
    for (const domain of ['press', 'fiction']) {
      const worst = Math.max(score('expert:press', domain), score('expert:fiction', domain));
      for (const ensemble of ['ensemble:uniform', 'ensemble:posterior'])
        assert.ok(score(ensemble, domain) <= worst + 1e-6, `${ensemble} on ${domain}`);
    }
    const active = (model: string) => rows.find((row) => row.model === model)?.activeParameters ?? 0;
    assert.ok(active('btx') > active('seed'), 'top-2 of 2 experts runs both feed-forward blocks');
    assert.ok(active('ds-moe') < active('ds-moe:dense-inference'), 'DS-MoE infers with one expert of two');
    assert.equal(active('ensemble:posterior-top1'), 2 * active('seed'));

    const jobs = run?.jobs ?? [];
    assert.deepEqual(jobs.map((job) => job.id).slice(-5), [
      'every-method.dense',
      'every-method.merge',
      'every-method.finetune.ds-moe',
      'every-method.finetune.btx',
      'every-method.eval',
    ]);
    assert.ok(jobs.every((job) => job.state === 'completed'));

    // The exported MoE describes itself: its config carries the experts, top-k and routing.
    const btx = loadCheckpoint(join(stateFolder, 'runs', 'every-method', 'merged', 'btx-finetuned'));
    assert.deepEqual(btx.config.moe, {
      experts: 2,
      topK: 2,
      training: 'sparse',
      threshold: 0,
      balanceCoefficient: 0.01,
    });
    assert.ok(btx.weights.has('layers.3.ffn.experts.1.down.weight'));
  });

  it('grows the finished forest by one expert from the posterior average, leaving the others byte-identical', async () => {
    const runFolder = join(stateFolder, 'runs', 'every-method');
    const expertFiles = ['press', 'fiction'].flatMap((domain) =>
      ['model.safetensors', 'state.json'].map((file) => join(runFolder, 'experts', domain, file)),
    );
    const before = expertFiles.map((file) => sha256(readFileSync(file)));
    const grow = (body: unknown, id = 'every-method') =>
      fetch(`${cluster.apiUrl}/v1/runs/${id}/experts`, {
        method: 'POST',
        headers: { 'content-type': 'application/json', ...auth() },
        body: JSON.stringify(body),
      });
    assert.equal((await grow({ domain: 'lore' }, 'no-such-run')).status, 404);
    const duplicate = await grow({ domain: 'press' });
    assert.equal(duplicate.status, 400);
    assert.match(((await duplicate.json()) as { error: string }).error, /domain "press" is listed twice/);
    const accepted = await grow({ domain: 'lore', steps: 2 });
    assert.equal(accepted.status, 202);
    assert.equal(((await accepted.json()) as { generation: number }).generation, 1);
    assert.equal((await grow({ domain: 'learned' })).status, 409, 'one growth at a time, on a finished run');

    let run: RunView | undefined;
    const deadline = Date.now() + 400_000;
    while (Date.now() < deadline) {
      run = (await (await fetch(`${cluster.apiUrl}/v1/runs/every-method`, { headers: auth() })).json()) as RunView;
      if (['completed', 'failed', 'cancelled'].includes(run.status)) break;
      await new Promise((wake) => setTimeout(wake, 500));
    }
    assert.equal(run?.status, 'completed', run?.error);
    assert.deepEqual(
      expertFiles.map((file) => sha256(readFileSync(file))),
      before,
      'no existing expert changed',
    );
    const start = loadCheckpoint(join(runFolder, 'grow', 'lore'));
    const weights = Object.values(start.state?.weights as Record<string, number>);
    assert.equal(weights.length, 2);
    assert.ok(Math.abs(weights.reduce((a, b) => a + b, 0) - 1) < 1e-9);
    const models = new Set(run?.rows?.map((row) => row.model));
    assert.ok(models.has('expert:lore'));
    assert.deepEqual(new Set(run?.rows?.map((row) => row.domain)), new Set(['press', 'fiction', 'lore']));
    const btx = loadCheckpoint(join(runFolder, 'merged', 'btx-finetuned'));
    assert.equal((btx.config.moe as { experts: number }).experts, 3);
    assert.ok(run?.jobs.some((job) => job.id === 'every-method.eval.g1' && job.state === 'completed'));
  });
});

const sha256 = (bytes: Uint8Array) => createHash('sha256').update(bytes).digest('hex');
