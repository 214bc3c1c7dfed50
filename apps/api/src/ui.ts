/**
 * The dashboard: a small static page (`ui/`, charts by uPlot) at /ui that follows a run
 * through server-sent events, Bull Board at /ui/queues, and sampling text from any model of
 * a run. Everything is served by this process, from files in the repository and in
 * node_modules: the page works without internet.
 */
import { createHash } from 'node:crypto';
import { readdirSync, readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import { createBullBoard } from '@bull-board/api';
import { BullMQAdapter } from '@bull-board/api/bullMQAdapter';
import { FastifyAdapter } from '@bull-board/fastify';
import fastifyStatic from '@fastify/static';
import type { RunScheduler } from '@grove/jobs';
import { MODEL_FILE } from '@grove/store';
import type { FastifyInstance, FastifyRequest } from 'fastify';
import { z } from 'zod';
import { resolveInsideRun } from './artifacts.js';
import { eventLimitsFromEnv, RunEventHub } from './events.js';
import {
  SampleAbortedError,
  SamplerBusyError,
  SampleTimeoutError,
  SamplingPool,
  samplingLimitsFromEnv,
} from './sampling/pool.js';
import { RunIdParams } from './schemas.js';

const UI_FOLDER = join(import.meta.dirname, 'ui');
const UPLOT_FOLDER = join(dirname(createRequire(import.meta.url).resolve('uplot')), '..', 'dist');

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

/** How long a run view is reused: GET and every event stream of a run within it share one read. */
const VIEW_TTL_MS = 1_000;
/** Past this many cached views, expired ones are swept out. */
const VIEW_CACHE_SWEEP = 1_000;
const viewCaches = new WeakMap<RunScheduler, Map<string, { expires: number; view: Promise<RunView | undefined> }>>();

export type RunView = NonNullable<Awaited<ReturnType<typeof readRunView>>>;

/** A run with its jobs and latest metric per job: what GET /v1/runs/:id and the event stream send. */
export function runView(scheduler: RunScheduler, id: string): Promise<RunView | undefined> {
  const cache = viewCaches.get(scheduler) ?? new Map();
  viewCaches.set(scheduler, cache);
  const now = Date.now();
  const cached = cache.get(id);
  if (cached && cached.expires > now) return cached.view;
  if (cache.size > VIEW_CACHE_SWEEP) for (const [key, entry] of cache) if (entry.expires <= now) cache.delete(key);
  const view = readRunView(scheduler, id);
  cache.set(id, { expires: now + VIEW_TTL_MS, view });
  view.catch(() => cache.delete(id));
  return view;
}

/** Drops a run's cached view: a change this API made (grow, cancel) shows on the next read. */
export function forgetRunView(scheduler: RunScheduler, id: string): void {
  viewCaches.get(scheduler)?.delete(id);
}

async function readRunView(scheduler: RunScheduler, id: string) {
  const record = await scheduler.runs.get(id);
  if (!record) return undefined;
  const [jobs, metrics] = await Promise.all([scheduler.jobs(id, record), scheduler.runs.metrics(id, 500)]);
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

  const hub = new RunEventHub(scheduler.runs, (id) => runView(scheduler, id), eventLimitsFromEnv());
  app.addHook('onClose', async () => hub.close());
  app.get(
    '/v1/runs/:id/events',
    { schema: { summary: 'Server-sent events: the run and its new metric points', params: RunIdParams } },
    async (request, reply) => {
      const { id } = request.params as { id: string };
      if (!(await runView(scheduler, id))) return reply.code(404).send({ error: `No run with id "${id}".` });
      const caller = callerOf(request);
      const refusal = hub.refusal(caller);
      if (refusal) return reply.code(503).header('retry-after', '30').send({ error: refusal });
      reply.hijack();
      reply.raw.writeHead(200, {
        'content-type': 'text/event-stream',
        'cache-control': 'no-cache',
        connection: 'keep-alive',
      });
      hub.subscribe(id, caller, reply.raw);
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

  const pool = new SamplingPool(samplingLimitsFromEnv());
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
      const { model, ...options } = parsed.data;
      const folder = await resolveInsideRun(stateFolder, id, model);
      if (!folder || !(await resolveInsideRun(stateFolder, id, join(model, MODEL_FILE))))
        return reply.code(404).send({ error: `No model at "${model}" in run ${id}.` });
      const clientLeft = new AbortController();
      reply.raw.on('close', () => {
        if (!reply.raw.writableFinished) clientLeft.abort();
      });
      try {
        const text = await pool.sample({ folder, ...options }, clientLeft.signal);
        return { model, prompt: options.prompt, text };
      } catch (error) {
        if (error instanceof SamplerBusyError)
          return reply.code(503).header('retry-after', String(error.retryAfterSeconds)).send({ error: error.message });
        if (error instanceof SampleTimeoutError) return reply.code(504).send({ error: error.message });
        if (error instanceof SampleAbortedError) return reply.code(499).send({ error: error.message });
        throw error;
      }
    },
  );
}

/** Who is asking, for per-caller caps: their bearer token (hashed, never kept), else their address. */
function callerOf(request: FastifyRequest): string {
  const token = request.headers.authorization;
  return token ? createHash('sha256').update(token).digest('hex') : request.ip;
}
