import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import {
  backendSummary,
  describeBackend,
  type ModuleImporter,
  parseBackendPreference,
  selectBackend,
} from './backend.js';

const withoutNative: ModuleImporter = async (specifier) => {
  if (specifier.startsWith('@tensorflow/tfjs-node')) throw new Error(`Cannot find package '${specifier}'`);
  return import(specifier);
};

describe('backend selection', () => {
  it('falls back to wasm under auto when the tensorflow packages are absent, and says why', async () => {
    const choice = await selectBackend('auto', withoutNative);
    assert.equal(choice.name, 'wasm');
    assert.equal(choice.skipped.length, 2);
    assert.match(choice.skipped[0], /tfjs-node-gpu: Cannot find package/);
  });

  it('falls back to cpu when wasm cannot load either', async () => {
    const onlyCpu: ModuleImporter = async (specifier) => {
      if (!specifier.endsWith('backend-cpu')) throw new Error('not installed');
      return import(specifier);
    };
    assert.equal((await selectBackend('auto', onlyCpu)).name, 'cpu');
  });

  it('refuses an explicit tensorflow preference it cannot honour instead of silently falling back', async () => {
    await assert.rejects(
      selectBackend('tensorflow', withoutNative),
      /No compute backend could load for GROVE_BACKEND=tensorflow/,
    );
  });

  it('rejects unknown GROVE_BACKEND values with the allowed list', () => {
    assert.equal(parseBackendPreference(undefined), 'auto');
    assert.equal(parseBackendPreference(' WASM '), 'wasm');
    assert.throws(() => parseBackendPreference('cuda'), /must be one of auto, tensorflow, wasm, cpu; got "cuda"/);
  });

  it('says which kernels are native, and why there are none off wasm', async () => {
    const wasm = await selectBackend('wasm');
    assert.ok(wasm.kernels.native.includes('BatchMatMul') && wasm.kernels.native.includes('GroveCausalAttention'));
    assert.match(
      describeBackend(wasm),
      /backend: wasm via @tensorflow\/tfjs-backend-wasm; native kernels: BatchMatMul, /,
    );
    assert.deepEqual(backendSummary(), { name: 'wasm', kernels: wasm.kernels });
    const cpu = await selectBackend('cpu');
    assert.deepEqual(cpu.kernels, { native: [], reason: 'native kernels need the wasm backend, not cpu' });
    assert.equal(backendSummary().name, 'cpu');
  });
});
