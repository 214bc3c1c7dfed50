/** The API in this process on a loopback socket, against a private Redis, for the API suites. */
import { request } from 'node:http';
import type { AddressInfo } from 'node:net';
import { buildApi } from '@grove/api/server';
import { connectRedis, RunScheduler, startPrivateRedis } from '@grove/jobs';
import type { Redis } from 'ioredis';

export interface Answer {
  status: number;
  headers: Record<string, string | string[] | undefined>;
  body: string;
}

export type ListeningApi = Awaited<ReturnType<typeof listenApi>>;

export async function listenApi(stateFolder: string, tokens: string[]) {
  const redis = await startPrivateRedis(stateFolder);
  const connection = connectRedis(redis.url);
  const scheduler = new RunScheduler(connection);
  const app = await buildApi({ scheduler, stateFolder, tokens });
  await app.listen({ host: '127.0.0.1', port: 0 });
  const { port } = app.server.address() as AddressInfo;
  return {
    app,
    port,
    connection,
    scheduler,
    async stop() {
      await app.close();
      await scheduler.close();
      connection.disconnect();
      await redis.stop();
    },
  };
}

/** A raw HTTP request: the path goes on the wire exactly as written (no URL normalisation). */
export function send(
  port: number,
  method: string,
  path: string,
  headers: Record<string, string> = {},
  body?: string,
): Promise<Answer> {
  return new Promise((resolve, reject) => {
    const outgoing = request({ host: '127.0.0.1', port, method, path, headers }, (response) => {
      let text = '';
      response.setEncoding('utf8');
      response.on('data', (chunk) => {
        text += chunk;
      });
      response.on('end', () => resolve({ status: response.statusCode ?? 0, headers: response.headers, body: text }));
    });
    outgoing.on('error', reject);
    outgoing.end(body);
  });
}

/** Keys matching `pattern`, by SCAN: the application's Redis user may not run KEYS. */
export async function storedKeys(redis: Redis, pattern: string): Promise<string[]> {
  const found: string[] = [];
  let cursor = '0';
  do {
    const [next, keys] = await redis.scan(cursor, 'MATCH', pattern, 'COUNT', 1000);
    found.push(...keys);
    cursor = next;
  } while (cursor !== '0');
  return found;
}
