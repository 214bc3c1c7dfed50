/**
 * Redis for Grove: the REDIS_URL given, or a private redis-server on a free loopback port
 * with its data under the state folder (AOF on, noeviction: a queue must never lose jobs
 * to eviction). Debian's redis-server is installed with apt-get when missing and possible.
 */
import { type ChildProcess, execFileSync, spawn, spawnSync } from 'node:child_process';
import { mkdirSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:net';
import { join, resolve } from 'node:path';
import { Redis, type RedisOptions } from 'ioredis';

/** BullMQ workers need blocking commands without a retry cap. */
export const BULLMQ_REDIS_OPTIONS: RedisOptions = { maxRetriesPerRequest: null };

export function connectRedis(url: string): Redis {
  return new Redis(url, BULLMQ_REDIS_OPTIONS);
}

export interface PrivateRedis {
  url: string;
  process: ChildProcess;
  stop(): Promise<void>;
}

export async function freePort(): Promise<number> {
  return new Promise((resolvePort, reject) => {
    const server = createServer();
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const address = server.address();
      server.close(() => resolvePort(typeof address === 'object' && address ? address.port : 0));
    });
  });
}

/** Finds redis-server, installing Debian's package when it is missing and this user may. */
export function ensureRedisServer(): string {
  const found = spawnSync('sh', ['-c', 'command -v redis-server'], { encoding: 'utf8' }).stdout.trim();
  if (found) return found;
  const canInstall = process.getuid?.() === 0 && spawnSync('sh', ['-c', 'command -v apt-get']).status === 0;
  if (canInstall) {
    const env = { ...process.env, DEBIAN_FRONTEND: 'noninteractive' };
    spawnSync('apt-get', ['update', '-qq'], { stdio: 'ignore', env });
    execFileSync('apt-get', ['install', '-y', '-qq', 'redis-server'], { stdio: 'ignore', env });
    const installed = spawnSync('sh', ['-c', 'command -v redis-server'], { encoding: 'utf8' }).stdout.trim();
    if (installed) return installed;
  }
  throw new Error(
    'redis-server is not installed: run `sudo apt-get install redis-server`, or set REDIS_URL to a running Redis.',
  );
}

/** Starts a private Redis for this state folder and waits until it answers. */
export async function startPrivateRedis(stateFolder: string): Promise<PrivateRedis> {
  const binary = ensureRedisServer();
  const dir = resolve(stateFolder, 'redis');
  mkdirSync(dir, { recursive: true });
  const port = await freePort();
  const config = [
    'bind 127.0.0.1',
    `port ${port}`,
    `dir ${dir}`,
    'appendonly yes',
    'appendfsync everysec',
    'maxmemory-policy noeviction',
    'save ""',
    'daemonize no',
    'protected-mode yes',
  ].join('\n');
  const configPath = join(dir, 'redis.conf');
  writeFileSync(configPath, `${config}\n`);
  const child = spawn(binary, [configPath], { stdio: ['ignore', 'ignore', 'pipe'] });
  let stderr = '';
  child.stderr?.on('data', (chunk) => {
    stderr += chunk;
  });
  const url = `redis://127.0.0.1:${port}`;
  const deadline = Date.now() + 10_000;
  for (;;) {
    if (child.exitCode !== null)
      throw new Error(`redis-server exited at start: ${stderr.trim() || `code ${child.exitCode}`}`);
    const probe = new Redis(url, { lazyConnect: true, maxRetriesPerRequest: 0, retryStrategy: () => null });
    probe.on('error', () => {}); // refused until the server listens: expected while waiting
    try {
      await probe.connect();
      await probe.ping();
      probe.disconnect();
      break;
    } catch {
      probe.disconnect();
      if (Date.now() > deadline) {
        child.kill('SIGKILL');
        throw new Error(`redis-server did not answer on ${url} within 10 s.`);
      }
      await new Promise((wake) => setTimeout(wake, 50));
    }
  }
  return {
    url,
    process: child,
    stop: () =>
      new Promise<void>((done) => {
        if (child.exitCode !== null) return done();
        child.once('exit', () => done());
        child.kill('SIGTERM');
      }),
  };
}

/** REDIS_URL when set, else a private server under the state folder. */
export async function redisForState(stateFolder: string): Promise<{ url: string; privateServer?: PrivateRedis }> {
  if (process.env.REDIS_URL) return { url: process.env.REDIS_URL };
  const privateServer = await startPrivateRedis(stateFolder);
  return { url: privateServer.url, privateServer };
}

export function stateFolder(): string {
  return resolve(process.env.GROVE_STATE_DIR ?? '.grove');
}
