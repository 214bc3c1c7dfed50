/**
 * The REST API: submit, list, inspect and cancel runs; read their metrics and artifacts.
 * Requests are validated by zod schemas (the run spec from @grove/jobs among them) through
 * Fastify's type provider, so a bad request names every wrong field before a handler runs,
 * and the same schemas document the API at /openapi.json (browsable at /docs).
 */
import { createReadStream } from 'node:fs';
import { stat } from 'node:fs/promises';
import rateLimit from '@fastify/rate-limit';
import swagger from '@fastify/swagger';
import swaggerUi from '@fastify/swagger-ui';
import underPressure from '@fastify/under-pressure';
import {
  GrowRequest,
  InvalidRunSpecError,
  RunNotFinishedError,
  RunNotFoundError,
  type RunScheduler,
  RunSpec,
} from '@grove/jobs';
import Fastify, { type FastifyBaseLogger, type FastifyError, type FastifyInstance } from 'fastify';
import {
  hasZodFastifySchemaValidationErrors,
  jsonSchemaTransform,
  serializerCompiler,
  validatorCompiler,
  type ZodTypeProvider,
} from 'fastify-type-provider-zod';
import type { Redis } from 'ioredis';
import { z } from 'zod';
import { LIST_LIMIT_MAX, listFolder, resolveInsideRun } from './artifacts.js';
import { registerAuth } from './auth.js';
import { allowedHosts, registerHostCheck } from './hosts.js';
import { registerMetrics } from './metrics.js';
import { isRedisUnavailable, pingRedis, RETRY_AFTER_SECONDS } from './redis.js';
import { RunId, RunIdParams } from './schemas.js';
import { forgetRunView, registerUi, runView } from './ui.js';

export interface ApiOptions {
  scheduler: RunScheduler;
  stateFolder: string;
  /** Accepted bearer tokens; with none, the API is open and must only listen on loopback. */
  tokens: string[];
  /** The address the API listens on: it may be named in Host besides the loopback names. */
  host?: string;
  /** More host names the API answers to (GROVE_API_HOSTS). */
  extraHosts?: string[];
  logger?: FastifyBaseLogger;
  /** Submissions (POST requests) a caller may make per minute. */
  postsPerMinute?: number;
  /** A connection with BullMQ's blocking options, copied by the metrics' event readers; the scheduler's otherwise. */
  eventsConnection?: Redis;
}

const IDEMPOTENCY_KEY = /^[\x20-\x7e]{1,200}$/;
const SubmitHeaders = z.looseObject({
  'idempotency-key': z
    .string()
    .regex(IDEMPOTENCY_KEY, 'at most 200 printable ASCII characters')
    .optional()
    .describe('Submitting again with the same key returns the run the first submission created'),
});
const ArtifactParams = z.object({ id: RunId, '*': z.string().max(1_024) });
const ListQuery = z.object({
  cursor: z.string().max(255).default('').describe('The `next` of the previous page'),
  limit: z.coerce.number().int().min(1).max(LIST_LIMIT_MAX).default(200),
});
const VALIDATED = { body: 'request body', params: 'path', querystring: 'query string', headers: 'headers' };

export async function buildApi({
  scheduler,
  stateFolder,
  tokens,
  host = '127.0.0.1',
  extraHosts = [],
  logger,
  postsPerMinute = 120,
  eventsConnection = scheduler.connection,
}: ApiOptions): Promise<FastifyInstance> {
  const app = Fastify({ ...(logger ? { loggerInstance: logger } : { logger: false }), bodyLimit: 1024 * 1024 });
  app.setValidatorCompiler(validatorCompiler);
  app.setSerializerCompiler(serializerCompiler);

  registerHostCheck(app, allowedHosts(host, extraHosts));
  await app.register(underPressure, {
    maxEventLoopDelay: 1_000,
    retryAfter: RETRY_AFTER_SECONDS,
    message: 'The API is overloaded; retry shortly.',
  });
  await registerAuth(app, tokens, scheduler.connection);
  await app.register(rateLimit, {
    global: false,
    hook: 'preHandler',
    keyGenerator: (request) => request.caller || request.ip,
  });
  const postLimit = { rateLimit: { max: postsPerMinute, timeWindow: '1 minute' } };

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
    transform: jsonSchemaTransform,
  });
  await app.register(swaggerUi, { routePrefix: '/docs' });
  app.get('/openapi.json', { schema: { hide: true } }, async () => app.swagger());

  app.setErrorHandler((error: FastifyError, _request, reply) => {
    if (hasZodFastifySchemaValidationErrors(error)) {
      const fields = error.validation.map((issue) => ({
        path: issue.instancePath.slice(1).replaceAll('/', '.'),
        message: issue.message ?? 'invalid',
      }));
      const where = error.validationContext ?? 'body';
      const message =
        where === 'body' ? new InvalidRunSpecError(fields).message : invalidMessage(VALIDATED[where], fields);
      return reply.code(400).send({ error: message, fields });
    }
    if (error instanceof InvalidRunSpecError)
      return reply.code(400).send({ error: error.message, fields: error.errors });
    if (isRedisUnavailable(error))
      return reply
        .code(503)
        .header('retry-after', String(RETRY_AFTER_SECONDS))
        .send({ error: `Redis is not reachable; retry in ${RETRY_AFTER_SECONDS} s.` });
    // 503 is load shedding (under-pressure has set Retry-After); other 5xx are ours to hide.
    const status = error.statusCode && (error.statusCode < 500 || error.statusCode === 503) ? error.statusCode : 500;
    if (status === 500) app.log.error(error);
    return reply.code(status).send({ error: status === 500 ? 'Internal error; see the API log.' : error.message });
  });
  app.setNotFoundHandler((request, reply) =>
    reply.code(404).send({ error: `No route ${request.method} ${request.url.split('?')[0]}.` }),
  );

  const api = app.withTypeProvider<ZodTypeProvider>();
  api.get('/healthz', { config: { public: true }, schema: { summary: 'The process is up' } }, async () => ({
    ok: true,
  }));
  api.get('/readyz', { config: { public: true }, schema: { summary: 'Redis answers' } }, async (_request, reply) => {
    try {
      await pingRedis(scheduler.connection);
      return { ok: true };
    } catch (error) {
      return reply
        .code(503)
        .header('retry-after', String(RETRY_AFTER_SECONDS))
        .send({ ok: false, error: (error as Error).message });
    }
  });

  api.post(
    '/v1/runs',
    {
      config: postLimit,
      schema: {
        summary: 'Submit a run',
        description:
          'Queues the run and returns at once. The same `id`, or the same Idempotency-Key header from the same caller, creates one run.',
        body: RunSpec,
        headers: SubmitHeaders,
      },
    },
    async (request, reply) => {
      // Refuse before writing: a write sent to a Redis that does not answer may be applied after the client gave up.
      await pingRedis(scheduler.connection);
      const key = request.headers['idempotency-key'];
      const { record, created } = await scheduler.submit(request.body, key, request.caller);
      return reply.code(created ? 202 : 200).send({ id: record.id, status: record.status, created });
    },
  );

  api.get('/v1/runs', { schema: { summary: 'Runs, newest first' } }, async () => ({
    runs: (await scheduler.runs.list()).map(({ spec, ...summary }) => ({ ...summary, name: spec.name })),
  }));

  api.get(
    '/v1/runs/:id',
    { schema: { summary: 'A run: its jobs, their progress, latest metrics, eval table', params: RunIdParams } },
    async (request, reply) => {
      const { id } = request.params;
      const view = await runView(scheduler, id);
      if (!view) return reply.code(404).send({ error: `No run with id "${id}".` });
      return view;
    },
  );

  api.delete(
    '/v1/runs/:id',
    { config: postLimit, schema: { summary: 'Cancel a run', params: RunIdParams } },
    async (request, reply) => {
      const { id } = request.params;
      if (!(await scheduler.runs.get(id))) return reply.code(404).send({ error: `No run with id "${id}".` });
      await scheduler.cancel(id);
      forgetRunView(scheduler, id);
      return reply.code(202).send({ id, status: (await scheduler.runs.get(id))?.status });
    },
  );

  api.post(
    '/v1/runs/:id/experts',
    {
      config: postLimit,
      schema: {
        summary: 'Grow a completed run by one expert',
        description:
          "The new expert starts from the posterior-weighted average of the run's experts, trains on its domain, and the merges and eval run again; no existing expert retrains.",
        params: RunIdParams,
        body: GrowRequest,
      },
    },
    async (request, reply) => {
      const { id } = request.params;
      try {
        const { record, generation } = await scheduler.grow(id, request.body);
        forgetRunView(scheduler, id);
        return reply.code(202).send({ id, status: record.status, generation, domains: record.spec.domains });
      } catch (error) {
        if (error instanceof RunNotFoundError) return reply.code(404).send({ error: error.message });
        if (error instanceof RunNotFinishedError) return reply.code(409).send({ error: error.message });
        throw error;
      }
    },
  );

  api.get(
    '/v1/runs/:id/metrics',
    { schema: { summary: 'Training metrics of every job of a run', params: RunIdParams } },
    async (request, reply) => {
      const { id } = request.params;
      if (!(await scheduler.runs.get(id))) return reply.code(404).send({ error: `No run with id "${id}".` });
      return { points: await scheduler.runs.metrics(id) };
    },
  );

  api.get(
    '/v1/runs/:id/artifacts/*',
    {
      schema: {
        summary: 'Download an artifact, or list a folder of them one page at a time',
        description:
          'A folder answers `{entries: [{name, type, bytes?}], next?}`: its own entries in name order; pass `next` as `cursor` for the following page.',
        params: ArtifactParams,
        querystring: ListQuery,
      },
    },
    async (request, reply) => {
      const { id, '*': path } = request.params;
      const target = await resolveInsideRun(stateFolder, id, path);
      const info = target ? await stat(target) : undefined;
      if (!target || !info || !(info.isFile() || info.isDirectory()))
        return reply.code(404).send({ error: `No artifact at "${path}" in run ${id}.` });
      if (info.isDirectory()) return listFolder(target, request.query.cursor, request.query.limit);
      return reply.type('application/octet-stream').send(createReadStream(target));
    },
  );

  await registerUi(app, scheduler, stateFolder);
  await registerMetrics(app, scheduler, eventsConnection);
  return app;
}

function invalidMessage(what: string, fields: { path: string; message: string }[]): string {
  return `Invalid ${what}: ${fields.map((f) => `${f.path || `(${what})`}: ${f.message}`).join('; ')}.`;
}
