import assert from 'node:assert/strict';
import { before, describe, it } from 'node:test';
import { type ModelConfig, presetConfig, selectBackend, TransformerLM } from '@grove/model';
import { TRAINING_DEFAULTS, Trainer } from './trainer.js';

const moe: ModelConfig = {
  ...presetConfig('tiny'),
  layers: 2,
  width: 16,
  heads: 2,
  ffnWidth: 32,
  contextLength: 8,
  moe: { experts: 3, topK: 2, training: 'sparse', threshold: 0, balanceCoefficient: 0.01 },
};
const stream = Uint8Array.from({ length: 4096 }, (_, i) => 97 + ((i * 7) % 26));

before(async () => {
  await selectBackend('wasm');
});

describe('fine-tuning a Mixture-of-Experts', () => {
  it('router-only training moves the routers and nothing else, and resumes', () => {
    const model = TransformerLM.create(moe, 3);
    const before = model.toArrays();
    const weights = new Map(
      [...before].map(([name, data]) => [name, { shape: model.params.get(name)?.shape ?? [], data }]),
    );
    model.dispose();
    const settings = {
      ...TRAINING_DEFAULTS,
      steps: 4,
      batchSize: 2,
      warmupSteps: 1,
      trainableParameters: 'router' as const,
    };
    const trainer = Trainer.fromWeights({ config: { ...moe }, weights }, settings, stream);
    trainer.trainStep();
    trainer.trainStep();
    const after = trainer.model.toArrays();
    for (const [name, values] of before) {
      const changed = values.some((value, i) => value !== after.get(name)?.[i]);
      assert.equal(changed, name.endsWith('.ffn.router.weight'), name);
    }
    // Resumed from a checkpoint at step 2, the run goes on as the uninterrupted one does.
    const resumed = Trainer.resume(trainer.checkpoint(), stream);
    while (!trainer.finished) assert.equal(resumed.trainStep().loss, trainer.trainStep().loss);
    assert.ok(resumed.finished);
    assert.equal(resumed.step, 4);
    assert.deepEqual(resumed.model.toArrays(), trainer.model.toArrays());
    assert.notDeepEqual(resumed.model.toArrays(), after, 'the steps after the checkpoint moved the routers');
    trainer.dispose();
    resumed.dispose();
  });

  it('trains when a batch leaves an expert without tokens, leaving that expert untouched', () => {
    const config = { ...moe, moe: { ...moe.moe, topK: 1 } } as ModelConfig;
    const model = TransformerLM.create(config, 4);
    const arrays = model.toArrays();
    model.dispose();
    // A zero router ties every expert, and ties go to expert 0: experts 1 and 2 get no tokens.
    for (const layer of [0, 1]) arrays.set(`layers.${layer}.ffn.router.weight`, new Float32Array(16 * 3));
    const shapes = TransformerLM.fromArrays(config, arrays);
    const weights = new Map(
      [...arrays].map(([name, data]) => [name, { shape: shapes.params.get(name)?.shape ?? [], data }]),
    );
    shapes.dispose();
    const trainer = Trainer.fromWeights(
      { config: { ...config }, weights },
      { ...TRAINING_DEFAULTS, steps: 2, batchSize: 2 },
      stream,
    );
    trainer.trainStep();
    const after = trainer.model.toArrays();
    const changed = (name: string) =>
      (arrays.get(name) as Float32Array).some((value, i) => value !== after.get(name)?.[i]);
    assert.ok(changed('layers.0.ffn.experts.0.up.weight'));
    assert.ok(!changed('layers.0.ffn.experts.1.up.weight'));
    assert.ok(!changed('layers.1.ffn.experts.2.down.weight'));
    trainer.dispose();
  });

  it('refuses router-only training of a dense model', () => {
    const dense = { ...moe, moe: undefined };
    assert.throws(
      () => Trainer.fresh(dense, { ...TRAINING_DEFAULTS, trainableParameters: 'router' }, stream),
      /Only the routers can be trained in a Mixture-of-Experts model; this one has none/,
    );
  });
});
