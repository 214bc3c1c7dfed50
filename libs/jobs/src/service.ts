/** What the worker and the merge service share: how a queue is consumed and how the process lives. */
import { type Processor, Worker } from 'bullmq';
import type { Redis } from 'ioredis';
import type { Logger } from 'pino';
import { createLogger, redactSecrets } from './logger.js';
import { checkRedisDurability, connectRedis } from './redis.js';
import type { RunScheduler } from './scheduler.js';

export interface JobWorkerOptions {
  connection: Redis;
  scheduler: RunScheduler;
  /** How long a job's lock lasts without renewal: a dead process's job is retried after about this long. */
  lockMs?: number;
  /** Prefix of log lines. */
  label: string;
  /** Where the worker's errors go; a logger named after `label` otherwise. */
  logger?: Logger;
}

/** One job at a time per process (a job uses a whole core); a job failed for good fails its run. */
export function createJobWorker(queue: string, processor: Processor, options: JobWorkerOptions): Worker {
  const lockDuration = options.lockMs ?? 30_000;
  const worker = new Worker(queue, processor, {
    connection: options.connection,
    concurrency: 1,
    lockDuration,
    stalledInterval: Math.max(1_000, lockDuration / 2),
    maxStalledCount: 3,
  });
  worker.on('failed', async (job, error) => {
    if (!job || (await job.getState()) !== 'failed') return;
    const runId = (job.data as { runId?: string }).runId;
    if (runId) await options.scheduler.runs.setStatus(runId, 'failed', `${job.name} failed: ${error.message}`);
  });
  const logger = options.logger ?? createLogger(options.label);
  worker.on('error', (error) => logger.error({ err: error, queue }, 'queue worker error'));
  return worker;
}

/**
 * Runs a service as a process: reads REDIS_URL (and GROVE_LOCK_MS), checks that Redis keeps
 * its jobs, starts the service, and stops it cleanly on SIGTERM or SIGINT. It logs as
 * `label`, in JSON lines on stdout.
 */
export async function runServiceProcess(
  label: string,
  start: (settings: {
    redisUrl: string;
    lockMs?: number;
    /** This process's logger, for the service to log through. */
    logger: Logger;
  }) => Promise<{ stop(): Promise<void> }> | { stop(): Promise<void> },
  ready: string,
): Promise<void> {
  const logger = createLogger(label);
  const redisUrl = process.env.REDIS_URL;
  if (!redisUrl) {
    logger.fatal('set REDIS_URL to the Redis that holds the queues (grove up starts one)');
    process.exit(1);
  }
  const lockMs = process.env.GROVE_LOCK_MS ? Number(process.env.GROVE_LOCK_MS) : undefined;
  try {
    const probe = connectRedis(redisUrl, { maxRetriesPerRequest: 3 }).on('error', () => {}); // INFO fails with the cause
    await checkRedisDurability(probe, { label }).finally(() => probe.disconnect());
    const service = await start({ redisUrl, lockMs, logger });
    logger.info({ pid: process.pid, redis: redactSecrets(redisUrl) }, ready);
    const shutdown = async () => {
      await service.stop();
      process.exit(0);
    };
    process.once('SIGTERM', shutdown);
    process.once('SIGINT', shutdown);
  } catch (error) {
    logger.fatal({ err: error }, 'could not start');
    process.exit(1);
  }
}
