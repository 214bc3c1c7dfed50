/**
 * docker-compose.yml and the Dockerfiles, checked statically (no Docker engine runs here):
 * the services the product needs, wired the way `--scale worker=N` requires, each pointing at
 * an entry point that exists and runs as a plain process.
 */
import assert from 'node:assert/strict';
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { parse } from 'yaml';

const ROOT = join(import.meta.dirname, '..');
// Compose applies YAML merge keys (<<: *grove), as YAML 1.1 did.
const compose = parse(readFileSync(join(ROOT, 'docker-compose.yml'), 'utf8'), { merge: true });

interface Service {
  image?: string;
  build?: { context: string; dockerfile: string };
  command?: string[];
  environment?: Record<string, string>;
  volumes?: string[];
  ports?: string[];
  container_name?: string;
  healthcheck?: { test: string[] };
  depends_on?: Record<string, { condition: string }>;
}

const services = compose.services as Record<string, Service>;

describe('docker-compose.yml', () => {
  it('defines redis, api, merger and worker', () => {
    assert.deepEqual(Object.keys(services).sort(), ['api', 'merger', 'redis', 'worker']);
  });

  it('runs Redis with AOF, noeviction and a healthcheck the others wait for', () => {
    const config = readFileSync(join(ROOT, 'infra', 'redis.conf'), 'utf8');
    assert.match(config, /^appendonly yes$/m);
    assert.match(config, /^maxmemory-policy noeviction$/m);
    assert.ok(services.redis.healthcheck?.test.includes('ping'));
    for (const name of ['api', 'merger', 'worker'])
      assert.equal(services[name].depends_on?.redis.condition, 'service_healthy');
  });

  it('lets workers scale: no fixed name or host port, and one shared artifact volume', () => {
    assert.equal(services.worker.container_name, undefined);
    assert.equal(services.worker.ports, undefined);
    for (const name of ['api', 'merger', 'worker']) {
      assert.ok(services[name].volumes?.includes('artifacts:/data'), `${name} mounts the artifact volume`);
      assert.equal(services[name].environment?.REDIS_URL, 'redis://redis:6379');
    }
    assert.ok('artifacts' in compose.volumes);
  });

  it('lets the replicas of an expert reach each other across worker containers', () => {
    assert.equal(services.worker.environment?.GROVE_PEER_HOST, '0.0.0.0');
    assert.equal(services.worker.environment?.GROVE_BACKEND, 'auto');
  });

  it('starts each service from an entry point that exists, binds the API only to loopback and demands tokens', () => {
    for (const name of ['api', 'merger', 'worker']) {
      const command = services[name].command ?? [];
      const entry = command.find((part) => part.endsWith('.ts')) as string;
      assert.ok(existsSync(join(ROOT, entry)), `${name}: ${entry} exists`);
      assert.ok(existsSync(join(ROOT, services[name].build?.dockerfile as string)));
    }
    assert.ok(services.api.ports?.every((port) => port.startsWith('127.0.0.1:')));
    assert.match(services.api.environment?.GROVE_API_TOKENS ?? '', /^\$\{GROVE_API_TOKENS:\?/);
  });
});

describe('Dockerfiles', () => {
  for (const file of ['infra/Dockerfile', 'infra/Dockerfile.gpu']) {
    it(`${file} copies only what exists and starts an existing entry point`, () => {
      const text = readFileSync(join(ROOT, file), 'utf8');
      assert.match(text, /^FROM \S+/m);
      for (const [, source] of text.matchAll(/^COPY (\S+(?: \S+)*) \S+$/gm)) {
        for (const path of source.split(' ')) assert.ok(existsSync(join(ROOT, path)), `${file}: COPY ${path}`);
      }
      const command = JSON.parse((text.match(/^CMD (\[.*\])$/m) as RegExpMatchArray)[1]) as string[];
      assert.ok(existsSync(join(ROOT, command[command.length - 1])));
      assert.match(text, /npm ci --omit=dev/);
    });
  }
});
