/**
 * Grove models exported to the Hugging Face layout give the same logits, on held-out Brown text,
 * as an independent PyTorch implementation of LLaMA, Arcee and Mixtral that reads the exported
 * files (test/hf/reference.py), and import back bit for bit.
 */
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { before, describe, it, type TestContext } from 'node:test';
import { brownDomain } from '@grove/data';
import { exportHuggingFace, importHuggingFace } from '@grove/hf';
import { assembleBtx } from '@grove/merge';
import {
  type ModelConfig,
  type NamedArrays,
  parameterShapes,
  presetConfig,
  selectBackend,
  TransformerLM,
} from '@grove/model';
import { type Checkpoint, loadCheckpoint, saveCheckpoint } from '@grove/store';
import { modelFromCheckpoint, TRAINING_DEFAULTS, Trainer } from '@grove/train';
import * as tf from '@tensorflow/tfjs-core';

/** Debian's interpreter, where python3-torch installs (not whichever python3 is first on PATH). */
const PYTHON = '/usr/bin/python3';
const REFERENCE = join(import.meta.dirname, 'hf', 'reference.py');
const GROVE = join(import.meta.dirname, '..', 'bin', 'grove.mjs');
const WINDOW = 64;
const WINDOWS = 4;
const TOLERANCE = 1e-4;

const dense: ModelConfig = {
  ...presetConfig('tiny'),
  layers: 2,
  width: 64,
  heads: 4,
  ffnWidth: 128,
  contextLength: WINDOW,
  activation: 'swiglu',
};
const settings = { ...TRAINING_DEFAULTS, batchSize: 4, warmupSteps: 2, learningRate: 2e-2 };

/** Why the PyTorch reference cannot run, after trying to install it as the project installs Debian packages; undefined when it can. */
function torchUnavailable(): string | undefined {
  const importable = () => spawnSync(PYTHON, ['-c', 'import torch, numpy'], { stdio: 'ignore' }).status === 0;
  if (importable()) return undefined;
  if (process.getuid?.() === 0 && spawnSync('sh', ['-c', 'command -v apt-get']).status === 0) {
    const env = { ...process.env, DEBIAN_FRONTEND: 'noninteractive' };
    const wait = ['-o', 'DPkg::Lock::Timeout=300'];
    spawnSync('apt-get', [...wait, 'update', '-qq'], { stdio: 'ignore', env });
    spawnSync('apt-get', [...wait, 'install', '-y', '-qq', 'python3-torch'], { stdio: 'inherit', env });
    if (importable()) return undefined;
  }
  return `${PYTHON} cannot import torch and python3-torch could not be installed (run \`sudo apt-get install python3-torch\`)`;
}

function train(checkpoint: Checkpoint | ModelConfig, steps: number, stream: Uint8Array): Checkpoint {
  const run = { ...settings, steps };
  const trainer =
    'weights' in checkpoint ? Trainer.fromWeights(checkpoint, run, stream) : Trainer.fresh(checkpoint, run, stream);
  for (let step = 0; step < steps; step++) trainer.trainStep();
  const trained = trainer.checkpoint();
  trainer.dispose();
  return { config: trained.config, weights: trained.weights };
}

function checkpointOf(config: ModelConfig, arrays: NamedArrays): Checkpoint {
  const shapes = parameterShapes(config);
  return {
    config: config as unknown as Record<string, unknown>,
    weights: new Map([...arrays].map(([name, data]) => [name, { shape: shapes.get(name) as number[], data }])),
  };
}

function groveLogits(checkpoint: Checkpoint, tokens: number[]): Float32Array {
  const model = modelFromCheckpoint(checkpoint);
  const logits = tf.tidy(
    () => model.logits(tf.tensor2d(tokens, [WINDOWS, WINDOW], 'int32')).dataSync() as Float32Array,
  );
  model.dispose();
  return logits;
}

/** Runs the PyTorch reference on an exported folder; the largest logit difference from Grove's. */
function compareWithReference(folder: string, checkpoint: Checkpoint, text: Uint8Array) {
  const scratch = mkdtempSync(join(tmpdir(), 'grove-hf-reference-'));
  writeFileSync(join(scratch, 'text.txt'), text);
  const run = spawnSync(
    PYTHON,
    [REFERENCE, folder, join(scratch, 'text.txt'), String(WINDOW), join(scratch, 'logits.f32')],
    { encoding: 'utf8' },
  );
  assert.equal(run.status, 0, run.stderr);
  const { architecture, tokens } = JSON.parse(run.stdout) as { architecture: string; tokens: number[] };
  // The exported tokenizer must encode the text to the bytes Grove reads.
  assert.deepEqual(tokens, Array.from(text));
  const bytes = readFileSync(join(scratch, 'logits.f32'));
  const reference = new Float32Array(bytes.buffer, bytes.byteOffset, bytes.byteLength / 4);
  const grove = groveLogits(checkpoint, tokens);
  assert.equal(reference.length, grove.length);
  let difference = 0;
  let scale = 0;
  for (let i = 0; i < grove.length; i++) {
    difference = Math.max(difference, Math.abs(grove[i] - reference[i]));
    scale = Math.max(scale, Math.abs(grove[i]));
  }
  return { architecture, difference, scale };
}

function assertSameCheckpoint(actual: Checkpoint, expected: Checkpoint): void {
  assert.deepEqual(actual.config, expected.config);
  assert.deepEqual([...actual.weights.keys()].sort(), [...expected.weights.keys()].sort());
  for (const [name, tensor] of expected.weights) {
    const imported = actual.weights.get(name);
    assert.deepEqual(imported?.shape, tensor.shape, name);
    const bits = (data: Float32Array) => Buffer.from(data.buffer, data.byteOffset, data.byteLength);
    assert.ok(bits(imported?.data as Float32Array).equals(bits(tensor.data)), `${name} differs after the round trip`);
  }
}

function grove(...args: string[]) {
  const run = spawnSync(process.execPath, [GROVE, ...args], {
    encoding: 'utf8',
    env: { ...process.env, GROVE_BACKEND: 'wasm' },
  });
  return { code: run.status, stdout: run.stdout, stderr: run.stderr };
}

describe('Hugging Face export', () => {
  let unavailable: string | undefined;
  const root = mkdtempSync(join(tmpdir(), 'grove-hf-'));
  const press = brownDomain('press');
  const learned = brownDomain('learned');
  const heldOut = press.heldOut.subarray(0, WINDOWS * WINDOW);
  let swiglu: Checkpoint;

  before(async () => {
    await selectBackend('wasm');
    unavailable = torchUnavailable();
    swiglu = train(dense, 12, press.train);
  });

  /** Exports, checks against the reference and imports back; the reference's verdict is skipped only without torch. */
  function checkExport(t: TestContext, checkpoint: Checkpoint, name: string, architecture: string) {
    const folder = join(root, name);
    assert.equal(exportHuggingFace(checkpoint, folder), architecture);
    assertSameCheckpoint(importHuggingFace(folder), checkpoint);
    if (unavailable) return t.skip(`the PyTorch comparison needs torch: ${unavailable}`);
    const result = compareWithReference(folder, checkpoint, heldOut);
    t.diagnostic(
      `${architecture}: max |Δ logit| ${result.difference.toExponential(2)} (|logit| up to ${result.scale.toFixed(2)})`,
    );
    assert.equal(result.architecture, architecture);
    assert.ok(result.scale > 1, 'the model is trained enough for its logits to mean something');
    assert.ok(result.difference <= TOLERANCE, `logits differ by up to ${result.difference}`);
  }

  it('a SwiGLU model is LLaMA: the CLI exports and imports it back bit for bit', (t) => {
    const model = join(root, 'swiglu');
    saveCheckpoint(model, swiglu);
    const exported = grove('export', model, '--format', 'hf', '--out', join(root, 'swiglu-hf'));
    assert.equal(exported.code, 0, exported.stderr);
    assert.match(exported.stdout, /LlamaForCausalLM/);
    const imported = grove('import', join(root, 'swiglu-hf'), '--out', join(root, 'swiglu-back'));
    assert.equal(imported.code, 0, imported.stderr);
    assertSameCheckpoint(loadCheckpoint(join(root, 'swiglu-back')), swiglu);
    const again = grove('import', join(root, 'swiglu-hf'), '--out', join(root, 'swiglu-back'));
    assert.equal(again.code, 1);
    assert.match(
      again.stderr,
      /^grove: .*swiglu-back already exists and is not empty; choose a new output folder\.\n$/,
    );
    checkExport(t, swiglu, 'swiglu-lib', 'LlamaForCausalLM');
  });

  it('a GELU model is Arcee with quick_gelu, x·σ(1.702x)', (t) => {
    checkExport(t, train({ ...dense, activation: 'gelu' }, 12, press.train), 'gelu', 'ArceeForCausalLM');
  });

  it('a BTX MoE of SwiGLU experts is Mixtral', (t) => {
    const experts = [press.train, learned.train].map((stream) => train(swiglu, 4, stream));
    const unwrap = (checkpoint: Checkpoint) => new Map([...checkpoint.weights].map(([n, tensor]) => [n, tensor.data]));
    const btx = assembleBtx(dense, unwrap(swiglu), experts.map(unwrap), {
      topK: 2,
      keepSeed: true,
      router: 'random',
      balanceCoefficient: 0.01,
      seed: 1,
    });
    const moe = train(checkpointOf(btx.config, btx.weights), 3, press.train);
    checkExport(t, moe, 'btx', 'MixtralForCausalLM');
  });

  it('a DS-MoE routed top-k is Mixtral', (t) => {
    const moe = { experts: 4, topK: 2, training: 'dense' as const, threshold: 0, balanceCoefficient: 0.01 };
    checkExport(t, train({ ...dense, moe }, 10, press.train), 'ds-moe', 'MixtralForCausalLM');
  });

  it('refuses a model with no exact counterpart, in one sentence naming the fix', () => {
    const model = join(root, 'gelu-moe');
    const moe = { experts: 2, topK: 1, training: 'sparse' as const, threshold: 0, balanceCoefficient: 0 };
    const config: ModelConfig = { ...dense, activation: 'gelu', moe };
    saveCheckpoint(model, checkpointOf(config, TransformerLM.create(config, 1).toArrays()));
    const run = grove('export', model, '--out', join(root, 'gelu-moe-hf'));
    assert.equal(run.code, 1);
    assert.match(run.stderr, /^grove: Mixtral’s experts are gated.*train with model\.activation "swiglu"\.\n$/);
  });
});
