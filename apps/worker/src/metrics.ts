/**
 * A worker's Prometheus metrics, published through Redis for the API's /metrics to serve
 * (see @grove/jobs metrics.ts): the process itself, training speed, and Local-SGD traffic.
 */
import { hostname } from 'node:os';
import { forgetMetrics, publishMetrics } from '@grove/jobs';
import type { RoundMetrics } from '@grove/localsgd';
import type { Redis } from 'ioredis';
import { Counter, collectDefaultMetrics, Gauge, Histogram, Registry } from 'prom-client';
import { failureLog } from './failures.js';

const PUBLISH_MS = 5_000;

export function workerMetrics(redis: Redis) {
  const worker = `${hostname()}:${process.pid}`;
  const registry = new Registry();
  registry.setDefaultLabels({ worker });
  collectDefaultMetrics({ register: registry, prefix: 'grove_worker_' });
  const labels = ['run', 'job'];
  const tokensPerSecond = new Gauge({
    name: 'grove_worker_tokens_per_second',
    help: 'Training throughput of the job this worker runs',
    labelNames: labels,
    registers: [registry],
  });
  const steps = new Counter({
    name: 'grove_worker_steps_total',
    help: 'Training steps taken',
    labelNames: labels,
    registers: [registry],
  });
  const bytesSent = new Counter({
    name: 'grove_peer_bytes_sent_total',
    help: 'Bytes sent to other replicas in Local-SGD rounds',
    labelNames: labels,
    registers: [registry],
  });
  const bytesReceived = new Counter({
    name: 'grove_peer_bytes_received_total',
    help: 'Bytes received from other replicas in Local-SGD rounds',
    labelNames: labels,
    registers: [registry],
  });
  const seconds = [0.01, 0.05, 0.1, 0.5, 1, 5, 15, 60, 300];
  const syncSeconds = new Histogram({
    name: 'grove_localsgd_sync_seconds',
    help: 'Time a Local-SGD round spent synchronising',
    labelNames: labels,
    buckets: seconds,
    registers: [registry],
  });
  const computeSeconds = new Histogram({
    name: 'grove_localsgd_compute_seconds',
    help: 'Time a Local-SGD round spent in inner steps',
    labelNames: labels,
    buckets: seconds,
    registers: [registry],
  });
  const rounds = new Counter({
    name: 'grove_localsgd_rounds_total',
    help: 'Local-SGD rounds completed',
    labelNames: labels,
    registers: [registry],
  });

  const publishFailed = failureLog('publishing metrics');
  const publish = () => publishFailed(publishMetrics(redis, worker, registry));
  const timer = setInterval(publish, PUBLISH_MS);
  timer.unref();
  publish();

  return {
    step(run: string, job: string, rate: number | undefined) {
      steps.inc({ run, job });
      if (rate !== undefined && Number.isFinite(rate)) tokensPerSecond.set({ run, job }, rate);
    },
    round(run: string, job: string, metrics: RoundMetrics) {
      rounds.inc({ run, job });
      bytesSent.inc({ run, job }, metrics.bytesSent);
      bytesReceived.inc({ run, job }, metrics.bytesReceived);
      syncSeconds.observe({ run, job }, metrics.syncSeconds);
      computeSeconds.observe({ run, job }, metrics.computeSeconds);
    },
    jobEnded(run: string, job: string) {
      tokensPerSecond.remove({ run, job });
      publish();
    },
    async close() {
      clearInterval(timer);
      // Stale entries expire on the API's side; a worker that cannot reach Redis still stops.
      await forgetMetrics(redis, worker).catch((error: unknown) =>
        console.error(`worker: withdrawing metrics failed: ${error instanceof Error ? error.message : String(error)}`),
      );
    },
  };
}
