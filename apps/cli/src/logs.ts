/** `grove logs <run>`: a run's events as lines — job state changes, training steps, evaluations, Local-SGD rounds. */
import type { JobView, RunMetric } from '@grove/jobs';
import type { ApiClient, RunView } from './api-client.js';

const clock = (iso: string) => iso.slice(11, 19);

export function describePoint(point: RunMetric): string {
  const label = `${point.job}${point.replica !== undefined ? `#${point.replica}` : ''}`.padEnd(18);
  if (point.kind === 'round') {
    const megabytes = ((point.bytesSent ?? 0) / 1e6).toFixed(2);
    return `${clock(point.time)} ${label} round ${point.round}: ${point.replicas} replicas, ${point.innerSteps} steps, ${megabytes} MB sent (${(point.compressionRatio ?? 1).toFixed(1)}× smaller than fp32), sync ${(point.syncSeconds ?? 0).toFixed(2)} s, compute ${(point.computeSeconds ?? 0).toFixed(2)} s`;
  }
  if (point.bitsPerByte) {
    const scores = Object.entries(point.bitsPerByte).map(([domain, value]) => `${domain} ${value.toFixed(3)}`);
    return `${clock(point.time)} ${label} step ${point.step}: held-out bits/byte ${scores.join(', ')}`;
  }
  const speed = point.tokensPerSecond ? `  ${Math.round(point.tokensPerSecond)} tokens/s` : '';
  const loss = point.loss !== undefined ? `  loss ${point.loss.toFixed(3)}` : '';
  return `${clock(point.time)} ${label} step ${point.step}${loss}${speed}`;
}

/** Prints every event of the run until it ends; returns the final run. */
export async function followLogs(
  client: ApiClient,
  id: string,
  write: (line: string) => void,
): Promise<RunView | undefined> {
  const states = new Map<string, string>();
  let last: RunView | undefined;
  for await (const { event, data } of client.events(id)) {
    if (event === 'points') for (const point of data as RunMetric[]) write(describePoint(point));
    if (event !== 'run' || !data) continue;
    const run = data as RunView;
    if (last?.status !== run.status) write(`run ${run.id} ${run.status}${run.error ? ` (${run.error})` : ''}`);
    for (const job of run.jobs as JobView[]) {
      if (states.get(job.id) === job.state) continue;
      states.set(job.id, job.state);
      write(`${''.padEnd(8)} ${job.id} ${job.state}${job.failedReason ? ` (${job.failedReason})` : ''}`);
    }
    last = run;
  }
  return last;
}
