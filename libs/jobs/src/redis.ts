/**
 * Redis for Grove: the REDIS_URL given, or a private redis-server on a free loopback port
 * with its data under the state folder (AOF on, noeviction: a queue must never lose jobs
 * to eviction). Debian's redis-server is installed with apt-get when missing and possible.
 *
 * The private server trusts no local user: the `default` user is off, and Grove connects as
 * `grove` with a random password, allowed everything but the dangerous commands BullMQ does
 * not need. An `admin` user, with its own random password, keeps every command.
 */
import { type ChildProcess, execFileSync, spawn, spawnSync } from 'node:child_process';
import { createHash, randomBytes } from 'node:crypto';
import { chmodSync, mkdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:net';
import { join, resolve } from 'node:path';
import { Redis, type RedisOptions } from 'ioredis';

/** BullMQ workers need blocking commands without a retry cap. */
export const BULLMQ_REDIS_OPTIONS: RedisOptions = { maxRetriesPerRequest: null };

/**
 * Connection options a URL needs beyond itself: for `rediss://`, the CA that signed a
 * self-signed server certificate (GROVE_REDIS_CA_FILE) and the client certificate and key
 * of mutual TLS (GROVE_REDIS_TLS_CERT_FILE, GROVE_REDIS_TLS_KEY_FILE).
 */
export function redisTlsOptions(url: string, env: NodeJS.ProcessEnv = process.env): RedisOptions {
  if (!url.startsWith('rediss://')) return {};
  const file = (variable: string) => {
    const path = env[variable];
    if (!path) return undefined;
    try {
      return readFileSync(path);
    } catch (error) {
      throw new Error(`${variable}=${path} cannot be read: ${(error as Error).message}`);
    }
  };
  return {
    tls: {
      ca: file('GROVE_REDIS_CA_FILE'),
      cert: file('GROVE_REDIS_TLS_CERT_FILE'),
      key: file('GROVE_REDIS_TLS_KEY_FILE'),
    },
  };
}

export function connectRedis(url: string, overrides: RedisOptions = {}): Redis {
  return new Redis(url, { ...BULLMQ_REDIS_OPTIONS, ...redisTlsOptions(url), ...overrides });
}

/** The URL with its password replaced by `***`: what may be printed or logged. */
export function redactRedisUrl(url: string): string {
  try {
    const parsed = new URL(url);
    if (parsed.password) parsed.password = '***';
    return parsed.toString();
  } catch {
    return url.replace(/\/\/[^@/]*@/, '//***@');
  }
}

/**
 * Warns when Redis may lose queued jobs (AOF off, or an eviction policy other than
 * noeviction); with GROVE_REQUIRE_DURABLE_REDIS=1 it refuses instead. Reads INFO only,
 * which an application user without CONFIG rights may run. Returns the problems found.
 */
export async function checkRedisDurability(
  connection: Redis,
  options: { label?: string; env?: NodeJS.ProcessEnv } = {},
): Promise<string[]> {
  const info = (await connection.info('persistence')) + (await connection.info('memory'));
  const field = (name: string) => info.match(new RegExp(`^${name}:(.*)$`, 'm'))?.[1]?.trim();
  const problems: string[] = [];
  if (field('aof_enabled') !== '1')
    problems.push('AOF is off (appendonly no): queued jobs and run records are lost when Redis restarts');
  const policy = field('maxmemory_policy');
  if (policy !== 'noeviction')
    problems.push(
      `maxmemory-policy is ${policy ?? 'unknown'}, not noeviction: Redis may evict jobs when memory is full`,
    );
  if (problems.length === 0) return problems;
  const label = options.label ?? 'grove';
  const summary = `${label}: Redis is not durable: ${problems.join('; ')}. See infra/redis.conf.`;
  if ((options.env ?? process.env).GROVE_REQUIRE_DURABLE_REDIS === '1')
    throw new Error(`${summary} Refusing to start (GROVE_REQUIRE_DURABLE_REDIS=1).`);
  console.error(`WARNING ${summary}`);
  return problems;
}

export interface PrivateRedis {
  /** Connects as the application user `grove`: `redis://grove:<password>@127.0.0.1:<port>`. */
  url: string;
  /** Connects as `admin`, with every command. */
  adminUrl: string;
  /** The 0600 files holding the two passwords. */
  secretFiles: { grove: string; admin: string };
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

/**
 * What the application user may not run: @dangerous (CONFIG, FLUSHALL, FLUSHDB, DEBUG,
 * SHUTDOWN, MONITOR, KEYS, ACL, replication…) except INFO, which ioredis's ready check and
 * BullMQ's version check read, and CLIENT LIST, behind BullMQ's getWorkers (Bull Board).
 */
const APPLICATION_RIGHTS = '~* &* +@all -@dangerous +info +client|list';

/** Writes a file only its owner may read, replacing any earlier one (whatever its mode). */
function writeSecretFile(path: string, text: string): void {
  rmSync(path, { force: true });
  writeFileSync(path, text, { mode: 0o600, flag: 'wx' });
}

const sha256 = (text: string) => createHash('sha256').update(text).digest('hex');

/**
 * Starts a private Redis for this state folder and waits until it answers. Each start makes
 * new passwords, written to `<state>/redis/grove.password` and `admin.password` (mode 0600).
 */
export async function startPrivateRedis(stateFolder: string): Promise<PrivateRedis> {
  const binary = ensureRedisServer();
  const dir = resolve(stateFolder, 'redis');
  mkdirSync(dir, { recursive: true, mode: 0o700 });
  chmodSync(dir, 0o700); // the AOF holds every job: no other local user may read it
  const port = await freePort();
  const passwords = { grove: randomBytes(24).toString('hex'), admin: randomBytes(24).toString('hex') };
  const secretFiles = { grove: join(dir, 'grove.password'), admin: join(dir, 'admin.password') };
  writeSecretFile(secretFiles.grove, `${passwords.grove}\n`);
  writeSecretFile(secretFiles.admin, `${passwords.admin}\n`);
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
    'enable-debug-command no',
    'user default off resetpass resetkeys resetchannels -@all',
    `user admin on #${sha256(passwords.admin)} ~* &* +@all`,
    `user grove on #${sha256(passwords.grove)} ${APPLICATION_RIGHTS}`,
  ].join('\n');
  const configPath = join(dir, 'redis.conf');
  writeSecretFile(configPath, `${config}\n`);
  const child = spawn(binary, [configPath], { stdio: ['ignore', 'ignore', 'pipe'] });
  let stderr = '';
  child.stderr?.on('data', (chunk) => {
    stderr += chunk;
  });
  const url = `redis://grove:${passwords.grove}@127.0.0.1:${port}`;
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
        throw new Error(`redis-server did not answer on ${redactRedisUrl(url)} within 10 s.`);
      }
      await new Promise((wake) => setTimeout(wake, 50));
    }
  }
  return {
    url,
    adminUrl: `redis://admin:${passwords.admin}@127.0.0.1:${port}`,
    secretFiles,
    process: child,
    stop: () =>
      new Promise<void>((done) => {
        if (child.exitCode !== null || child.signalCode !== null) return done(); // already gone, killed or not
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
