/**
 * The dashboard in a real browser (Debian's chromium through playwright-core) and the
 * Prometheus endpoint, on a small finished run with a two-replica expert. Screenshots go to
 * test-artifacts/.
 */
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { type Cluster, startCluster } from '@grove/cli/cluster';
import type { RunSpecInput } from '@grove/jobs';
import { type Browser, chromium, type Page } from 'playwright-core';

const CHROMIUM = process.env.GROVE_CHROMIUM ?? '/usr/bin/chromium';
const ROOT = join(import.meta.dirname, '..');
const ARTIFACTS = join(ROOT, 'test-artifacts');
const RUN: RunSpecInput = {
  id: 'ui-run',
  domains: ['press', 'fiction'],
  seed: { steps: 6 },
  experts: [
    { domain: 'press', steps: 16, replicas: 2 },
    { domain: 'fiction', steps: 4 },
  ],
  localSgd: { innerSteps: 4 },
  training: { batchSize: 2, learningRate: 3e-3, warmupSteps: 2, checkpointEvery: 4, seed: 1 },
  eval: { bytes: 2048 },
};

interface Point {
  job: string;
  replica?: number;
  kind?: string;
  loss?: number;
}

describe('dashboard and metrics', { timeout: 600_000 }, () => {
  let cluster: Cluster;
  const auth = () => ({ authorization: `Bearer ${cluster.token}` });
  let browser: Browser;
  let page: Page;

  before(async () => {
    mkdirSync(ARTIFACTS, { recursive: true });
    cluster = await startCluster({
      stateFolder: mkdtempSync(join(tmpdir(), 'grove-ui-')),
      workers: 2,
      env: { GROVE_BACKEND: 'wasm' },
    });
    const submitted = await fetch(`${cluster.apiUrl}/v1/runs`, {
      method: 'POST',
      headers: { 'content-type': 'application/json', ...auth() },
      body: JSON.stringify(RUN),
    });
    assert.equal(submitted.status, 202);
    for (;;) {
      const run = (await (await fetch(`${cluster.apiUrl}/v1/runs/ui-run`, { headers: auth() })).json()) as {
        status: string;
        error?: string;
      };
      if (run.status === 'completed') break;
      assert.ok(!['failed', 'cancelled'].includes(run.status), run.error);
      await new Promise((resolve) => setTimeout(resolve, 500));
    }
    browser = await chromium.launch({ executablePath: CHROMIUM, args: ['--no-sandbox'] });
    page = await browser.newPage({ viewport: { width: 1400, height: 1100 } });
  });
  after(async () => {
    await browser?.close();
    await cluster?.stop();
  });

  it('lists the run and shows its job graph, curves, eval table and sampled text', async () => {
    // The printed link carries the token; the page trades it for a session cookie and drops it from the address.
    await page.goto(cluster.dashboardUrl);
    assert.equal(page.url(), `${cluster.apiUrl}/ui`);
    await page.click('a[href="#/runs/ui-run"]');
    await page.waitForSelector('#eval-table');
    await page.waitForSelector('[data-chart="loss"] canvas');

    // Job graph: seed, two press replicas, one fiction expert, merge, eval — all done.
    const states = await page.$$eval('.job', (jobs) => jobs.map((job) => (job as HTMLElement).dataset.state));
    assert.deepEqual(states, Array(6).fill('completed'));
    assert.equal(await page.textContent('#run-status'), 'completed');

    // One curve per training job and replica, one bytes-per-round curve per replica that synced.
    const points = (
      (await (await fetch(`${cluster.apiUrl}/v1/runs/ui-run/metrics`, { headers: auth() })).json()) as {
        points: Point[];
      }
    ).points;
    const label = (p: Point) => `${p.job}#${p.replica ?? ''}`;
    const trained = new Set(points.filter((p) => p.kind !== 'round' && p.loss !== undefined).map(label));
    const synced = new Set(points.filter((p) => p.kind === 'round').map(label));
    assert.ok(synced.size >= 1, 'the press replicas recorded rounds');
    const series = async (name: string) => Number(await page.getAttribute(`[data-chart="${name}"]`, 'data-series'));
    assert.equal(await series('loss'), trained.size);
    assert.equal(await series('bytes'), synced.size);
    assert.equal(await series('time'), 2 * synced.size);
    for (const name of ['loss', 'bytes', 'compression', 'time']) {
      const drawn = await page.$eval(`[data-chart="${name}"] canvas`, (canvas) => {
        const c = canvas as HTMLCanvasElement;
        const pixels = c.getContext('2d')?.getImageData(0, 0, c.width, c.height).data ?? [];
        let inked = 0;
        for (let i = 3; i < pixels.length; i += 4) if (pixels[i] > 0) inked++;
        return inked;
      });
      assert.ok(drawn > 500, `${name}: ${drawn} pixels drawn`);
    }

    // The table: every model of the run, per domain.
    const models = await page.$$eval('#eval-table tr td:first-child', (cells) => cells.map((cell) => cell.textContent));
    assert.deepEqual(models.sort(), ['expert:fiction', 'expert:press', 'merged:linear', 'merged:posterior', 'seed']);
    await page.screenshot({ path: join(ARTIFACTS, 'dashboard-run.png'), fullPage: true });

    // Sampling from the merged model.
    await page.selectOption('#sample-model', 'merged/linear');
    await page.fill('#sample-prompt', 'The jury ');
    await page.click('#sample-button');
    await page.waitForSelector('#sample-output[data-done="true"]');
    const text = (await page.textContent('#sample-output')) as string;
    assert.ok(text.startsWith('The jury ') && text.length > 'The jury '.length + 50, text);
    await page.screenshot({ path: join(ARTIFACTS, 'dashboard-sample.png'), fullPage: true });
  });

  it('writes a self-contained report.html that opens offline', async () => {
    const url = `${cluster.apiUrl}/v1/runs/ui-run/artifacts/report.html`;
    let response = await fetch(url, { headers: auth() });
    if (response.status === 503) {
      // Sampling just before ran in the API's event loop, which sheds load until it recovers: come back as told.
      await new Promise((wake) => setTimeout(wake, Number(response.headers.get('retry-after')) * 1000));
      response = await fetch(url, { headers: auth() });
    }
    assert.equal(response.status, 200);
    const report = await response.text();
    assert.doesNotMatch(report, /(src|href)="https?:/, 'the report loads nothing from the network');
    const file = join(ARTIFACTS, 'report.html');
    writeFileSync(file, report);
    const offline = await browser.newPage();
    await offline.route('**/*', (route) =>
      route.request().url().startsWith('file:') ? route.continue() : route.abort(),
    );
    await offline.goto(`file://${file}`);
    await offline.waitForSelector('[data-chart="loss"] canvas');
    assert.equal(await offline.$$eval('#eval-table tr', (rows) => rows.length), 6);
    await offline.screenshot({ path: join(ARTIFACTS, 'report.png'), fullPage: true });
    await offline.close();
  });

  it('follows a run from the CLI: `grove logs` lines and `grove status` without a terminal', () => {
    const grove = (...args: string[]) =>
      spawnSync(process.execPath, [join(ROOT, 'bin', 'grove.mjs'), ...args, '--api', cluster.apiUrl], {
        encoding: 'utf8',
        env: { ...process.env, GROVE_API_TOKEN: cluster.token },
      });
    const logs = grove('logs', 'ui-run');
    assert.equal(logs.status, 0, logs.stderr);
    assert.match(logs.stdout, /expert:press#1 +round 1: 2 replicas, \d+ steps, [\d.]+ MB sent/);
    assert.match(logs.stdout, /seed +step 6 +loss \d/);
    assert.match(logs.stdout, /ui-run\.eval completed/);
    assert.match(logs.stdout, /run ui-run completed/);
    const status = grove('status', 'ui-run');
    assert.equal(status.status, 0, status.stderr);
    assert.match(status.stdout, /expert:press#1 +completed/);
    assert.doesNotMatch(status.stdout, /█/, 'no bars outside a terminal');
  });

  it('serves Bull Board with the run’s jobs', async () => {
    await page.goto(`${cluster.apiUrl}/ui/queues/queue/grove-train?status=completed`);
    await page.waitForFunction(() => document.body.innerText.includes('ui-run.expert.press.1'), undefined, {
      timeout: 30_000,
    });
    await page.screenshot({ path: join(ARTIFACTS, 'bull-board.png'), fullPage: true });
  });

  it('exposes queue, job, worker and Local-SGD series on /metrics', async () => {
    const value = (text: string, series: RegExp) => {
      const line = text.split('\n').find((l) => series.test(l));
      return line === undefined ? Number.NaN : Number(line.split(' ').at(-1));
    };
    // Workers publish every few seconds: wait for the last job's numbers.
    let text = '';
    for (let i = 0; i < 20; i++) {
      text = await (await fetch(`${cluster.apiUrl}/metrics`, { headers: auth() })).text();
      if (value(text, /^grove_localsgd_rounds_total\{/) > 0) break;
      await new Promise((resolve) => setTimeout(resolve, 500));
    }
    assert.ok(value(text, /^grove_queue_jobs\{queue="grove-train",state="completed"\}/) >= 4, 'train jobs completed');
    assert.equal(value(text, /^grove_queue_jobs\{queue="grove-train",state="failed"\}/), 0);
    assert.ok(value(text, /^grove_job_duration_seconds_count\{.*name="eval",outcome="completed"/) >= 1);
    assert.ok(value(text, /^grove_api_process_cpu_seconds_total/) > 0);
    assert.ok(value(text, /^grove_worker_process_cpu_seconds_total\{/) > 0);
    assert.ok(value(text, /^grove_worker_steps_total\{.*job="expert:press#1"/) >= 1);
    const sent = text.split('\n').filter((line) => line.startsWith('grove_peer_bytes_sent_total{'));
    assert.ok(
      sent.some((line) => Number(line.split(' ').at(-1)) > 0),
      sent.join('\n'),
    );
    assert.ok(value(text, /^grove_localsgd_sync_seconds_count\{/) >= 1);
  });
});
