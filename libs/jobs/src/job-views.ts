/**
 * The state, progress and attempts of many BullMQ jobs in one Redis call: a script reads each
 * job's hash and finds its state the way BullMQ's getState does (completed, failed, delayed,
 * prioritized sets, then the active, wait and paused lists, then waiting-children), so a view
 * of a run costs the same few commands whether it has ten jobs or a thousand.
 */
import type { Queue } from 'bullmq';
import type { Redis } from 'ioredis';

// KEYS: the job hashes. ARGV: for each job, its queue's key prefix and its id.
const JOB_STATES_SCRIPT = `
local views = {}
for i, hash in ipairs(KEYS) do
  local prefix, id = ARGV[2 * i - 1], ARGV[2 * i]
  local fields = redis.call('HMGET', hash, 'timestamp', 'progress', 'atm', 'failedReason')
  local state = 'not-created'
  if fields[1] then
    state = 'unknown'
    for _, set in ipairs({'completed', 'failed', 'delayed', 'prioritized'}) do
      if redis.call('ZSCORE', prefix .. set, id) then state = set break end
    end
    if state == 'unknown' and redis.call('LPOS', prefix .. 'active', id) then state = 'active' end
    if state == 'unknown' and (redis.call('LPOS', prefix .. 'wait', id) or redis.call('LPOS', prefix .. 'paused', id)) then
      state = 'waiting'
    end
    if state == 'unknown' and redis.call('ZSCORE', prefix .. 'waiting-children', id) then state = 'waiting-children' end
  end
  views[i] = {state, fields[2] or '', fields[3] or '', fields[4] or ''}
end
return views`;

export interface JobState {
  /** BullMQ's state name, or `not-created`. */
  state: string;
  progress: unknown;
  attempts: number;
  failedReason?: string;
}

export async function readJobStates(redis: Redis, jobs: { queue: Queue; id: string }[]): Promise<JobState[]> {
  if (jobs.length === 0) return [];
  const keys = jobs.map(({ queue, id }) => queue.toKey(id));
  const args = jobs.flatMap(({ queue, id }) => [queue.toKey(''), id]);
  const rows = (await redis.eval(JOB_STATES_SCRIPT, keys.length, ...keys, ...args)) as string[][];
  return rows.map(([state, progress, attempts, failedReason]) => ({
    state,
    progress: progress ? JSON.parse(progress) : 0,
    attempts: Number(attempts || 0),
    ...(failedReason ? { failedReason } : {}),
  }));
}
