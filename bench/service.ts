/**
 * The queue's own cost: time from POST /v1/runs to the first training step, and per job the
 * time a run spends between jobs (queueing, dispatch, child start) rather than inside them.
 *   npx tsx bench/service.ts [runs]
 */
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { startCluster } from '@grove/cli/cluster';
import { connectRedis, jobIds, QUEUES } from '@grove/jobs';
import { median, smokeCap } from '@grove/train';
import { Queue } from 'bullmq';

const runs = smokeCap('runs', Number(process.argv[2] ?? 5));
const cluster = await startCluster({ stateFolder: mkdtempSync(join(tmpdir(), 'grove-bench-')), workers: 1 });
const connection = connectRedis(cluster.redisUrl);
const queues = { train: new Queue(QUEUES.train, { connection }), merge: new Queue(QUEUES.merge, { connection }) };
const spec = {
  domains: ['press', 'fiction'],
  seed: { steps: 1 },
  expertSteps: 1,
  training: { batchSize: 1, warmupSteps: 1, checkpointEvery: 100 },
  eval: { bytes: 1024 },
  merge: { methods: ['linear'] },
};

const toFirstStep: number[] = [];
const auth: Record<string, string> = cluster.token ? { authorization: `Bearer ${cluster.token}` } : {};
const overheadPerJob: number[] = [];
for (let i = 0; i < runs; i++) {
  const posted = Date.now();
  const response = await fetch(`${cluster.apiUrl}/v1/runs`, {
    method: 'POST',
    headers: { 'content-type': 'application/json', ...auth },
    body: JSON.stringify({ ...spec, id: `bench-${i}` }),
  });
  const { id } = (await response.json()) as { id: string };
  let firstStep: number | undefined;
  for (;;) {
    const run = (await (await fetch(`${cluster.apiUrl}/v1/runs/${id}`, { headers: auth })).json()) as {
      status: string;
    };
    if (firstStep === undefined) {
      const { points } = (await (await fetch(`${cluster.apiUrl}/v1/runs/${id}/metrics`, { headers: auth })).json()) as {
        points: { time: string }[];
      };
      if (points.length) firstStep = Date.parse(points[0].time);
    }
    if (['completed', 'failed', 'cancelled'].includes(run.status)) break;
    await new Promise((wake) => setTimeout(wake, 20));
  }
  const finished = Date.now();
  const jobs = await Promise.all([
    queues.train.getJob(jobIds.seed(id)),
    queues.train.getJob(jobIds.expert(id, 'press', 0)),
    queues.train.getJob(jobIds.expert(id, 'fiction', 0)),
    queues.merge.getJob(jobIds.merge(id)),
    queues.merge.getJob(jobIds.eval(id)),
  ]);
  const inside = jobs.reduce((sum, job) => sum + ((job?.finishedOn ?? 0) - (job?.processedOn ?? 0)), 0);
  toFirstStep.push((firstStep ?? finished) - posted);
  overheadPerJob.push((finished - posted - inside) / jobs.length);
  console.error(
    `run ${i}: first step after ${toFirstStep[i]} ms, ${overheadPerJob[i].toFixed(0)} ms outside jobs per job`,
  );
}
console.log(
  JSON.stringify({
    runs,
    medianMsToFirstStep: median(toFirstStep),
    medianQueueOverheadMsPerJob: Math.round(median(overheadPerJob)),
  }),
);
await queues.train.close();
await queues.merge.close();
connection.disconnect();
await cluster.stop();
