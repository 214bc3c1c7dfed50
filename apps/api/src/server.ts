/**
 * The REST API: submit, list, inspect and cancel runs; read their metrics and artifacts.
 * The run spec schema from @grove/jobs validates bodies (every wrong field is named) and
 * documents them in the OpenAPI description at /openapi.json (browsable at /docs).
 */
import { createReadStream, existsSync, readdirSync, statSync } from 'node:fs';
import { join, relative, resolve, sep } from 'node:path';
import swagger from '@fastify/swagger';
import swaggerUi from '@fastify/swagger-ui';
import {
  artifactPaths,
  InvalidRunSpecError,
  RunNotFinishedError,
  RunNotFoundError,
  type RunScheduler,
  RunSpec,
} from '@grove/jobs';
import Fastify, { type FastifyInstance, type FastifyServerOptions } from 'fastify';
import { z } from 'zod';
import { registerMetrics } from './metrics.js';
import { registerUi, runView } from './ui.js';

export interface ApiOptions {
  scheduler: RunScheduler;
  stateFolder: string;
  /** Accepted bearer tokens; with none, the API is open and must only listen on loopback. */
  tokens: string[];
  logger?: FastifyServerOptions['logger'];
}

const RUN_SPEC_SCHEMA = z.toJSONSchema(RunSpec, { io: 'input', unrepresentable: 'any' });
const RunIdParams = { type: 'object', properties: { id: { type: 'string' } }, required: ['id'] } as const;

export async function buildApi({
  scheduler,
  stateFolder,
  tokens,
  logger = false,
}: ApiOptions): Promise<FastifyInstance> {
  const app = Fastify({ logger, bodyLimit: 1024 * 1024 });
  // Bodies are validated by the zod schema in the handlers, so a bad spec gets the same errors everywhere.
  app.setValidatorCompiler(() => (data) => ({ value: data }));

  await app.register(swagger, {
    openapi: {
      info: {
        title: 'Grove',
        version: '0.1.0',
        description: 'Train a forest of expert language models on a job queue.',
      },
      components: { securitySchemes: { bearer: { type: 'http', scheme: 'bearer' } } },
      security: tokens.length ? [{ bearer: [] }] : [],
    },
  });
  await app.register(swaggerUi, { routePrefix: '/docs' });
  app.get('/openapi.json', { schema: { hide: true } }, async () => app.swagger());

  app.addHook('onRequest', async (request, reply) => {
    if (!PROTECTED.some((prefix) => request.url.startsWith(prefix)) || tokens.length === 0) return;
    // A browser cannot send a header to /ui: `/ui?token=…` once sets a cookie that stands for it.
    const query = new URL(request.url, 'http://grove').searchParams.get('token');
    if (query && tokens.includes(query)) {
      reply.header('set-cookie', `${TOKEN_COOKIE}=${encodeURIComponent(query)}; Path=/; HttpOnly; SameSite=Strict`);
      return;
    }
    const header = request.headers.authorization ?? '';
    const bearer = header.startsWith('Bearer ') ? header.slice('Bearer '.length) : undefined;
    const cookie = cookieValue(request.headers.cookie, TOKEN_COOKIE);
    if (!(bearer && tokens.includes(bearer)) && !(cookie && tokens.includes(cookie))) {
      return reply.code(401).send({ error: 'A valid bearer token is required: send Authorization: Bearer <token>.' });
    }
  });

  app.setErrorHandler((error: Error & { statusCode?: number }, _request, reply) => {
    if (error instanceof InvalidRunSpecError)
      return reply.code(400).send({ error: error.message, fields: error.errors });
    const status = error.statusCode && error.statusCode < 500 ? error.statusCode : 500;
    if (status === 500) app.log.error(error);
    return reply.code(status).send({ error: status === 500 ? 'Internal error; see the API log.' : error.message });
  });

  app.get('/healthz', { schema: { summary: 'The process is up' } }, async () => ({ ok: true }));
  app.get('/readyz', { schema: { summary: 'Redis answers' } }, async (_request, reply) => {
    try {
      await scheduler.runs.ping();
      return { ok: true };
    } catch (error) {
      return reply.code(503).send({ ok: false, error: `Redis is not reachable: ${(error as Error).message}` });
    }
  });

  app.post(
    '/v1/runs',
    {
      schema: {
        summary: 'Submit a run',
        description:
          'Queues the run and returns at once. The same `id`, or the same Idempotency-Key header, creates one run.',
        body: RUN_SPEC_SCHEMA,
        headers: { type: 'object', properties: { 'idempotency-key': { type: 'string' } } },
      },
    },
    async (request, reply) => {
      const key = request.headers['idempotency-key'];
      const { record, created } = await scheduler.submit(request.body ?? {}, typeof key === 'string' ? key : undefined);
      return reply.code(created ? 202 : 200).send({ id: record.id, status: record.status, created });
    },
  );

  app.get('/v1/runs', { schema: { summary: 'Runs, newest first' } }, async () => ({
    runs: (await scheduler.runs.list()).map(({ spec, ...summary }) => ({ ...summary, name: spec.name })),
  }));

  app.get(
    '/v1/runs/:id',
    { schema: { summary: 'A run: its jobs, their progress, latest metrics, eval table', params: RunIdParams } },
    async (request, reply) => {
      const { id } = request.params as { id: string };
      const view = await runView(scheduler, id);
      if (!view) return reply.code(404).send({ error: `No run with id "${id}".` });
      return view;
    },
  );

  app.delete('/v1/runs/:id', { schema: { summary: 'Cancel a run', params: RunIdParams } }, async (request, reply) => {
    const { id } = request.params as { id: string };
    if (!(await scheduler.runs.get(id))) return reply.code(404).send({ error: `No run with id "${id}".` });
    await scheduler.cancel(id);
    return reply.code(202).send({ id, status: (await scheduler.runs.get(id))?.status });
  });

  app.post(
    '/v1/runs/:id/experts',
    {
      schema: {
        summary: 'Grow a completed run by one expert',
        description:
          "Body {domain, steps?}. The new expert starts from the posterior-weighted average of the run's experts, trains on its domain, and the merges and eval run again; no existing expert retrains.",
        params: RunIdParams,
      },
    },
    async (request, reply) => {
      const { id } = request.params as { id: string };
      try {
        const { record, generation } = await scheduler.grow(id, request.body ?? {});
        return reply.code(202).send({ id, status: record.status, generation, domains: record.spec.domains });
      } catch (error) {
        if (error instanceof RunNotFoundError) return reply.code(404).send({ error: error.message });
        if (error instanceof RunNotFinishedError) return reply.code(409).send({ error: error.message });
        throw error;
      }
    },
  );

  app.get(
    '/v1/runs/:id/metrics',
    { schema: { summary: 'Training metrics of every job of a run', params: RunIdParams } },
    async (request, reply) => {
      const { id } = request.params as { id: string };
      if (!(await scheduler.runs.get(id))) return reply.code(404).send({ error: `No run with id "${id}".` });
      return { points: await scheduler.runs.metrics(id) };
    },
  );

  app.get(
    '/v1/runs/:id/artifacts/*',
    {
      schema: {
        summary: 'Download an artifact, or list a folder of them',
        params: { type: 'object', properties: { id: { type: 'string' }, '*': { type: 'string' } } },
      },
    },
    async (request, reply) => {
      const { id, '*': path } = request.params as { id: string; '*': string };
      const root = resolve(artifactPaths(stateFolder, id).run);
      const target = resolve(root, path);
      if (target !== root && !target.startsWith(root + sep))
        return reply.code(400).send({ error: 'That path leaves the run folder.' });
      if (!existsSync(target)) return reply.code(404).send({ error: `No artifact at "${path}".` });
      if (statSync(target).isDirectory()) {
        return {
          files: readdirSync(target, { recursive: true, withFileTypes: true })
            .filter((e) => e.isFile())
            .map((e) => relative(root, join(e.parentPath, e.name))),
        };
      }
      return reply.type('application/octet-stream').send(createReadStream(target));
    },
  );

  await registerUi(app, scheduler, stateFolder);
  await registerMetrics(app, scheduler, scheduler.connection);
  return app;
}

const PROTECTED = ['/v1/', '/ui', '/metrics'];
const TOKEN_COOKIE = 'grove_token';

function cookieValue(header: string | undefined, name: string): string | undefined {
  for (const part of (header ?? '').split(';')) {
    const [key, ...value] = part.trim().split('=');
    if (key === name) return decodeURIComponent(value.join('='));
  }
  return undefined;
}
