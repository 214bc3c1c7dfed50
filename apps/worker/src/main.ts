/**
 * Grove worker: takes training jobs (the seed, expert replicas) from the queue and trains
 * each in a child process. Stateless: everything it needs is in the job, the run record and
 * the artifact store, so any number of workers can come and go.
 *
 *   REDIS_URL=redis://… GROVE_STATE_DIR=/data node --import tsx apps/worker/src/main.ts
 */
import { fileURLToPath } from 'node:url';
import {
  connectRedis,
  createJobWorker,
  parseRunSpecWithin,
  QUEUES,
  RunScheduler,
  type RunSpec,
  runChildTask,
  runServiceProcess,
  stateFolder,
  TaskFailed,
  TaskInterrupted,
  TrainJobData,
  type TrainJobResult,
} from '@grove/jobs';
import { DelayedError, type Job, UnrecoverableError } from 'bullmq';
import { failureLog } from './failures.js';
import { workerMetrics } from './metrics.js';
import type { TrainProgress, TrainTaskInput } from './train-task.js';

const TRAIN_TASK = fileURLToPath(new URL('./train-task.ts', import.meta.url));
const CANCEL_POLL_MS = 1_000;
const PROGRESS_INTERVAL_MS = 1_000;

export interface WorkerOptions {
  redisUrl: string;
  stateFolder: string;
  /** How long a job's lock lasts without renewal: a dead worker's job is retried after about this long. */
  lockMs?: number;
}

export function startWorker(options: WorkerOptions) {
  const connection = connectRedis(options.redisUrl);
  const scheduler = new RunScheduler(connection);
  const metrics = workerMetrics(connection);
  const running = new Set<{ interrupt(): void }>();
  const progressFailed = failureLog('updating job progress');
  const metricFailed = failureLog('recording a metric point');
  const cancelPollFailed = failureLog('checking for cancellation');

  const processor = async (job: Job, token?: string): Promise<TrainJobResult> => {
    const data = parsePayload(job.data);
    const spec = await runSpecFor(scheduler, data);
    if (await scheduler.runs.isCancelled(data.runId)) throw new UnrecoverableError('The run was cancelled.');
    await scheduler.runs.setStatus(data.runId, 'running');

    const jobLabel = jobLabelOf(data);
    const replicaLabel = data.role === 'expert' && data.replicas > 1 ? { replica: data.replica } : {};
    const metricJob = `${jobLabel}${data.role === 'expert' && data.replicas > 1 ? `#${data.replica}` : ''}`;
    let lastProgress = 0;
    const input: TrainTaskInput = { data, spec, stateFolder: options.stateFolder, redisUrl: options.redisUrl };
    const task = runChildTask<TrainTaskInput, TrainProgress, TrainJobResult>(TRAIN_TASK, input, (progress) => {
      if (progress.round) metrics.round(data.runId, metricJob, progress.round);
      else if (progress.loss !== undefined) metrics.step(data.runId, metricJob, progress.tokensPerSecond);
      if (progress.round) {
        const { round, ...rest } = progress;
        const { round: number, ...metrics } = round;
        metricFailed(
          scheduler.runs.recordMetric(data.runId, {
            ...metrics,
            job: jobLabel,
            ...replicaLabel,
            kind: 'round',
            round: number,
            step: metrics.groupSteps,
          }),
        );
        progressFailed(job.updateProgress({ ...rest }));
        return;
      }
      const now = Date.now();
      if (
        progress.bitsPerByte ||
        progress.resumedFromStep !== undefined ||
        now - lastProgress >= PROGRESS_INTERVAL_MS ||
        progress.step === progress.steps
      ) {
        lastProgress = now;
        progressFailed(job.updateProgress({ ...progress }));
        const { round: _none, ...point } = progress;
        metricFailed(scheduler.runs.recordMetric(data.runId, { job: jobLabel, ...replicaLabel, ...point }));
      }
    });
    running.add(task);
    let cancelled = false;
    const poll = setInterval(() => {
      // Redis away for a moment: training goes on, the next poll asks again.
      cancelPollFailed(
        scheduler.runs.isCancelled(data.runId).then((isCancelled) => {
          if (!isCancelled) return;
          cancelled = true;
          task.interrupt();
        }),
      );
    }, CANCEL_POLL_MS);
    try {
      const result = await task.result;
      if (data.role === 'seed') await scheduler.branch(data.runId, spec);
      return result;
    } catch (error) {
      if (error instanceof TaskInterrupted) {
        if (cancelled) throw new UnrecoverableError('The run was cancelled.');
        // Shutting down: hand the job back now rather than after a lock timeout; it resumes from its checkpoint.
        await job.moveToDelayed(Date.now(), token);
        throw new DelayedError();
      }
      if (error instanceof TaskFailed && error.permanent) throw new UnrecoverableError(error.message);
      throw error;
    } finally {
      clearInterval(poll);
      running.delete(task);
      metrics.jobEnded(data.runId, metricJob);
    }
  };

  const worker = createJobWorker(QUEUES.train, processor, {
    connection,
    scheduler,
    lockMs: options.lockMs,
    label: 'worker',
  });

  return {
    worker,
    /** Stops taking jobs; a job in progress checkpoints and goes back to the queue. */
    async stop() {
      for (const task of running) task.interrupt();
      await worker.close();
      await metrics.close();
      await scheduler.close();
      connection.disconnect();
    },
  };
}

function jobLabelOf(data: TrainJobData): string {
  if (data.role === 'expert') return `expert:${data.domain}`;
  return data.role === 'finetune' ? `finetune:${data.method}` : data.role;
}

function parsePayload(payload: unknown): TrainJobData {
  const parsed = TrainJobData.safeParse(payload);
  if (!parsed.success) {
    const fields = parsed.error.issues.map((issue) => `${issue.path.join('.') || '(payload)'}: ${issue.message}`);
    throw new UnrecoverableError(`Invalid training job payload: ${fields.join('; ')}.`);
  }
  return parsed.data;
}

/** The run's spec; a seed job sent by a plain producer brings its own, validated here. */
async function runSpecFor(scheduler: RunScheduler, data: TrainJobData): Promise<RunSpec> {
  const record = await scheduler.runs.get(data.runId);
  if (record) return record.spec;
  if (data.role !== 'seed' || data.spec === undefined) {
    throw new UnrecoverableError(`Run ${data.runId} does not exist.`);
  }
  let spec: RunSpec;
  try {
    spec = parseRunSpecWithin({ ...(data.spec as object), id: data.runId }, scheduler.limits);
  } catch (error) {
    throw new UnrecoverableError(error instanceof Error ? error.message : String(error));
  }
  return (await scheduler.runs.create(spec)).record.spec;
}

if (process.argv[1] === fileURLToPath(import.meta.url)) {
  await runServiceProcess(
    'worker',
    ({ redisUrl, lockMs }) => startWorker({ redisUrl, stateFolder: stateFolder(), lockMs }),
    `waiting for jobs on ${QUEUES.train}`,
  );
}
