/**
 * GET /metrics for Prometheus: this API process (its runtime, queue depth by state, job
 * durations) and every worker's published registry (tokens/s, peer bytes per round, sync
 * time; see @grove/jobs metrics.ts).
 */
import { publishedMetrics, QUEUES, type RunScheduler } from '@grove/jobs';
import { type ConnectionOptions, Job, type Queue, QueueEvents } from 'bullmq';
import type { FastifyInstance } from 'fastify';
import type { Redis } from 'ioredis';
import { collectDefaultMetrics, Gauge, Histogram, Registry } from 'prom-client';

const STATES = ['waiting', 'active', 'delayed', 'completed', 'failed', 'waiting-children', 'prioritized'] as const;

export async function registerMetrics(app: FastifyInstance, scheduler: RunScheduler, redis: Redis): Promise<void> {
  const registry = new Registry();
  collectDefaultMetrics({ register: registry, prefix: 'grove_api_' });
  const queues: [string, Queue][] = [
    [QUEUES.train, scheduler.trainQueue],
    [QUEUES.merge, scheduler.mergeQueue],
  ];
  new Gauge({
    name: 'grove_queue_jobs',
    help: 'Jobs in each queue, by state',
    labelNames: ['queue', 'state'],
    registers: [registry],
    async collect() {
      for (const [name, queue] of queues) {
        const counts = await queue.getJobCounts(...STATES);
        for (const state of STATES) this.set({ queue: name, state }, counts[state] ?? 0);
      }
    },
  });
  const durations = new Histogram({
    name: 'grove_job_duration_seconds',
    help: 'Time from a job starting to it finishing, by queue, job name and outcome',
    labelNames: ['queue', 'name', 'outcome'],
    buckets: [1, 5, 15, 30, 60, 120, 300, 600, 1800, 3600, 7200],
    registers: [registry],
  });
  // Durations come from the queue's event stream, so they count every worker's jobs.
  const listeners = queues.map(([name, queue]) => {
    // Options, not a client: the events then own their blocking connection and close it.
    const events = new QueueEvents(name, { connection: { ...redis.options } as ConnectionOptions });
    const observe =
      (outcome: string) =>
      async ({ jobId }: { jobId: string }) => {
        const job = await Job.fromId(queue, jobId).catch(() => undefined);
        if (job?.processedOn && job.finishedOn) {
          durations.observe({ queue: name, name: job.name, outcome }, (job.finishedOn - job.processedOn) / 1000);
        }
      };
    events.on('completed', observe('completed'));
    events.on('failed', observe('failed'));
    return events;
  });
  app.addHook('onClose', async () => {
    await Promise.all(listeners.map((events) => events.close()));
  });

  app.get('/metrics', { schema: { hide: true } }, async (_request, reply) => {
    const own = await registry.metrics();
    const workers = await publishedMetrics(redis);
    return reply.type(registry.contentType).send(`${own}\n${workers}`);
  });
}
