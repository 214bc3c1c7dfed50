/**
 * Grove merge service: takes `merge`, `eval` and `grow` jobs, runs each in a child process
 * (jobs/<kind>.ts), and records the eval table with the run.
 *
 *   REDIS_URL=redis://… GROVE_STATE_DIR=/data node --import tsx apps/merger/src/main.ts
 */
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { renderReport } from '@grove/api/report';
import {
  artifactPaths,
  connectRedis,
  createJobWorker,
  JOB_NAMES,
  MergeJobData,
  QUEUES,
  RunScheduler,
  runChildTask,
  runServiceProcess,
  stateFolder,
  TaskFailed,
} from '@grove/jobs';
import { type Job, UnrecoverableError } from 'bullmq';
import type { MergerInput, MergerProgress, MergerResult } from './task.js';

/** Each job kind's child-process entry point. */
const TASKS: Record<string, string> = {
  [JOB_NAMES.merge]: fileURLToPath(new URL('./jobs/merge.ts', import.meta.url)),
  [JOB_NAMES.eval]: fileURLToPath(new URL('./jobs/evaluate.ts', import.meta.url)),
  [JOB_NAMES.grow]: fileURLToPath(new URL('./jobs/grow.ts', import.meta.url)),
};

export function startMerger(options: { redisUrl: string; stateFolder: string; lockMs?: number }) {
  const connection = connectRedis(options.redisUrl);
  const scheduler = new RunScheduler(connection);
  const running = new Set<{ kill(): void }>();

  const processor = async (job: Job): Promise<MergerResult> => {
    const parsed = MergeJobData.safeParse(job.data);
    const task = TASKS[job.name];
    if (!parsed.success || !task || (job.name === JOB_NAMES.grow) !== !!parsed.data.domain) {
      throw new UnrecoverableError(
        `Invalid ${job.name} job: expected {runId} on merge or eval, {runId, domain} on grow.`,
      );
    }
    const { runId, domain } = parsed.data;
    const record = await scheduler.runs.get(runId);
    if (!record) throw new UnrecoverableError(`Run ${runId} does not exist.`);
    if (await scheduler.runs.isCancelled(runId)) throw new UnrecoverableError('The run was cancelled.');
    const input: MergerInput = { runId, domain, spec: record.spec, stateFolder: options.stateFolder };
    const child = runChildTask<MergerInput, MergerProgress, MergerResult>(task, input, (progress) => {
      void job.updateProgress({ ...progress });
    });
    running.add(child);
    try {
      const result = await child.result;
      if (job.name === JOB_NAMES.eval && result.rows) {
        await scheduler.runs.setRows(runId, result.rows);
        await scheduler.runs.setStatus(runId, 'completed');
        await writeReport(scheduler, runId, options.stateFolder);
      }
      return result;
    } catch (error) {
      if (error instanceof TaskFailed && error.permanent) throw new UnrecoverableError(error.message);
      throw error;
    } finally {
      running.delete(child);
    }
  };

  const worker = createJobWorker(QUEUES.merge, processor, {
    connection,
    scheduler,
    lockMs: options.lockMs,
    label: 'merger',
  });

  return {
    worker,
    async stop() {
      // Merges are short and idempotent: stop them and let the retry redo them.
      for (const task of running) task.kill();
      await worker.close();
      await scheduler.close();
      connection.disconnect();
    },
  };
}

if (process.argv[1] === fileURLToPath(import.meta.url)) {
  await runServiceProcess(
    'merger',
    ({ redisUrl, lockMs }) => startMerger({ redisUrl, stateFolder: stateFolder(), lockMs }),
    `waiting for jobs on ${QUEUES.merge}`,
  );
}

/** report.html beside report.json: the finished run's table and curves, readable offline. */
async function writeReport(scheduler: RunScheduler, runId: string, stateFolder: string): Promise<void> {
  const record = await scheduler.runs.get(runId);
  if (!record) return;
  const points = await scheduler.runs.metrics(runId);
  writeFileSync(join(artifactPaths(stateFolder, runId).run, 'report.html'), renderReport(record, points));
}
