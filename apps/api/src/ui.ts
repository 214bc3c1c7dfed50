/**
 * The dashboard: a small static page (`ui/`, charts by uPlot) at /ui that follows a run
 * through server-sent events, Bull Board at /ui/queues, and sampling text from any model of
 * a run. Everything is served by this process, from files in the repository and in
 * node_modules: the page works without internet.
 */
import { readdirSync, readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import { createBullBoard } from '@bull-board/api';
import { BullMQAdapter } from '@bull-board/api/bullMQAdapter';
import { FastifyAdapter } from '@bull-board/fastify';
import fastifyStatic from '@fastify/static';
import type { RunScheduler } from '@grove/jobs';
import { Rng, sampleText, selectBackend } from '@grove/model';
import { loadCheckpoint, MODEL_FILE } from '@grove/store';
import { modelFromCheckpoint } from '@grove/train';
import type { FastifyInstance } from 'fastify';
import { z } from 'zod';
import { resolveInsideRun } from './artifacts.js';
import { RunIdParams } from './schemas.js';

const UI_FOLDER = join(import.meta.dirname, 'ui');
const UPLOT_FOLDER = join(dirname(createRequire(import.meta.url).resolve('uplot')), '..', 'dist');
const EVENT_INTERVAL_MS = 1_000;
const FINAL = ['completed', 'failed', 'cancelled'];

export const SampleRequest = z
  .object({
    model: z
      .string()
      .min(1)
      .max(200)
      .describe('A model folder of the run, e.g. `seed`, `experts/press`, `merged/linear`'),
    prompt: z.string().max(1_000).default('The '),
    tokens: z.number().int().min(1).max(400).default(200),
    temperature: z.number().min(0).max(2).default(0.8),
    seed: z.number().int().min(0).default(1),
  })
  .strict();

/** A run with its jobs and latest metric per job: what GET /v1/runs/:id and the event stream send. */
export async function runView(scheduler: RunScheduler, id: string) {
  const record = await scheduler.runs.get(id);
  if (!record) return undefined;
  const [jobs, metrics] = await Promise.all([scheduler.jobs(id), scheduler.runs.metrics(id, 500)]);
  // Keyed like the CLI labels jobs: `expert:press`, `expert:press#1` for a second replica.
  const latestMetrics = Object.fromEntries(
    metrics.map((point) => [`${point.job}${point.replica ? `#${point.replica}` : ''}`, point]),
  );
  return { ...record, jobs, latestMetrics };
}

export async function registerUi(app: FastifyInstance, scheduler: RunScheduler, stateFolder: string): Promise<void> {
  await app.register(fastifyStatic, { root: [UI_FOLDER, UPLOT_FOLDER], prefix: '/ui/assets/', decorateReply: false });
  const page = readFileSync(join(UI_FOLDER, 'index.html'));
  app.get('/ui', { schema: { hide: true } }, async (_request, reply) => reply.type('text/html').send(page));

  const board = new FastifyAdapter();
  createBullBoard({
    queues: [
      new BullMQAdapter(scheduler.trainQueue, { readOnlyMode: true }),
      new BullMQAdapter(scheduler.mergeQueue, { readOnlyMode: true }),
    ],
    serverAdapter: board,
    options: { uiConfig: { boardTitle: 'Grove queues' } },
  });
  board.setBasePath('/ui/queues');
  await app.register(board.registerPlugin(), { prefix: '/ui/queues' });

  app.get(
    '/v1/runs/:id/events',
    { schema: { summary: 'Server-sent events: the run and its new metric points', params: RunIdParams } },
    async (request, reply) => {
      const { id } = request.params as { id: string };
      if (!(await scheduler.runs.get(id))) return reply.code(404).send({ error: `No run with id "${id}".` });
      reply.hijack();
      const raw = reply.raw;
      raw.writeHead(200, {
        'content-type': 'text/event-stream',
        'cache-control': 'no-cache',
        connection: 'keep-alive',
      });
      let closed = false;
      request.raw.on('close', () => {
        closed = true;
      });
      let after = '0';
      while (!closed) {
        const run = await runView(scheduler, id);
        const points = await scheduler.runs.metricsSince(id, after);
        if (points.length > 0) {
          after = points[points.length - 1].id;
          raw.write(`event: points\ndata: ${JSON.stringify(points.map((p) => p.point))}\n\n`);
        }
        raw.write(`event: run\ndata: ${JSON.stringify(run)}\n\n`);
        if (run && FINAL.includes(run.status) && points.length === 0) break;
        await new Promise((resolve) => setTimeout(resolve, EVENT_INTERVAL_MS));
      }
      raw.end();
    },
  );

  app.get(
    '/v1/runs/:id/models',
    { schema: { summary: 'The model folders of a run, for sampling', params: RunIdParams } },
    async (request) => {
      const { id } = request.params as { id: string };
      const run = await scheduler.runs.get(id);
      const mergedFolder = await resolveInsideRun(stateFolder, id, 'merged');
      const merged = mergedFolder ? readdirSync(mergedFolder).sort() : [];
      const candidates = [
        'seed',
        ...(run?.spec.domains ?? []).map((d) => `experts/${d.split('=')[0]}`),
        'dense',
        ...merged.map((folder) => `merged/${folder}`),
      ];
      const found = await Promise.all(
        candidates.map((model) => resolveInsideRun(stateFolder, id, join(model, MODEL_FILE)).catch(() => undefined)),
      );
      return { models: candidates.filter((_, i) => found[i]) };
    },
  );

  let backendReady: Promise<unknown> | undefined;
  app.post(
    '/v1/runs/:id/sample',
    { schema: { summary: 'Sample text from one of the run’s models', params: RunIdParams } },
    async (request, reply) => {
      const { id } = request.params as { id: string };
      const parsed = SampleRequest.safeParse(request.body ?? {});
      if (!parsed.success) {
        const fields = parsed.error.issues.map((issue) => `${issue.path.join('.') || '(body)'}: ${issue.message}`);
        return reply.code(400).send({ error: `Invalid sample request: ${fields.join('; ')}.` });
      }
      const { model, prompt, tokens, temperature, seed } = parsed.data;
      const folder = await resolveInsideRun(stateFolder, id, model);
      if (!folder || !(await resolveInsideRun(stateFolder, id, join(model, MODEL_FILE))))
        return reply.code(404).send({ error: `No model at "${model}" in run ${id}.` });
      backendReady ??= selectBackend();
      await backendReady;
      const network = modelFromCheckpoint(loadCheckpoint(folder));
      try {
        const text = sampleText(network, prompt, { maxNewTokens: tokens, temperature, topK: 40, rng: new Rng(seed) });
        return { model, prompt, text };
      } finally {
        network.dispose();
      }
    },
  );
}
