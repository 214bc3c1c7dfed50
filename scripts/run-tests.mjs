#!/usr/bin/env node
// Runs every *.test.ts under libs/, apps/ and test/ with Node's test runner (TypeScript through tsx).
import { spawnSync } from 'node:child_process';
import { existsSync, readdirSync } from 'node:fs';
import { join } from 'node:path';

function findTests(folder) {
  return readdirSync(folder, { withFileTypes: true }).flatMap((entry) => {
    const path = join(folder, entry.name);
    if (entry.isDirectory()) return entry.name === 'node_modules' || entry.name === 'dist' ? [] : findTests(path);
    return entry.name.endsWith('.test.ts') ? [path] : [];
  });
}

const only = process.argv.slice(2);
const files = ['libs', 'apps', 'test']
  .flatMap(findTests)
  .filter((file) => only.length === 0 || only.some((part) => file.includes(part)))
  .sort();
if (files.length === 0) {
  console.error('no test files found');
  process.exit(1);
}
// End-to-end suites start their own Redis; install Debian's redis-server once, up front,
// rather than from several test files at the same time.
const redis = spawnSync(
  process.execPath,
  ['--import', 'tsx', '--input-type=module', '-e', "(await import('@grove/jobs')).ensureRedisServer()"],
  { stdio: 'inherit' },
);
if (redis.status !== 0) process.exit(redis.status ?? 1);

// Debian packages some suites need: chromium for the dashboard's browser tests, openssl for
// the certificates of the TLS tests (Redis, peer links). Installed the same way when missing.
const canInstall = process.getuid?.() === 0 && spawnSync('sh', ['-c', 'command -v apt-get']).status === 0;
const chromium = process.env.GROVE_CHROMIUM ?? '/usr/bin/chromium';
const missing = [
  ...(existsSync(chromium) ? [] : ['chromium']),
  ...(spawnSync('sh', ['-c', 'command -v openssl']).status === 0 ? [] : ['openssl']),
];
if (missing.length > 0 && canInstall) {
  const env = { ...process.env, DEBIAN_FRONTEND: 'noninteractive' };
  spawnSync('apt-get', ['update', '-qq'], { stdio: 'ignore', env });
  spawnSync('apt-get', ['install', '-y', '-qq', ...missing], { stdio: 'inherit', env });
}
if (!existsSync(chromium)) {
  console.error(
    `chromium is not installed at ${chromium}: run \`sudo apt-get install chromium\` or set GROVE_CHROMIUM.`,
  );
  process.exit(1);
}
if (spawnSync('sh', ['-c', 'command -v openssl']).status !== 0) {
  console.error('openssl is not installed: run `sudo apt-get install openssl`.');
  process.exit(1);
}

const result = spawnSync(process.execPath, ['--import', 'tsx', '--test', '--test-reporter=spec', ...files], {
  stdio: 'inherit',
  env: { ...process.env, GROVE_BACKEND: process.env.GROVE_BACKEND ?? 'wasm' },
});
process.exit(result.status ?? 1);
