/**
 * Grove API as a process.
 *
 *   REDIS_URL=redis://… GROVE_API_TOKENS=secret1,secret2 PORT=8080 node --import tsx apps/api/src/main.ts
 *
 * Without GROVE_API_TOKENS it refuses any address but loopback.
 */
import { fileURLToPath } from 'node:url';
import { connectRedis, RunScheduler, runServiceProcess, stateFolder } from '@grove/jobs';
import { buildApi } from './server.js';

const LOOPBACK = ['127.0.0.1', '::1', 'localhost'];

export async function startApi(options: { redisUrl: string; host: string; port: number; tokens: string[] }) {
  if (options.tokens.length === 0 && !LOOPBACK.includes(options.host)) {
    throw new Error(`Refusing to serve ${options.host} without GROVE_API_TOKENS: set tokens or bind 127.0.0.1.`);
  }
  const connection = connectRedis(options.redisUrl);
  const scheduler = new RunScheduler(connection);
  const app = await buildApi({ scheduler, stateFolder: stateFolder(), tokens: options.tokens });
  const address = await app.listen({ host: options.host, port: options.port });
  return {
    address,
    async stop() {
      await app.close();
      await scheduler.close();
      connection.disconnect();
    },
  };
}

if (process.argv[1] === fileURLToPath(import.meta.url)) {
  const tokens = (process.env.GROVE_API_TOKENS ?? '')
    .split(',')
    .map((token) => token.trim())
    .filter(Boolean);
  const host = process.env.HOST ?? '127.0.0.1';
  const port = Number(process.env.PORT ?? 8080);
  await runServiceProcess(
    'api',
    ({ redisUrl }) => startApi({ redisUrl, host, port, tokens }),
    `listening on http://${host}:${port}${tokens.length ? '' : ' without a token: loopback only, open to anyone on this machine'}`,
  );
}
