/**
 * A local Grove cluster as plain processes: Redis (REDIS_URL or a private server), the API,
 * the merge service and N workers — what docker-compose runs, without Docker. The API takes a
 * token generated at each start, kept in the state folder (readable by this user only), so the
 * other users of the machine cannot drive it.
 */
import { type ChildProcess, spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { chmodSync, mkdirSync, openSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { dataRootsFromEnv } from '@grove/data';
import { freePort, redisForState } from '@grove/jobs';
import { apiTokenFile } from './api-token.js';

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
  /** Generate a token the API requires (the default); false leaves it open to every local user. */
  auth?: boolean;
}

export interface Cluster {
  apiUrl: string;
  /** The API's bearer token (also in `<state>/api-token`); undefined without auth. */
  token?: string;
  /** The dashboard; its link carries the token, which the page trades for a session cookie. */
  dashboardUrl: string;
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
  const token = options.auth === false ? undefined : writeApiToken(options.stateFolder);
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
  const start = (app: string, own: Record<string, string> = {}) => {
    const log = openSync(join(options.stateFolder, 'logs', `${app}-${serial++}.log`), 'a');
    const child = spawn(process.execPath, ['--import', 'tsx', join(APPS, app, 'src', 'main.ts')], {
      env: { ...env, ...own },
      stdio: ['ignore', log, log],
    });
    children.push(child);
    return child;
  };
  start('api', { GROVE_API_TOKENS: token ?? '' });
  start('merger');
  const workers = Array.from({ length: options.workers }, () => start('worker'));
  const apiUrl = `http://127.0.0.1:${port}`;
  const stop = async () => {
    await Promise.all(children.map((child) => stopProcess(child)));
    await redis.privateServer?.stop();
  };
  try {
    await waitForApi(apiUrl, children);
  } catch (error) {
    await stop(); // nothing outlives a cluster that did not start
    throw error;
  }
  return {
    apiUrl,
    token,
    dashboardUrl: token ? `${apiUrl}/ui?token=${token}` : `${apiUrl}/ui`,
    redisUrl: redis.url,
    workers,
    addWorker() {
      const worker = start('worker');
      workers.push(worker);
      return worker;
    },
    stop,
  };
}

/** A fresh random token in `<state>/api-token`, mode 0600. */
function writeApiToken(stateFolder: string): string {
  const token = randomBytes(24).toString('base64url');
  const file = apiTokenFile(stateFolder);
  writeFileSync(file, `${token}\n`, { mode: 0o600 });
  chmodSync(file, 0o600); // the mode above applies only when the file is new
  return token;
}

/** Generous: on a busy machine loading TypeScript and TensorFlow.js takes a while. */
const START_TIMEOUT_MS = 90_000;

async function waitForApi(url: string, children: ChildProcess[]): Promise<void> {
  const deadline = Date.now() + START_TIMEOUT_MS;
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
    if (Date.now() > deadline)
      throw new Error(`The API did not become ready at ${url} within ${START_TIMEOUT_MS / 1000} s.`);
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
