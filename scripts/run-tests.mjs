#!/usr/bin/env node
// Runs every *.test.ts under libs/, apps/ and test/ with Node's test runner (TypeScript through tsx).
import { spawnSync } from 'node:child_process';
import { readdirSync } from 'node:fs';
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

const result = spawnSync(process.execPath, ['--import', 'tsx', '--test', '--test-reporter=spec', ...files], {
  stdio: 'inherit',
  env: { ...process.env, GROVE_BACKEND: process.env.GROVE_BACKEND ?? 'wasm' },
});
process.exit(result.status ?? 1);
