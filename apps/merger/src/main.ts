/**
 * Grove merge service: takes `merge` and `eval` jobs, runs each in a child process, and
 * records the eval table with the run.
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
import type { ConsolidateInput, ConsolidateProgress, ConsolidateResult } from './consolidate-task.js';

const CONSOLIDATE_TASK = fileURLToPath(new URL('./consolidate-task.ts', import.meta.url));

export function startMerger(options: { redisUrl: string; stateFolder: string; lockMs?: number }) {
  const connection = connectRedis(options.redisUrl);
  const scheduler = new RunScheduler(connection);
  const running = new Set<{ kill(): void }>();

  const processor = async (job: Job): Promise<ConsolidateResult> => {
    const parsed = MergeJobData.safeParse(job.data);
    const kinds: string[] = [JOB_NAMES.merge, JOB_NAMES.eval, JOB_NAMES.grow];
    if (!parsed.success || !kinds.includes(job.name) || (job.name === JOB_NAMES.grow) !== !!parsed.data.domain) {
      throw new UnrecoverableError(
        `Invalid ${job.name} job: expected {runId} on merge or eval, {runId, domain} on grow.`,
      );
    }
    const { runId, domain } = parsed.data;
    const record = await scheduler.runs.get(runId);
    if (!record) throw new UnrecoverableError(`Run ${runId} does not exist.`);
    if (await scheduler.runs.isCancelled(runId)) throw new UnrecoverableError('The run was cancelled.');
    const input: ConsolidateInput = {
      kind: job.name as ConsolidateInput['kind'],
      runId,
      domain,
      spec: record.spec,
      stateFolder: options.stateFolder,
    };
    const task = runChildTask<ConsolidateInput, ConsolidateProgress, ConsolidateResult>(
      CONSOLIDATE_TASK,
      input,
      (progress) => {
        void job.updateProgress({ ...progress });
      },
    );
    running.add(task);
    try {
      const result = await task.result;
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
      running.delete(task);
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
