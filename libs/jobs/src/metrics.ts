/**
 * Prometheus metrics across processes: each worker keeps its own prom-client registry and
 * publishes it to Redis every few seconds; the API's /metrics serves its own registry plus
 * the aggregate of every worker heard from in the last minute. One scrape target for the
 * whole cluster, with no worker ports to discover; series carry a `worker` label.
 */
import type { Redis } from 'ioredis';
import { AggregatorRegistry, type Registry } from 'prom-client';

type PublishedMetrics = Parameters<typeof AggregatorRegistry.aggregate>[0][number];

const WORKERS_KEY = 'grove:metrics:workers';
const FRESH_MS = 60_000;

export async function publishMetrics(redis: Redis, worker: string, registry: Registry): Promise<void> {
  const metrics = await registry.getMetricsAsJSON();
  await redis.hset(WORKERS_KEY, worker, JSON.stringify({ at: Date.now(), metrics }));
}

export async function forgetMetrics(redis: Redis, worker: string): Promise<void> {
  await redis.hdel(WORKERS_KEY, worker);
}

/** The Prometheus text of every worker published recently; stale entries are dropped. */
export async function publishedMetrics(redis: Redis): Promise<string> {
  const entries = await redis.hgetall(WORKERS_KEY);
  const fresh: PublishedMetrics[] = [];
  for (const [worker, json] of Object.entries(entries)) {
    const { at, metrics } = JSON.parse(json) as { at: number; metrics: PublishedMetrics };
    if (Date.now() - at <= FRESH_MS) fresh.push(metrics);
    else await redis.hdel(WORKERS_KEY, worker);
  }
  if (fresh.length === 0) return '';
  return AggregatorRegistry.aggregate(fresh).metrics();
}
