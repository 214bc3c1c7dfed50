/**
 * Every command that README.md and BENCHMARKS.md quote runs, as quoted, with GROVE_SMOKE=1:
 * the CLI and the bench scripts cap their budgets (steps, minutes, replicas, bytes scored,
 * repetitions) so each finishes in seconds, and the figures' commands are known to work.
 * A quoted command this file has no recipe for fails the test: a renamed or new command
 * must be taught here, or it would silently drop out of the check.
 */
import assert from 'node:assert/strict';
import { type ChildProcess, spawn } from 'node:child_process';
import { chmodSync, mkdirSync, mkdtempSync, openSync, readFileSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
import { freePort } from '@grove/jobs';
import { type DocCommand, docCommands } from './doc-commands.js';

const ROOT = join(import.meta.dirname, '..');
const DOCS = ['README.md', 'BENCHMARKS.md'];
/** What `grove submit run.json` submits: the smallest run with experts and a merge. */
const RUN_JSON = {
  domains: ['press', 'fiction'],
  seed: { steps: 1 },
  expertSteps: 1,
  training: { batchSize: 2, warmupSteps: 1 },
  merge: { methods: ['linear'] },
  eval: { bytes: 1024 },
};
/** A guard against a hung command, generous because a busy machine slows a demo several times over. */
const COMMAND_LIMIT_MS = 600_000;

interface Workspace {
  folder: string;
  env: NodeJS.ProcessEnv;
  /** The API of the cluster the documented `grove up` started. */
  apiUrl?: string;
  /** The id of the last run a `grove demo --json` printed, for commands that name `<id>`. */
  lastRunId?: string;
}

type Recipe = { pattern: RegExp } & (
  | { excluded: string }
  | { run: (command: string, workspace: Workspace) => Promise<void> }
);

const RECIPES: Recipe[] = [
  { pattern: /^npm ci$/, excluded: 'installs the dependencies this test itself runs on' },
  { pattern: /^npm test$/, excluded: 'runs the whole suite, this test among it' },
  { pattern: /^npx grove up$/, run: startSharedCluster },
  { pattern: /^npx grove (submit|status)\b/, run: (command, workspace) => runAgainstCluster(command, workspace) },
  {
    pattern: /^curl .*localhost:8080\/v1\/runs /,
    run: async (command, workspace) => {
      const url = clusterUrl(workspace);
      const { stdout } = await runToEnd(command.replace('localhost:8080', url.replace('http://', '')), workspace.env);
      // The posted spec has the default budgets: cancel the run rather than train it.
      const { id } = JSON.parse(stdout) as { id: string };
      assert.ok(id, `the API answered without a run id: ${stdout}`);
      const token = readFileSync(join(workspace.folder, '.grove', 'api-token'), 'utf8').trim();
      const cancelled = await fetch(`${url}/v1/runs/${id}`, {
        method: 'DELETE',
        headers: { authorization: `Bearer ${token}` },
      });
      assert.equal(cancelled.ok, true);
    },
  },
  {
    pattern: /^npx grove demo\b/,
    run: async (command, workspace) => {
      workspace.lastRunId = undefined;
      const { stdout } = await runToEnd(command, workspace.env);
      if (command.includes('--json')) workspace.lastRunId = (JSON.parse(lastLine(stdout)) as { id: string }).id;
    },
  },
  { pattern: /^npx grove (train|eval|generate|export|import|bench trainer)\b/, run: runInWorkspace },
  { pattern: /^npx tsx bench\/(localsgd|codec|moe-dispatch|service|profile-step)\.ts\b/, run: runInWorkspace },
  {
    pattern: /^npx tsx bench\/routing-shares\.ts \.grove\/runs\/<id>\//,
    run: async (command, workspace) => {
      assert.ok(workspace.lastRunId, 'no earlier `grove demo --json` finished a run whose <id> this command could use');
      await runToEnd(command.replace('<id>', workspace.lastRunId), workspace.env);
    },
  },
];

async function runInWorkspace(command: string, workspace: Workspace): Promise<void> {
  await runToEnd(command, workspace.env);
}

/** Runs the command as quoted, through sh, in the workspace; fails with its output unless it exits 0. */
async function runToEnd(command: string, env: NodeJS.ProcessEnv): Promise<{ stdout: string; stderr: string }> {
  const child = shell(command, env, ['ignore', 'pipe', 'pipe']);
  let stdout = '';
  let stderr = '';
  child.stdout?.on('data', (chunk) => {
    stdout += chunk;
  });
  child.stderr?.on('data', (chunk) => {
    stderr += chunk;
  });
  const timer = setTimeout(() => killGroup(child, 'SIGKILL'), COMMAND_LIMIT_MS);
  const code = await new Promise<number | null>((done) => child.once('exit', (exitCode) => done(exitCode)));
  clearTimeout(timer);
  await endLeftovers(child);
  assert.equal(code, 0, `\`${command}\` exited ${code}:\n${stderr.slice(-3000)}\n${stdout.slice(-1000)}`);
  return { stdout, stderr };
}

/** `npx` is a shell function that runs its arguments, so a quoted `npx grove …` runs this checkout's grove. */
function shell(command: string, env: NodeJS.ProcessEnv, stdio: ('ignore' | 'pipe' | number)[]): ChildProcess {
  return spawn('sh', ['-c', `npx() { "$@"; }\n${command}`], { cwd: env.GROVE_WORKSPACE, env, stdio, detached: true });
}

function killGroup(child: ChildProcess, signal: NodeJS.Signals): void {
  try {
    if (child.pid) process.kill(-child.pid, signal);
  } catch {
    // already gone
  }
}

/** A command that failed half-way may leave services of its own running: end its whole process group. */
async function endLeftovers(child: ChildProcess): Promise<void> {
  killGroup(child, 'SIGTERM');
  await new Promise((wake) => setTimeout(wake, 2000));
  killGroup(child, 'SIGKILL');
}

function lastLine(text: string): string {
  return text.trim().split('\n').pop() ?? '';
}

let cluster: ChildProcess | undefined;

/** The documented `grove up`, on a free port and its own state folder; the API commands use it. */
async function startSharedCluster(command: string, workspace: Workspace): Promise<void> {
  assert.equal(cluster, undefined, 'the docs start `grove up` twice');
  const port = await freePort();
  // The documented state folder, so the token file is where the docs' later commands read it.
  const state = join(workspace.folder, '.grove');
  mkdirSync(state, { recursive: true });
  const log = join(workspace.folder, 'grove-up.log');
  cluster = shell(`${command} --port ${port}`, { ...workspace.env, GROVE_STATE_DIR: state }, [
    'ignore',
    openSync(log, 'a'),
    openSync(log, 'a'),
  ]);
  const url = `http://127.0.0.1:${port}`;
  const deadline = Date.now() + 60_000;
  for (;;) {
    assert.equal(cluster.exitCode, null, `\`${command}\` exited:\n${readFileSync(log, 'utf8').slice(-3000)}`);
    if (
      await fetch(`${url}/readyz`).then(
        (response) => response.ok,
        () => false,
      )
    )
      break;
    assert.ok(Date.now() < deadline, `\`${command}\` was not ready in 60 s:\n${readFileSync(log, 'utf8')}`);
    await new Promise((wake) => setTimeout(wake, 250));
  }
  workspace.apiUrl = url;
}

async function stopSharedCluster(): Promise<void> {
  const child = cluster;
  if (!child || child.exitCode !== null) return;
  const exited = new Promise((done) => child.once('exit', done));
  killGroup(child, 'SIGTERM');
  const timer = setTimeout(() => killGroup(child, 'SIGKILL'), 30_000);
  await exited;
  clearTimeout(timer);
  await endLeftovers(child);
}

function clusterUrl(workspace: Workspace): string {
  assert.ok(workspace.apiUrl, 'this command needs the API, but no documented `grove up` ran before it');
  return workspace.apiUrl;
}

async function runAgainstCluster(command: string, workspace: Workspace): Promise<void> {
  await runToEnd(command, { ...workspace.env, GROVE_API_URL: clusterUrl(workspace) });
}

/**
 * A scratch folder laid out like a checkout's root: `bench/` for the scripts and specs,
 * `node_modules/` for the services' `--import tsx`, `.grove/` for state.
 */
function workspace(): Workspace {
  const folder = mkdtempSync(join(tmpdir(), 'grove-docs-'));
  for (const name of ['bench', 'node_modules']) symlinkSync(join(ROOT, name), join(folder, name));
  writeFileSync(join(folder, 'run.json'), JSON.stringify(RUN_JSON));
  const bin = join(folder, 'bin');
  mkdirSync(bin);
  writeFileSync(join(bin, 'grove'), `#!/bin/sh\nexec "${process.execPath}" "${join(ROOT, 'bin', 'grove.mjs')}" "$@"\n`);
  chmodSync(join(bin, 'grove'), 0o755);
  const env: NodeJS.ProcessEnv = {
    ...process.env,
    GROVE_SMOKE: '1',
    GROVE_BACKEND: 'wasm',
    GROVE_WORKSPACE: folder,
    PATH: [bin, join(ROOT, 'node_modules', '.bin'), process.env.PATH].join(':'),
  };
  // Each cluster starts its own Redis and API; nothing may reach one outside this test.
  for (const name of ['REDIS_URL', 'GROVE_API_URL', 'GROVE_STATE_DIR', 'GROVE_API_TOKENS']) delete env[name];
  return { folder, env };
}

const recipeFor = (command: DocCommand) => RECIPES.find((recipe) => recipe.pattern.test(command.text));

describe('documented commands', () => {
  const commands = DOCS.flatMap((doc) => docCommands(join(ROOT, doc), doc));
  const space = workspace();
  after(async () => {
    await stopSharedCluster();
    rmSync(space.folder, { recursive: true, force: true });
  });

  it('are found in the docs', () => {
    assert.ok(commands.length >= 20, `only ${commands.length} commands found`);
  });

  it('each have a recipe here', (t) => {
    for (const command of commands) {
      const recipe = recipeFor(command);
      if (recipe && 'excluded' in recipe)
        t.diagnostic(`not rerun: ${command.source} \`${command.text}\` ${recipe.excluded}`);
    }
    const unknown = commands.filter((command) => !recipeFor(command));
    assert.deepEqual(
      unknown.map((c) => `${c.source} ${c.text}`),
      [],
      'teach test/docs-smoke.test.ts how to run these',
    );
  });

  for (const command of commands) {
    const recipe = recipeFor(command);
    if (recipe && 'excluded' in recipe) continue;
    it(`${command.source} \`${command.text}\``, { timeout: COMMAND_LIMIT_MS + 10_000 }, async () => {
      assert.ok(recipe, `no recipe for \`${command.text}\``);
      await recipe.run(command.text, space);
    });
  }
});
