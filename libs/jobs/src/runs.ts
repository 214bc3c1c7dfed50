/**
 * Run records in Redis. Each field of a run is its own hash field, so processes that update
 * different fields (a worker's status, the merger's table) never overwrite each other.
 */
import { createHash, randomBytes } from 'node:crypto';
import type { Redis } from 'ioredis';
import type { RunSpec } from './run-spec.js';

export type RunStatus = 'queued' | 'running' | 'completed' | 'failed' | 'cancelled';

export interface ScoreRow {
  /** `seed`, `dense`, `expert:<domain>`, `merged:<method>`, `ensemble:<variant>`, `btx`, `btx:finetuned`, `ds-moe…`. */
  model: string;
  domain: string;
  bitsPerByte: number;
  /** Parameters a token runs through (every expert's, for an ensemble). */
  activeParameters?: number;
  /** Bytes scored per second while evaluating (batch 16 × context, this backend). */
  tokensPerSecond?: number;
}

export interface RunRecord {
  id: string;
  spec: RunSpec;
  status: RunStatus;
  createdAt: string;
  updatedAt: string;
  error?: string;
  /** The eval table, once the run is evaluated. */
  rows?: ScoreRow[];
  /** Times the forest has grown a new expert since the run was submitted (0 when never). */
  generation?: number;
}

export interface RunMetric {
  job: string;
  /** Which replica of the expert, when it has several. */
  replica?: number;
  step: number;
  loss?: number;
  tokensPerSecond?: number;
  bitsPerByte?: Record<string, number>;
  /** `round` for a point that reports a Local-SGD round (the fields below). */
  kind?: 'round';
  round?: number;
  replicas?: number;
  innerSteps?: number;
  bytesSent?: number;
  bytesReceived?: number;
  compressionRatio?: number;
  syncSeconds?: number;
  computeSeconds?: number;
  time: string;
}

const key = {
  run: (id: string) => `grove:run:${id}`,
  metrics: (id: string) => `grove:run:${id}:metrics`,
  cancel: (id: string) => `grove:run:${id}:cancel`,
  /** Hashed: a key's length and bytes are the client's; `scope` keeps one caller's keys from another's. */
  idempotency: (token: string, scope: string) =>
    `grove:idempotency:${createHash('sha256').update(`${scope}\n${token}`).digest('hex')}`,
  index: 'grove:runs',
};

/** Points a run may record before the oldest are trimmed. */
const METRICS_MAX_LENGTH = 20_000;
const IDEMPOTENCY_TTL_SECONDS = 24 * 3600;
const FINAL: RunStatus[] = ['completed', 'failed', 'cancelled'];

/** KEYS[1]: the run; ARGV: spec, generation, updatedAt. Returns 1 when it reopened the run. */
const REOPEN_SCRIPT = `
if redis.call('HGET', KEYS[1], 'status') ~= 'completed' then return 0 end
redis.call('HSET', KEYS[1], 'spec', ARGV[1], 'status', 'queued', 'generation', ARGV[2], 'updatedAt', ARGV[3])
return 1`;

export function newRunId(): string {
  const stamp = new Date().toISOString().replace(/[-:T]/g, '').slice(0, 14);
  return `run-${stamp}-${randomBytes(3).toString('hex')}`;
}

export class RunStore {
  constructor(private readonly redis: Redis) {}

  /**
   * Creates the run unless one with this id (or idempotency key) exists; either way returns
   * the stored record and whether this call created it. An idempotency key counts only within
   * its `scope` (the caller), so one caller cannot find another's run by guessing its key.
   */
  async create(spec: RunSpec, idempotencyKey?: string, scope = ''): Promise<{ record: RunRecord; created: boolean }> {
    let id = spec.id ?? newRunId();
    if (idempotencyKey) {
      const idempotency = key.idempotency(idempotencyKey, scope);
      const claimed = await this.redis.set(idempotency, id, 'EX', IDEMPOTENCY_TTL_SECONDS, 'NX');
      if (!claimed) id = (await this.redis.get(idempotency)) as string;
    }
    const now = new Date().toISOString();
    const created = await this.redis.hsetnx(key.run(id), 'createdAt', now);
    if (created) {
      await this.redis
        .multi()
        .hset(key.run(id), { id, spec: JSON.stringify({ ...spec, id }), status: 'queued', updatedAt: now })
        .zadd(key.index, Date.now(), id)
        .exec();
    }
    return { record: (await this.get(id)) as RunRecord, created: created === 1 };
  }

  async ping(): Promise<void> {
    await this.redis.ping();
  }

  async get(id: string): Promise<RunRecord | undefined> {
    const fields = await this.redis.hgetall(key.run(id));
    if (!fields.spec) return undefined;
    return {
      id,
      spec: JSON.parse(fields.spec),
      status: fields.status as RunStatus,
      createdAt: fields.createdAt,
      updatedAt: fields.updatedAt,
      ...(fields.error ? { error: fields.error } : {}),
      ...(fields.rows ? { rows: JSON.parse(fields.rows) } : {}),
      ...(fields.generation ? { generation: Number(fields.generation) } : {}),
    };
  }

  /**
   * Reopens a completed run with a grown spec: only if it is still `completed`, checked and set
   * by one script that Redis runs atomically (a WATCH would not isolate requests that share a
   * connection), so of two concurrent grows exactly one starts. Returns whether this one did.
   */
  async reopen(id: string, spec: RunSpec, generation: number): Promise<boolean> {
    const reopened = await this.redis.eval(
      REOPEN_SCRIPT,
      1,
      key.run(id),
      JSON.stringify(spec),
      String(generation),
      new Date().toISOString(),
    );
    return reopened === 1;
  }

  /** Newest first. */
  async list(limit = 100): Promise<RunRecord[]> {
    const ids = await this.redis.zrevrange(key.index, 0, limit - 1);
    const records = await Promise.all(ids.map((id) => this.get(id)));
    return records.filter((record): record is RunRecord => record !== undefined);
  }

  /** Moves a run to `status` unless it already reached a final one (a cancelled run stays cancelled). */
  async setStatus(id: string, status: RunStatus, error?: string): Promise<void> {
    const current = (await this.redis.hget(key.run(id), 'status')) as RunStatus | null;
    if (!current || FINAL.includes(current)) return;
    const fields: Record<string, string> = { status, updatedAt: new Date().toISOString() };
    if (error) fields.error = error;
    await this.redis.hset(key.run(id), fields);
  }

  async setRows(id: string, rows: ScoreRow[]): Promise<void> {
    await this.redis.hset(key.run(id), { rows: JSON.stringify(rows), updatedAt: new Date().toISOString() });
  }

  async cancel(id: string): Promise<void> {
    await this.redis.set(key.cancel(id), '1');
    await this.setStatus(id, 'cancelled');
  }

  async isCancelled(id: string): Promise<boolean> {
    return (await this.redis.exists(key.cancel(id))) === 1;
  }

  async recordMetric(id: string, metric: Omit<RunMetric, 'time'>): Promise<void> {
    const point = JSON.stringify({ ...metric, time: new Date().toISOString() });
    await this.redis.xadd(key.metrics(id), 'MAXLEN', '~', METRICS_MAX_LENGTH, '*', 'point', point);
  }

  /** Points recorded after stream entry `after` ('0' for all), with their entry ids, oldest first. */
  async metricsSince(id: string, after: string, count = 2_000): Promise<{ id: string; point: RunMetric }[]> {
    const start = after === '0' ? '-' : `(${after}`;
    const entries = await this.redis.xrange(key.metrics(id), start, '+', 'COUNT', count);
    return entries.map(([entryId, fields]) => ({ id: entryId, point: JSON.parse(fields[1]) }));
  }

  /** The latest `count` points up to and including entry `until` ('+' for the newest), oldest first. */
  async metricsUntil(
    id: string,
    until: string,
    count = METRICS_MAX_LENGTH,
  ): Promise<{ id: string; point: RunMetric }[]> {
    const entries = await this.redis.xrevrange(key.metrics(id), until, '-', 'COUNT', count);
    return entries.reverse().map(([entryId, fields]) => ({ id: entryId, point: JSON.parse(fields[1]) }));
  }

  async metrics(id: string, count = 5_000): Promise<RunMetric[]> {
    const entries = await this.redis.xrevrange(key.metrics(id), '+', '-', 'COUNT', count);
    return entries.reverse().map(([, fields]) => JSON.parse(fields[1]));
  }
}
