import assert from 'node:assert/strict';
import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import {
  type Checkpoint,
  latestCheckpointFolder,
  loadCheckpoint,
  saveCheckpoint,
  saveNumberedCheckpoint,
} from './checkpoint.js';

const checkpoint = (value: number): Checkpoint => ({
  config: { width: 2 },
  weights: new Map([['w', { shape: [2], data: Float32Array.from([value, value + 1]) }]]),
  optimizer: new Map([['adam.m.w', { shape: [2], data: Float32Array.from([0.1, 0.2]) }]]),
  state: { step: value },
});

const scratch = () => mkdtempSync(join(tmpdir(), 'grove-ckpt-'));

describe('checkpoints', () => {
  it('round-trip weights, optimizer state, config and trainer state', () => {
    const folder = join(scratch(), 'model');
    saveCheckpoint(folder, checkpoint(3));
    const loaded = loadCheckpoint(folder);
    assert.deepEqual(loaded.config, { width: 2 });
    assert.deepEqual(loaded.weights, checkpoint(3).weights);
    assert.deepEqual(loaded.optimizer, checkpoint(3).optimizer);
    assert.deepEqual(loaded.state, { step: 3 });
  });

  it('replace an existing checkpoint in place, keeping unrelated files and leaving no temporaries', () => {
    const root = scratch();
    const folder = join(root, 'model');
    saveCheckpoint(folder, checkpoint(1));
    writeFileSync(join(folder, 'notes.txt'), 'kept');
    saveCheckpoint(folder, { ...checkpoint(2), optimizer: undefined });
    assert.deepEqual(readdirSync(root), ['model']);
    assert.deepEqual(readdirSync(folder).sort(), ['model.safetensors', 'notes.txt', 'state.json']);
    assert.deepEqual(loadCheckpoint(folder).state, { step: 2 });
    assert.equal(loadCheckpoint(folder).optimizer, undefined);
  });

  it('refuse a checkpoint whose optimizer file was swapped or removed', () => {
    const first = join(scratch(), 'a');
    const second = join(scratch(), 'b');
    saveCheckpoint(first, checkpoint(1));
    saveCheckpoint(second, {
      ...checkpoint(1),
      optimizer: new Map([['adam.m.w', { shape: [2], data: Float32Array.from([9, 9]) }]]),
    });
    writeFileSync(join(first, 'optimizer.safetensors'), readFileSync(join(second, 'optimizer.safetensors')));
    assert.throws(() => loadCheckpoint(first), /does not match the hash in state.json/);
    rmSync(join(first, 'optimizer.safetensors'));
    assert.throws(() => loadCheckpoint(first), /missing optimizer.safetensors/);
  });

  it('refuse a truncated weights file with a message naming it', () => {
    const folder = join(scratch(), 'model');
    saveCheckpoint(folder, { ...checkpoint(1), optimizer: undefined, state: undefined });
    rmSync(join(folder, 'state.json'));
    const path = join(folder, 'model.safetensors');
    writeFileSync(path, readFileSync(path).subarray(0, 40));
    assert.throws(() => loadCheckpoint(folder), /model.safetensors is not a valid safetensors file/);
    assert.throws(() => loadCheckpoint(join(folder, 'nope')), /Checkpoint not found/);
  });

  it('keep the newest numbered checkpoints and find the latest', () => {
    const root = scratch();
    for (const step of [5, 10, 15]) saveNumberedCheckpoint(root, step, checkpoint(step), 2);
    assert.deepEqual(readdirSync(root).sort(), ['step-00000010', 'step-00000015']);
    assert.equal(latestCheckpointFolder(root), join(root, 'step-00000015'));
    assert.equal(latestCheckpointFolder(join(root, 'missing')), undefined);
    assert.ok(!existsSync(join(root, 'step-00000005')));
  });
});
