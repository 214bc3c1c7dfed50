/**
 * Grove API as a process.
 *
 *   REDIS_URL=redis://… GROVE_API_TOKENS=secret1,secret2 PORT=8080 node --import tsx apps/api/src/main.ts
 *
 * Without GROVE_API_TOKENS it refuses any address but loopback. It answers only requests whose
 * Host is a loopback name, the address it listens on, or one of GROVE_API_HOSTS (comma-separated).
 */
import { fileURLToPath } from 'node:url';
import { connectRedis, createLogger, RunScheduler, runServiceProcess, stateFolder } from '@grove/jobs';
import type { FastifyBaseLogger } from 'fastify';
import { LOOPBACK_HOSTS } from './hosts.js';
import { connectApiRedis } from './redis.js';
import { buildApi } from './server.js';

export interface StartApiOptions {
  redisUrl: string;
  host: string;
  port: number;
  tokens: string[];
  /** More host names to answer to (GROVE_API_HOSTS). */
  extraHosts?: string[];
  logger?: FastifyBaseLogger;
}

/** How long stopping waits for queues to close before it drops the Redis connections. */
const STOP_GRACE_MS = 5_000;

export async function startApi(options: StartApiOptions) {
  if (options.tokens.length === 0 && !LOOPBACK_HOSTS.includes(options.host)) {
    throw new Error(`Refusing to serve ${options.host} without GROVE_API_TOKENS: set tokens or bind 127.0.0.1.`);
  }
  const logger = options.logger ?? createLogger('api');
  const connection = connectApiRedis(options.redisUrl);
  connection.on('error', (error) => logger.warn({ err: error }, 'redis connection error'));
  // The metrics' queue event readers block on Redis: they copy this connection's options, not the fail-fast ones.
  const eventsConnection = connectRedis(options.redisUrl);
  eventsConnection.on('error', (error) => logger.warn({ err: error }, 'redis connection error'));
  const scheduler = new RunScheduler(connection);
  const app = await buildApi({
    scheduler,
    stateFolder: stateFolder(),
    tokens: options.tokens,
    host: options.host,
    extraHosts: options.extraHosts,
    logger,
    eventsConnection,
  });
  const address = await app.listen({ host: options.host, port: options.port });
  return {
    address,
    async stop() {
      // With Redis gone, closing queues waits for a reconnection that never comes: give it a
      // few seconds, then drop the connections, which ends whatever still waits on them.
      const closing = (async () => {
        await app.close();
        await scheduler.close();
      })();
      await Promise.race([closing, new Promise((wake) => setTimeout(wake, STOP_GRACE_MS).unref())]);
      connection.disconnect();
      eventsConnection.disconnect();
    },
  };
}

const list = (value: string | undefined) =>
  (value ?? '')
    .split(',')
    .map((item) => item.trim())
    .filter(Boolean);

if (process.argv[1] === fileURLToPath(import.meta.url)) {
  const tokens = list(process.env.GROVE_API_TOKENS);
  const host = process.env.HOST ?? '127.0.0.1';
  const port = Number(process.env.PORT ?? 8080);
  await runServiceProcess(
    'api',
    ({ redisUrl, logger }) =>
      startApi({ redisUrl, host, port, tokens, extraHosts: list(process.env.GROVE_API_HOSTS), logger }),
    `listening on http://${host}:${port}${tokens.length ? '' : ' without a token: loopback only, open to anyone on this machine'}`,
  );
}
