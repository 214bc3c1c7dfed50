import assert from 'node:assert/strict';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { before, describe, it } from 'node:test';
import { type ModelConfig, presetConfig, selectBackend } from '@grove/model';
import { latestCheckpointFolder, loadCheckpoint, saveCheckpoint } from '@grove/store';
import { runTraining } from './run.js';
import { TRAINING_DEFAULTS, Trainer, type TrainingSettings } from './trainer.js';

const config: ModelConfig = {
  ...presetConfig('tiny'),
  layers: 2,
  width: 32,
  heads: 2,
  ffnWidth: 64,
  contextLength: 16,
};
const settings: TrainingSettings = {
  ...TRAINING_DEFAULTS,
  steps: 8,
  batchSize: 4,
  accumulation: 2,
  warmupSteps: 2,
  learningRate: 1e-2,
};
const text = new TextEncoder().encode('the quick brown fox jumps over the lazy dog. '.repeat(200));
const heldOut = { name: 'fox', train: text, heldOut: text.subarray(0, 600), documents: { train: 1, heldOut: 1 } };

before(async () => {
  await selectBackend('wasm');
});

describe('Trainer', () => {
  it('lowers the loss on real text', () => {
    const trainer = Trainer.fresh(config, { ...settings, steps: 30, accumulation: 1 }, text);
    const losses = Array.from({ length: 30 }, () => trainer.trainStep().loss);
    const early = losses.slice(0, 3).reduce((a, b) => a + b) / 3;
    const late = losses.slice(-3).reduce((a, b) => a + b) / 3;
    assert.ok(late < early - 1, `loss went from ${early} to ${late}`);
    trainer.dispose();
  });

  it('resumed from a checkpoint, follows the uninterrupted run exactly', () => {
    const uninterrupted = Trainer.fresh(config, settings, text);
    const expected = Array.from({ length: settings.steps }, () => uninterrupted.trainStep().loss);

    const first = Trainer.fresh(config, settings, text);
    const before = Array.from({ length: 3 }, () => first.trainStep().loss);
    const folder = join(mkdtempSync(join(tmpdir(), 'grove-resume-')), 'step-3');
    saveCheckpoint(folder, first.checkpoint());
    first.dispose();

    const resumed = Trainer.resume(loadCheckpoint(folder), text);
    assert.equal(resumed.step, 3);
    const after = Array.from({ length: settings.steps - 3 }, () => resumed.trainStep().loss);
    assert.deepEqual([...before, ...after], expected);
    assert.deepEqual(resumed.model.toArrays(), uninterrupted.model.toArrays());
  });

  it('takes its final length during warm-up with the same result as if started with it', () => {
    const planned = Trainer.fresh(config, { ...settings, warmupSteps: 4, steps: 6 }, text);
    const expected = Array.from({ length: 6 }, () => planned.trainStep().loss);
    const fitted = Trainer.fresh(config, { ...settings, warmupSteps: 4, steps: 1000 }, text);
    const losses = [fitted.trainStep().loss, fitted.trainStep().loss];
    fitted.setTotalSteps(6);
    while (!fitted.finished) losses.push(fitted.trainStep().loss);
    assert.deepEqual(losses, expected);
    assert.throws(() => fitted.setTotalSteps(20), /only change during warm-up/);
  });

  it('refuses to resume from weights alone', () => {
    const trainer = Trainer.fresh(config, settings, text);
    const { optimizer: _, ...weightsOnly } = trainer.checkpoint();
    assert.throws(() => Trainer.resume(weightsOnly, text), /cannot be resumed/);
  });

  it('rejects nonsensical settings in one sentence', () => {
    assert.throws(
      () => Trainer.fresh(config, { ...settings, batchSize: 0 }, text),
      /"batchSize" must be a positive integer/,
    );
  });
});

describe('runTraining', () => {
  it('evaluates, checkpoints, and stops early on request with a resumable checkpoint', async () => {
    const root = join(mkdtempSync(join(tmpdir(), 'grove-run-')), 'checkpoints');
    const trainer = Trainer.fresh(config, settings, text);
    const evaluations = await runTraining(trainer, {
      evaluationDomains: [heldOut],
      evaluateEvery: 0,
      evaluation: { maxBytes: 512, rows: 8 },
      checkpointRoot: root,
      checkpointEvery: 100,
      shouldStop: () => trainer.step >= 5,
    });
    assert.equal(trainer.step, 5);
    assert.equal(evaluations.length, 1, 'only the initial evaluation: the run did not finish');
    assert.ok(
      Math.abs(evaluations[0].scores[0].bitsPerByte - 8) < 0.2,
      'an untrained model scores about 8 bits per byte',
    );
    const latest = latestCheckpointFolder(root);
    assert.ok(latest?.endsWith('step-00000005'));
    const resumed = Trainer.resume(loadCheckpoint(latest as string), text);
    const finished = await runTraining(resumed, {
      evaluationDomains: [heldOut],
      evaluateEvery: 0,
      evaluation: { maxBytes: 512, rows: 8 },
    });
    assert.equal(resumed.step, settings.steps);
    assert.equal(finished.length, 1);
    assert.ok(finished[0].scores[0].bitsPerByte < evaluations[0].scores[0].bitsPerByte - 1);
  });
});
