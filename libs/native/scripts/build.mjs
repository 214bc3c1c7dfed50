#!/usr/bin/env node
// Builds the native kernels at install time. They are optional: when a compiler or OpenBLAS
// is missing, or the build fails, the reason goes to build/unavailable.txt (the loader
// reports it) and installation carries on; training then runs on the stock wasm kernels.
import { spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, rmSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');
const reasonFile = join(root, 'build', 'unavailable.txt');
const quiet = { encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] };
const compiler = process.env.CC ?? 'cc';

function hasCblasHeader() {
  return (
    spawnSync(compiler, ['-E', '-x', 'c', '-'], { input: '#include <cblas.h>\n', stdio: ['pipe', 'ignore', 'ignore'] })
      .status === 0
  );
}

/** Debian's OpenBLAS, the way the project installs its other system packages: only as root with apt-get. */
function installOpenBlas() {
  if (process.getuid?.() !== 0 || spawnSync('sh', ['-c', 'command -v apt-get']).status !== 0) return;
  const env = { ...process.env, DEBIAN_FRONTEND: 'noninteractive' };
  console.log('@grove/native: installing libopenblas-dev');
  spawnSync('apt-get', ['update', '-qq'], { stdio: 'ignore', env });
  spawnSync('apt-get', ['install', '-y', '-qq', 'libopenblas-dev'], { stdio: 'ignore', env });
}

/** npm's own node-gyp (npm names it in npm_config_node_gyp for scripts, or it sits beside npm), else one on PATH. */
function nodeGypCommand() {
  const prefix = dirname(dirname(process.execPath));
  const bundled = [
    process.env.npm_config_node_gyp,
    join(prefix, 'lib', 'node_modules', 'npm', 'node_modules', 'node-gyp', 'bin', 'node-gyp.js'),
  ].find((path) => path && existsSync(path));
  return bundled ? [process.execPath, bundled] : ['node-gyp'];
}

/** Headers of the running Node: npm's `nodedir` setting, else the installation prefix when it has them. */
function nodeDirectory() {
  if (process.env.npm_config_nodedir) return process.env.npm_config_nodedir;
  const prefix = dirname(dirname(process.execPath));
  return existsSync(join(prefix, 'include', 'node', 'node_api.h')) ? prefix : undefined;
}

function build() {
  if (spawnSync('sh', ['-c', `command -v ${compiler}`]).status !== 0) return `no C compiler (${compiler}) on PATH`;
  if (!hasCblasHeader()) installOpenBlas();
  if (!hasCblasHeader()) return 'OpenBLAS headers (cblas.h) not found: apt-get install libopenblas-dev';
  const [command, ...prefix] = nodeGypCommand();
  const nodedir = nodeDirectory();
  const args = [...prefix, 'rebuild', ...(nodedir ? [`--nodedir=${nodedir}`] : [])];
  const result = spawnSync(command, args, { ...quiet, cwd: root });
  if (result.error) return `node-gyp could not start: ${result.error.message}`;
  if (result.status !== 0) {
    const errors = `${result.stdout}\n${result.stderr}`.split('\n').filter((line) => /error/i.test(line));
    return `node-gyp failed: ${errors.slice(0, 3).join(' | ') || `exit status ${result.status}`}`;
  }
  return undefined;
}

const reason = build();
if (reason) {
  mkdirSync(dirname(reasonFile), { recursive: true });
  writeFileSync(reasonFile, `${reason}\n`);
  // A binary left from an earlier build would not match these sources.
  rmSync(join(root, 'build', 'Release', 'grove_native.node'), { force: true });
  console.warn(`@grove/native: native kernels not built (${reason}); training uses the stock wasm kernels.`);
} else {
  rmSync(reasonFile, { force: true });
  console.log('@grove/native: native kernels built against OpenBLAS');
}
