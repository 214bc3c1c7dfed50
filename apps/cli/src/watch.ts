/** Following a run from the CLI: one line per job, redrawn on a terminal, printed on change in logs. */
import type { JobView } from '@grove/jobs';
import cliProgress from 'cli-progress';
import type { ApiClient, RunView } from './api-client.js';

const FINAL = ['completed', 'failed', 'cancelled'];

const labelOf = (job: JobView) => {
  if (job.name === 'expert') return `expert:${job.domain}${job.replica ? `#${job.replica}` : ''}`;
  return job.method ? `${job.name}:${job.method}` : job.name;
};
const POLL_MS = 1_000;
/** In logs, a full status block at least this often even when no job changed state. */
const LOG_EVERY_MS = 30_000;

/** A job's state and progress, e.g. `active           step 40/100  loss 2.310`. */
function jobDetail(job: JobView, run: RunView): string {
  const progress = job.progress as
    | { step?: number; steps?: number; stage?: string; done?: number; total?: number }
    | number;
  let detail = '';
  if (typeof progress === 'object' && progress.steps) {
    const metric = run.latestMetrics[labelOf(job)];
    detail = ` step ${progress.step}/${progress.steps}${metric?.loss !== undefined ? `  loss ${metric.loss.toFixed(3)}` : ''}`;
  } else if (typeof progress === 'object' && progress.total) {
    detail = ` ${progress.stage} ${progress.done}/${progress.total}`;
  }
  const failure = job.failedReason ? `  (${job.failedReason})` : '';
  return `${job.state.padEnd(16)}${detail}${failure}`;
}

function describeJob(job: JobView, run: RunView): string {
  return `  ${labelOf(job).padEnd(18)} ${jobDetail(job, run)}`;
}

/** The run's status line and one line per job. */
export function renderRun(run: RunView): string[] {
  return [
    `run ${run.id}: ${run.status}${run.error ? ` (${run.error})` : ''}`,
    ...run.jobs.map((job) => describeJob(job, run)),
  ];
}

/** How far along a job is, 0 to 1. */
function fractionOf(job: JobView): number {
  if (job.state === 'completed') return 1;
  const progress = job.progress as { step?: number; steps?: number; done?: number; total?: number } | number;
  if (typeof progress !== 'object' || progress === null) return 0;
  if (progress.steps) return (progress.step ?? 0) / progress.steps;
  if (progress.total) return (progress.done ?? 0) / progress.total;
  return 0;
}

/** One line per job with a progress bar, for a snapshot (`grove status <id>`). */
export function renderBars(run: RunView): string[] {
  const bar = (fraction: number) =>
    cliProgress.Format.BarFormat(Math.min(1, fraction), {
      barsize: 24,
      barCompleteString: '█'.repeat(24),
      barIncompleteString: '░'.repeat(24),
      barGlue: '',
    });
  return [
    `run ${run.id}: ${run.status}${run.error ? ` (${run.error})` : ''}`,
    ...run.jobs.map((job) => `  ${labelOf(job).padEnd(18)} ${bar(fractionOf(job))} ${jobDetail(job, run).trim()}`),
  ];
}

/**
 * Polls until the run reaches a final state; returns the final view. On a terminal every
 * job gets a live progress bar; in logs (CI) plain lines are printed when jobs change state.
 */
export async function followRun(client: ApiClient, id: string, quiet = false): Promise<RunView> {
  if (process.stderr.isTTY && !quiet) return followWithBars(client, id);
  let lastText = '';
  let lastLogged = 0;
  for (;;) {
    const run = await client.run(id);
    const text = renderRun(run).join('\n');
    // Print when a job changes state, and now and then to show progress.
    const states = (t: string) => t.replace(/ step .*|\s+loss .*| (eval|posterior) .*/g, '');
    if (!quiet && (states(text) !== states(lastText) || Date.now() - lastLogged >= LOG_EVERY_MS)) {
      process.stderr.write(`${text}\n`);
      lastLogged = Date.now();
    }
    lastText = text;
    if (FINAL.includes(run.status)) return run;
    await new Promise((wake) => setTimeout(wake, POLL_MS));
  }
}

async function followWithBars(client: ApiClient, id: string): Promise<RunView> {
  const bars = new cliProgress.MultiBar(
    {
      format: '  {label} {bar} {percentage}% {detail}',
      barsize: 24,
      hideCursor: true,
      clearOnComplete: false,
      stream: process.stderr,
    },
    cliProgress.Presets.shades_classic,
  );
  const status = bars.create(1, 0, { label: `run ${id}`.padEnd(18), detail: '' }, { format: '{label} {detail}' });
  const byJob = new Map<string, cliProgress.SingleBar>();
  try {
    for (;;) {
      const run = await client.run(id);
      status.update(0, { detail: run.status });
      for (const job of run.jobs) {
        const detail = jobDetail(job, run).trim();
        const values = { label: labelOf(job).padEnd(18), detail };
        const existing = byJob.get(job.id);
        if (existing) existing.update(Math.round(fractionOf(job) * 1000), values);
        else byJob.set(job.id, bars.create(1000, Math.round(fractionOf(job) * 1000), values));
      }
      if (FINAL.includes(run.status)) return run;
      await new Promise((wake) => setTimeout(wake, POLL_MS));
    }
  } finally {
    bars.stop();
  }
}
