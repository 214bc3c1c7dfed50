/** Following a run from the CLI: one line per job, redrawn on a terminal, printed on change in logs. */
import type { JobView } from '@grove/jobs';
import type { ApiClient, RunView } from './api-client.js';

const FINAL = ['completed', 'failed', 'cancelled'];
const POLL_MS = 1_000;
/** In logs, a full status block at least this often even when no job changed state. */
const LOG_EVERY_MS = 30_000;

function describeJob(job: JobView, run: RunView): string {
  const label =
    job.name === 'expert'
      ? `expert:${job.domain}${job.replica ? `#${job.replica}` : ''}`
      : job.method
        ? `${job.name}:${job.method}`
        : job.name;
  const progress = job.progress as
    | { step?: number; steps?: number; stage?: string; done?: number; total?: number }
    | number;
  let detail = '';
  if (typeof progress === 'object' && progress.steps) {
    const metric = run.latestMetrics[label];
    detail = ` step ${progress.step}/${progress.steps}${metric?.loss !== undefined ? `  loss ${metric.loss.toFixed(3)}` : ''}`;
  } else if (typeof progress === 'object' && progress.total) {
    detail = ` ${progress.stage} ${progress.done}/${progress.total}`;
  }
  const failure = job.failedReason ? `  (${job.failedReason})` : '';
  return `  ${label.padEnd(18)} ${job.state.padEnd(16)}${detail}${failure}`;
}

/** The run's status line and one line per job. */
export function renderRun(run: RunView): string[] {
  return [
    `run ${run.id}: ${run.status}${run.error ? ` (${run.error})` : ''}`,
    ...run.jobs.map((job) => describeJob(job, run)),
  ];
}

/** Polls until the run reaches a final state; returns the final view. */
export async function followRun(client: ApiClient, id: string, quiet = false): Promise<RunView> {
  const tty = process.stderr.isTTY && !quiet;
  let drawn = 0;
  let lastText = '';
  let lastLogged = 0;
  for (;;) {
    const run = await client.run(id);
    const lines = renderRun(run);
    const text = lines.join('\n');
    if (!quiet && text !== lastText) {
      if (tty) {
        if (drawn) process.stderr.write(`\x1b[${drawn}A\x1b[0J`);
        process.stderr.write(`${text}\n`);
        drawn = lines.length;
      } else {
        // In logs, print when a job changes state, and now and then to show progress.
        const states = (t: string) => t.replace(/ step .*|\s+loss .*| (eval|posterior) .*/g, '');
        if (states(text) !== states(lastText) || Date.now() - lastLogged >= LOG_EVERY_MS) {
          process.stderr.write(`${text}\n`);
          lastLogged = Date.now();
        }
      }
      lastText = text;
    }
    if (FINAL.includes(run.status)) return run;
    await new Promise((wake) => setTimeout(wake, POLL_MS));
  }
}
