/**
 * A local Grove cluster as plain processes: Redis (REDIS_URL or a private server), the API,
 * the merge service and N workers — what docker-compose runs, without Docker.
 */
import { type ChildProcess, spawn } from 'node:child_process';
import { mkdirSync, openSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { dataRootsFromEnv } from '@grove/data';
import { freePort, redisForState } from '@grove/jobs';

const APPS = fileURLToPath(new URL('../../', import.meta.url));

export interface ClusterOptions {
  stateFolder: string;
  workers: number;
  /** API port; a free one when left out. */
  port?: number;
  /** Extra environment for every service (test settings such as GROVE_LOCK_MS). */
  env?: Record<string, string>;
  /** Folders runs may name as domains, besides those in GROVE_DATA_ROOTS. */
  dataRoots?: string[];
}

export interface Cluster {
  apiUrl: string;
  redisUrl: string;
  workers: ChildProcess[];
  /** Starts one more worker (scale up, or replace a killed one). */
  addWorker(): ChildProcess;
  stop(): Promise<void>;
}

export async function startCluster(options: ClusterOptions): Promise<Cluster> {
  mkdirSync(join(options.stateFolder, 'logs'), { recursive: true });
  const redis = await redisForState(options.stateFolder);
  const port = options.port ?? (await freePort());
  const env = {
    ...process.env,
    ...options.env,
    REDIS_URL: redis.url,
    GROVE_DATA_ROOTS: [...dataRootsFromEnv({ ...process.env, ...options.env }), ...(options.dataRoots ?? [])].join(':'),
    GROVE_STATE_DIR: options.stateFolder,
    HOST: '127.0.0.1',
    PORT: String(port),
  };
  const children: ChildProcess[] = [];
  let serial = 0;
  const start = (app: string) => {
    const log = openSync(join(options.stateFolder, 'logs', `${app}-${serial++}.log`), 'a');
    const child = spawn(process.execPath, ['--import', 'tsx', join(APPS, app, 'src', 'main.ts')], {
      env,
      stdio: ['ignore', log, log],
    });
    children.push(child);
    return child;
  };
  start('api');
  start('merger');
  const workers = Array.from({ length: options.workers }, () => start('worker'));
  const apiUrl = `http://127.0.0.1:${port}`;
  await waitForApi(apiUrl, children);
  return {
    apiUrl,
    redisUrl: redis.url,
    workers,
    addWorker() {
      const worker = start('worker');
      workers.push(worker);
      return worker;
    },
    async stop() {
      await Promise.all(children.map((child) => stopProcess(child)));
      await redis.privateServer?.stop();
    },
  };
}

async function waitForApi(url: string, children: ChildProcess[]): Promise<void> {
  const deadline = Date.now() + 30_000;
  for (;;) {
    const dead = children.find((child) => child.exitCode !== null);
    if (dead)
      throw new Error(
        `A Grove service exited at start (code ${dead.exitCode}); see the logs folder of the state folder.`,
      );
    try {
      if ((await fetch(`${url}/readyz`)).ok) return;
    } catch {
      // not listening yet
    }
    if (Date.now() > deadline) throw new Error(`The API did not become ready at ${url} within 30 s.`);
    await new Promise((wake) => setTimeout(wake, 200));
  }
}

/** SIGTERM, then SIGKILL after a grace period: a worker checkpoints before it exits. */
function stopProcess(child: ChildProcess, graceMs = 20_000): Promise<void> {
  return new Promise((done) => {
    if (child.exitCode !== null || child.signalCode !== null) return done();
    const timer = setTimeout(() => child.kill('SIGKILL'), graceMs);
    child.once('exit', () => {
      clearTimeout(timer);
      done();
    });
    child.kill('SIGTERM');
  });
}
