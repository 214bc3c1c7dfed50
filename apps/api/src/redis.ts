/**
 * The API's Redis connection fails fast: no offline queue (a command sent while Redis is away
 * is refused, not replayed when it returns), a timeout on every command and one retry. A
 * request answers 503 with Retry-After instead of waiting, and a write the client gave up on
 * is never applied later. BullMQ's blocking readers (QueueEvents) keep their own connections.
 */
import { Redis, type RedisOptions } from 'ioredis';

export const API_REDIS_OPTIONS: RedisOptions = {
  enableOfflineQueue: false,
  commandTimeout: 2_000,
  maxRetriesPerRequest: 1,
};

/** How long /readyz and a submission wait for Redis to answer a ping before saying it is away. */
export const PING_TIMEOUT_MS = 800;

/** Seconds a client is told to wait before retrying while Redis is away. */
export const RETRY_AFTER_SECONDS = 5;

export function connectApiRedis(url: string): Redis {
  return new Redis(url, API_REDIS_OPTIONS);
}

export class RedisUnavailableError extends Error {
  constructor(cause: string) {
    super(`Redis is not reachable (${cause}); retry in ${RETRY_AFTER_SECONDS} s.`);
    this.name = 'RedisUnavailableError';
  }
}

/** Resolves when Redis answers a ping within PING_TIMEOUT_MS; throws RedisUnavailableError otherwise. */
export async function pingRedis(redis: Redis): Promise<void> {
  let timer: NodeJS.Timeout | undefined;
  const late = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`no answer within ${PING_TIMEOUT_MS} ms`)), PING_TIMEOUT_MS);
  });
  try {
    await Promise.race([redis.ping(), late]);
  } catch (error) {
    throw new RedisUnavailableError((error as Error).message);
  } finally {
    clearTimeout(timer);
  }
}

/** Errors ioredis raises when Redis is away (refused while offline, timed out, closed, retries spent). */
export function isRedisUnavailable(error: Error): boolean {
  return (
    error instanceof RedisUnavailableError ||
    error.name === 'MaxRetriesPerRequestError' ||
    /enableOfflineQueue|Command timed out|Connection is closed|ECONNREFUSED/.test(error.message)
  );
}
