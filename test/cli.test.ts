/**
 * The grove CLI as a user runs it: separate processes, real Brown data, real files.
 */
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { loadCheckpoint } from '@grove/store';

const GROVE = join(import.meta.dirname, '..', 'bin', 'grove.mjs');

function grove(...args: string[]) {
  const run = spawnSync(process.execPath, [GROVE, ...args], {
    encoding: 'utf8',
    env: { ...process.env, GROVE_BACKEND: 'wasm' },
  });
  return { code: run.status, stdout: run.stdout, stderr: run.stderr };
}

describe('grove CLI', () => {
  const root = mkdtempSync(join(tmpdir(), 'grove-cli-'));
  const model = join(root, 'model');

  it('trains, saves safetensors, and prints the backend and progress', () => {
    const run = grove(
      'train',
      ...['--steps', '4', '--batch-size', '2', '--domains', 'press,fiction', '--eval-every', '0'],
      ...['--eval-bytes', '1024', '--checkpoint-every', '2', '--out', model],
    );
    assert.equal(run.code, 0, run.stderr);
    assert.match(run.stderr, /^backend: wasm via @tensorflow\/tfjs-backend-wasm/m);
    assert.match(run.stderr, /step 4\/4 {2}loss \d\.\d+/);
    assert.match(run.stdout, /bits per byte on held-out text/);
    const header = readFileSync(join(model, 'model.safetensors'));
    assert.ok(header.readBigUInt64LE(0) > 0n);
  });

  it('evaluates any number of models as JSON rows', () => {
    const run = grove('eval', `mine=${model}`, '--domains', 'press,learned', '--bytes', '1024', '--json');
    assert.equal(run.code, 0, run.stderr);
    const { rows } = JSON.parse(run.stdout);
    assert.deepEqual(
      rows.map((row: { model: string; domain: string }) => `${row.model}/${row.domain}`),
      ['mine/press', 'mine/learned'],
    );
    for (const row of rows) assert.ok(row.bitsPerByte > 1 && row.bitsPerByte < 9, `implausible ${row.bitsPerByte}`);
  });

  it('generates text from a checkpoint', () => {
    const run = grove('generate', model, '--prompt', 'The jury', '--tokens', '16', '--seed', '3');
    assert.equal(run.code, 0, run.stderr);
    assert.ok(run.stdout.startsWith('The jury'));
    assert.ok(run.stdout.length > 'The jury'.length);
  });

  it('resumes a run interrupted midway on its own domains and ends where an uninterrupted run ends', () => {
    const out = join(root, 'interrupted');
    const settings = ['--steps', '6', '--batch-size', '2', '--eval-every', '0', '--eval-bytes', '1024'];
    const full = grove('train', ...settings, '--domains', 'press,fiction', '--checkpoint-every', '3', '--out', out);
    assert.equal(full.code, 0, full.stderr);
    const uninterrupted = loadCheckpoint(out).weights;
    // As if the process died after the checkpoint at step 3: later checkpoints and the model are gone.
    rmSync(join(out, 'checkpoints', 'step-00000006'), { recursive: true });
    rmSync(join(out, 'model.safetensors'));

    const resumed = grove('train', '--resume', '--out', out, '--eval-every', '0', '--eval-bytes', '1024');
    assert.equal(resumed.code, 0, resumed.stderr);
    assert.match(resumed.stderr, /resuming from .*step-00000003 at step 3/);
    assert.match(resumed.stderr, /^data: press [\d.]+ MB, fiction [\d.]+ MB$/m);
    assert.match(resumed.stderr, /step 6\/6 /);
    assert.deepEqual(loadCheckpoint(out).weights, uninterrupted);
  });

  it('answers bad input with one line and exit code 1', () => {
    const cases: [string[], RegExp][] = [
      [
        ['train', '--preset', 'huge', '--out', join(root, 'x')],
        /^grove: Unknown model preset "huge"; choose one of tiny, small\.\n$/,
      ],
      [['train', '--domains', 'poetry', '--out', join(root, 'x')], /^grove: Unknown Brown domain "poetry"/m],
      [['train', '--steps', '-3'], /option '--steps <n>' argument '-3' is invalid/],
      [['eval', join(root, 'absent')], /^grove: Checkpoint not found: .*absent does not exist\.$/m],
      [['train', '--resume', '--out', join(root, 'fresh')], /^grove: Nothing to resume: .* holds no checkpoint\.$/m],
      [
        ['train', '--resume', '--out', model, '--domains', 'lore'],
        /^grove: --domains lore differs from the run's domains press,fiction; leave --domains out to resume\.\n$/,
      ],
      [['train', '--resume', '--out', model, '--lr', '0.1'], /^grove: --lr cannot change a resumed run, .*\n$/],
      [['train', '--lr-floor', 'NaN'], /option '--lr-floor <fraction>' argument 'NaN' is invalid/],
      [['train', '--lr-floor', '1.5'], /option '--lr-floor <fraction>' argument '1.5' is invalid/],
      [['train', '--lr', 'Infinity'], /option '--lr <rate>' argument 'Infinity' is invalid/],
      [['train', '--minutes', 'NaN'], /option '--minutes <m>' argument 'NaN' is invalid/],
      [['generate', model, '--temperature', 'NaN'], /option '--temperature <t>' argument 'NaN' is invalid/],
    ];
    for (const [args, message] of cases) {
      const run = grove(...args);
      assert.equal(run.code, 1, `${args.join(' ')} exited ${run.code}`);
      assert.match(run.stderr, message);
    }
  });

  it('refuses a corrupted model file instead of loading it', () => {
    const path = join(model, 'model.safetensors');
    const bytes = readFileSync(path);
    bytes[bytes.length - 10] ^= 0xff;
    writeFileSync(path, bytes);
    const run = grove('generate', model);
    assert.equal(run.code, 1);
    assert.match(run.stderr, /does not match the hash in state\.json; it was not loaded\./);
  });
});
