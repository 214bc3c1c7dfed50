/** Redis as Grove uses it, against real redis-server processes: ACLs, durability checks, TLS. */
import assert from 'node:assert/strict';
import { type ChildProcess, execFileSync, spawn } from 'node:child_process';
import { mkdtempSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { Queue, Worker } from 'bullmq';
import { Redis } from 'ioredis';
import {
  checkRedisDurability,
  connectRedis,
  ensureRedisServer,
  freePort,
  type PrivateRedis,
  redactRedisUrl,
  redisTlsOptions,
  startPrivateRedis,
} from './redis.js';

/** A redis-server with the given config lines (later lines win) on a free loopback port; resolves once it listens. */
async function startRedisServer(lines: (port: number) => string[]): Promise<{ port: number; stop(): Promise<void> }> {
  const port = await freePort();
  const child: ChildProcess = spawn(ensureRedisServer(), ['-'], { stdio: ['pipe', 'pipe', 'pipe'] });
  child.stdin?.end([`port ${port}`, 'bind 127.0.0.1', 'save ""', ...lines(port)].join('\n'));
  let output = '';
  await new Promise<void>((ready, fail) => {
    const onData = (chunk: Buffer) => {
      output += chunk;
      if (output.includes('Ready to accept connections')) ready();
    };
    child.stdout?.on('data', onData);
    child.stderr?.on('data', onData);
    child.once('exit', () => fail(new Error(`redis-server exited: ${output}`)));
  });
  return {
    port,
    stop: () =>
      new Promise((done) => {
        child.once('exit', () => done());
        child.kill('SIGTERM');
      }),
  };
}

/** A BullMQ queue and worker exchange one job over this URL; returns the worker's result. */
async function bullmqRoundTrip(url: string): Promise<unknown> {
  const producer = connectRedis(url);
  const consumer = connectRedis(url);
  const queue = new Queue('round-trip', { connection: producer });
  const finished = new Promise((resolveResult, reject) => {
    const worker = new Worker('round-trip', async (job) => ({ doubled: job.data.n * 2 }), {
      connection: consumer,
    });
    worker.on('completed', async (_job, result) => {
      await worker.close();
      resolveResult(result);
    });
    worker.on('failed', (_job, error) => reject(error));
    worker.on('error', reject);
  });
  try {
    await queue.add('double', { n: 21 });
    return await finished;
  } finally {
    await queue.close();
    producer.disconnect();
    consumer.disconnect();
  }
}

async function replyTo(connection: Redis, ...command: [string, ...string[]]): Promise<string> {
  try {
    return String(await connection.call(...command));
  } catch (error) {
    return (error as Error).message;
  }
}

describe('private Redis', () => {
  const state = mkdtempSync(join(tmpdir(), 'grove-redis-'));
  let redis: PrivateRedis;
  before(async () => {
    redis = await startPrivateRedis(state);
  });
  after(() => redis.stop());

  it('refuses clients without the password or with a wrong one', async () => {
    const { port } = new URL(redis.url);
    const anonymous = new Redis(Number(port), '127.0.0.1', { maxRetriesPerRequest: 0, enableReadyCheck: false });
    assert.match(await replyTo(anonymous, 'SET', 'runs:forged', 'completed'), /^NOAUTH/);
    assert.match(await replyTo(anonymous, 'CONFIG', 'SET', 'appendonly', 'no'), /^NOAUTH/);
    anonymous.disconnect();
    const guessed = new Redis(Number(port), '127.0.0.1', { maxRetriesPerRequest: 0, enableReadyCheck: false });
    assert.match(await replyTo(guessed, 'AUTH', 'grove', 'guess'), /^WRONGPASS/);
    assert.match(await replyTo(guessed, 'AUTH', 'default', ''), /^WRONGPASS/);
    guessed.disconnect();
  });

  it('denies the application user the dangerous commands', async () => {
    assert.match(redis.url, /^redis:\/\/grove:[0-9a-f]{48}@127\.0\.0\.1:\d+$/);
    const app = connectRedis(redis.url);
    for (const command of [
      ['CONFIG', 'SET', 'appendonly', 'no'],
      ['CONFIG', 'GET', 'requirepass'],
      ['FLUSHALL'],
      ['FLUSHDB'],
      ['SHUTDOWN', 'NOSAVE'],
      ['MONITOR'],
      ['ACL', 'SETUSER', 'default', 'on', 'nopass', '+@all'],
    ] as [string, ...string[]][]) {
      assert.match(await replyTo(app, ...command), /^NOPERM/, command.join(' '));
    }
    // DEBUG is off for every user (enable-debug-command no), before ACLs are even asked.
    assert.match(await replyTo(app, 'DEBUG', 'SLEEP', '0'), /^(NOPERM|ERR DEBUG command not allowed)/);
    assert.equal(await app.set('grove:probe', '1'), 'OK', 'ordinary commands work');
    app.disconnect();
    const admin = connectRedis(redis.adminUrl);
    assert.match(await replyTo(admin, 'CONFIG', 'GET', 'appendonly'), /appendonly,yes/);
    admin.disconnect();
  });

  it('runs a BullMQ queue and worker as the application user without a denied command', async () => {
    const admin = connectRedis(redis.adminUrl);
    await admin.call('ACL', 'LOG', 'RESET');
    assert.deepEqual(await bullmqRoundTrip(redis.url), { doubled: 42 });
    const denied = (await admin.call('ACL', 'LOG')) as unknown[];
    admin.disconnect();
    assert.deepEqual(denied, [], 'BullMQ ran no command the application user lacks');
  });

  it('keeps the passwords in files only their owner may read', () => {
    for (const file of Object.values(redis.secretFiles)) assert.equal(statSync(file).mode & 0o777, 0o600, file);
    assert.equal(statSync(join(state, 'redis', 'redis.conf')).mode & 0o777, 0o600);
    assert.equal(statSync(join(state, 'redis')).mode & 0o777, 0o700);
    const password = readFileSync(redis.secretFiles.grove, 'utf8').trim();
    assert.equal(new URL(redis.url).password, password);
    assert.ok(!readFileSync(join(state, 'redis', 'redis.conf'), 'utf8').includes(password), 'only its hash');
  });

  it('redacts the password of any URL it prints', () => {
    const printed = redactRedisUrl(redis.url);
    assert.ok(!printed.includes(new URL(redis.url).password));
    assert.match(printed, /^redis:\/\/grove:\*\*\*@127\.0\.0\.1:\d+$/);
    assert.equal(redactRedisUrl('rediss://:hunter2@cache.example:6380/0'), 'rediss://:***@cache.example:6380/0');
    assert.equal(redactRedisUrl('redis://127.0.0.1:6379'), 'redis://127.0.0.1:6379');
  });

  it('finds its own server durable', async () => {
    const app = connectRedis(redis.url);
    assert.deepEqual(await checkRedisDurability(app), []);
    app.disconnect();
  });
});

describe('an external Redis that may lose jobs', () => {
  let server: Awaited<ReturnType<typeof startRedisServer>>;
  let url: string;
  before(async () => {
    server = await startRedisServer(() => ['appendonly no', 'maxmemory-policy allkeys-lru']);
    url = `redis://127.0.0.1:${server.port}`;
  });
  after(() => server.stop());

  it('is named for what it lacks, and refused when durability is required', async (t) => {
    const warn = t.mock.method(console, 'error', () => {});
    const connection = connectRedis(url);
    const problems = await checkRedisDurability(connection, { label: 'worker', env: {} });
    assert.equal(problems.length, 2);
    assert.match(problems[0], /AOF is off/);
    assert.match(problems[1], /maxmemory-policy is allkeys-lru, not noeviction/);
    assert.match(String(warn.mock.calls[0]?.arguments[0]), /^WARNING worker: Redis is not durable: AOF is off/);
    await assert.rejects(
      checkRedisDurability(connection, { env: { GROVE_REQUIRE_DURABLE_REDIS: '1' } }),
      /Redis is not durable: .* Refusing to start \(GROVE_REQUIRE_DURABLE_REDIS=1\)\./,
    );
    connection.disconnect();
  });

  it('makes a service process warn at start, or exit with GROVE_REQUIRE_DURABLE_REDIS=1', async () => {
    const service = (env: Record<string, string>) =>
      new Promise<{ code: number | null; stderr: string; stdout: string }>((done) => {
        const script =
          "const { runServiceProcess } = await import('@grove/jobs');" +
          "await runServiceProcess('probe', () => ({ stop: async () => {} }), 'started');" +
          'process.exit(0);';
        const child = spawn(process.execPath, ['--import', 'tsx', '--input-type=module', '-e', script], {
          env: { ...process.env, REDIS_URL: url, ...env },
          stdio: ['ignore', 'pipe', 'pipe'],
        });
        let stderr = '';
        let stdout = '';
        child.stderr?.on('data', (chunk) => {
          stderr += chunk;
        });
        child.stdout?.on('data', (chunk) => {
          stdout += chunk;
        });
        child.once('exit', (code) => done({ code, stderr, stdout }));
      });
    const warned = await service({ GROVE_REQUIRE_DURABLE_REDIS: '' });
    assert.equal(warned.code, 0, warned.stderr);
    assert.match(warned.stderr, /WARNING probe: Redis is not durable: AOF is off /);
    // The service's own log is JSON lines on stdout: it started after the warning.
    assert.match(warned.stdout, /"msg":"started"/);
    const refused = await service({ GROVE_REQUIRE_DURABLE_REDIS: '1' });
    assert.equal(refused.code, 1);
    assert.match(refused.stdout, /Refusing to start \(GROVE_REQUIRE_DURABLE_REDIS=1\)/);
    assert.doesNotMatch(refused.stdout, /"msg":"started"/);
  });
});

/** A CA, a server certificate for 127.0.0.1 and a client certificate it signed, made with the openssl CLI. */
function makeCertificates(dir: string): Record<'ca' | 'serverCert' | 'serverKey' | 'clientCert' | 'clientKey', string> {
  const openssl = (...args: string[]) => execFileSync('openssl', args, { cwd: dir, stdio: 'pipe' });
  const key = ['-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-nodes'];
  openssl('req', '-x509', ...key, '-keyout', 'ca.key', '-out', 'ca.crt', '-days', '1', '-subj', '/CN=grove test CA');
  writeFileSync(join(dir, 'server.ext'), 'subjectAltName=IP:127.0.0.1\n');
  writeFileSync(join(dir, 'client.ext'), 'extendedKeyUsage=clientAuth\n');
  for (const [name, subject] of [
    ['server', '/CN=127.0.0.1'],
    ['client', '/CN=grove'],
  ]) {
    openssl('req', ...key, '-keyout', `${name}.key`, '-out', `${name}.csr`, '-subj', subject);
    openssl(
      'x509',
      '-req',
      '-in',
      `${name}.csr`,
      '-CA',
      'ca.crt',
      '-CAkey',
      'ca.key',
      '-CAcreateserial',
      '-out',
      `${name}.crt`,
      '-days',
      '1',
      '-extfile',
      `${name}.ext`,
    );
  }
  const path = (file: string) => join(dir, file);
  return {
    ca: path('ca.crt'),
    serverCert: path('server.crt'),
    serverKey: path('server.key'),
    clientCert: path('client.crt'),
    clientKey: path('client.key'),
  };
}

describe('Redis over TLS with an ACL user', () => {
  const files = makeCertificates(mkdtempSync(join(tmpdir(), 'grove-tls-')));
  const tlsEnv = {
    GROVE_REDIS_CA_FILE: files.ca,
    GROVE_REDIS_TLS_CERT_FILE: files.clientCert,
    GROVE_REDIS_TLS_KEY_FILE: files.clientKey,
  };
  let server: Awaited<ReturnType<typeof startRedisServer>>;
  let url: string;
  before(async () => {
    server = await startRedisServer((port) => [
      'port 0',
      `tls-port ${port}`,
      `tls-cert-file ${files.serverCert}`,
      `tls-key-file ${files.serverKey}`,
      `tls-ca-cert-file ${files.ca}`,
      'tls-auth-clients yes',
      'user default off',
      'user runner on >tls-secret ~* &* +@all -@dangerous +info +client|list',
    ]);
    url = `rediss://runner:tls-secret@127.0.0.1:${server.port}`;
  });
  after(() => server.stop());

  it('refuses a server certificate signed by an unknown CA', async () => {
    const connection = connectRedis(url, { maxRetriesPerRequest: 0, retryStrategy: () => null, lazyConnect: true });
    const errors: string[] = [];
    connection.on('error', (error) => errors.push(error.message));
    await assert.rejects(connection.connect());
    assert.match(errors.join('; '), /unable to get local issuer certificate|self[- ]signed certificate/);
    connection.disconnect();
  });

  it('runs a BullMQ queue and worker with the CA and client certificate from the environment', async () => {
    Object.assign(process.env, tlsEnv);
    try {
      assert.deepEqual(await bullmqRoundTrip(url), { doubled: 42 });
    } finally {
      for (const variable of Object.keys(tlsEnv)) delete process.env[variable];
    }
  });

  it('names a certificate file it cannot read', () => {
    assert.throws(
      () => redisTlsOptions(url, { GROVE_REDIS_CA_FILE: '/nowhere/ca.crt' }),
      /GROVE_REDIS_CA_FILE=\/nowhere\/ca.crt cannot be read/,
    );
  });
});
