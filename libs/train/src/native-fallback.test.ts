import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { describe, it } from 'node:test';

/**
 * Trains the same few steps twice in a child process (so GROVE_NATIVE applies from the start)
 * and reports the losses and what computed them.
 */
const TRAIN = `
  import { backendSummary, presetConfig, selectBackend } from '@grove/model';
  import { TRAINING_DEFAULTS, Trainer } from '@grove/train';
  await selectBackend('wasm');
  const config = { ...presetConfig('tiny'), layers: 2, width: 32, heads: 2, ffnWidth: 64, contextLength: 16 };
  const settings = { ...TRAINING_DEFAULTS, steps: 4, batchSize: 4, warmupSteps: 1, learningRate: 1e-2 };
  const text = new TextEncoder().encode('the quick brown fox jumps over the lazy dog. '.repeat(50));
  const run = () => {
    const trainer = Trainer.fresh(config, settings, text);
    const losses = Array.from({ length: 4 }, () => trainer.trainStep().loss);
    trainer.dispose();
    return losses;
  };
  console.log(JSON.stringify({ losses: [run(), run()], backend: backendSummary() }));
`;

function train(native: boolean) {
  const env = { ...process.env, GROVE_NATIVE: native ? '1' : '0' };
  const child = spawnSync(process.execPath, ['--import', 'tsx', '--input-type=module', '-e', TRAIN], {
    encoding: 'utf8',
    env,
  });
  assert.equal(child.status, 0, child.stderr);
  return JSON.parse(child.stdout.trim().split('\n').pop() as string) as {
    losses: number[][];
    backend: { name: string; kernels: { native: string[]; reason?: string } };
  };
}

describe('native kernels', () => {
  it('train to the same losses as stock wasm, which runs when they are turned off', () => {
    const stock = train(false);
    const native = train(true);
    assert.equal(stock.backend.name, 'wasm');
    assert.deepEqual(stock.backend.kernels, { native: [], reason: 'native kernels off: GROVE_NATIVE=0' });
    assert.ok(native.backend.kernels.native.includes('BatchMatMul'), JSON.stringify(native.backend));
    for (const [step, loss] of stock.losses[0].entries()) {
      const nativeLoss = native.losses[0][step];
      assert.ok(Math.abs(nativeLoss - loss) < 1e-3 * loss, `step ${step}: ${nativeLoss} native vs ${loss} stock`);
    }
  });

  it('give the same numbers for the same seed', () => {
    const [first, second] = train(true).losses;
    assert.deepEqual(first, second);
  });
});
