import assert from 'node:assert/strict';
import { before, describe, it } from 'node:test';
import * as tf from '@tensorflow/tfjs-core';
import { selectBackend } from './backend.js';
import { type ModelConfig, parameterCount, parameterShapes, presetConfig } from './config.js';
import { applyRotary } from './ops.js';
import { TransformerLM } from './transformer.js';

const micro: ModelConfig = { ...presetConfig('tiny'), layers: 2, width: 16, heads: 2, ffnWidth: 32, contextLength: 8 };

before(async () => {
  await selectBackend('wasm');
});

describe('TransformerLM', () => {
  it('names parameters stably and sizes the presets as documented', () => {
    const names = [...parameterShapes(micro).keys()];
    assert.equal(names[0], 'embed.tokens.weight');
    assert.ok(names.includes('layers.1.ffn.up.weight'));
    assert.ok(names.includes('layers.0.attention.query.weight'));
    assert.equal(names[names.length - 1], 'head.weight');
    const tiny = parameterCount(presetConfig('tiny'));
    const small = parameterCount(presetConfig('small'));
    assert.ok(tiny > 0.8e6 && tiny < 1.2e6, `tiny has ${tiny} parameters`);
    assert.ok(small > 9e6 && small < 12e6, `small has ${small} parameters`);
  });

  it('maps [B, T] tokens to [B·T, vocab] logits', () => {
    const model = TransformerLM.create(micro, 1);
    const logits = model.logits(
      tf.tensor2d(
        [...Array(3 * 8).keys()].map((i) => i % 256),
        [3, 8],
        'int32',
      ),
    );
    assert.deepEqual(logits.shape, [24, micro.vocabSize]);
    assert.ok((logits.dataSync() as Float32Array).every(Number.isFinite));
    model.dispose();
  });

  for (const positions of ['learned', 'rotary'] as const)
    it(`is causal: changing a later token leaves earlier positions untouched (${positions} positions)`, () => {
      const model = TransformerLM.create({ ...micro, positions }, 2);
      const a = [10, 20, 30, 40, 50, 60, 70, 80];
      const b = [...a];
      b[5] = 200;
      const la = model.logits(tf.tensor2d([a], [1, 8], 'int32')).arraySync() as number[][];
      const lb = model.logits(tf.tensor2d([b], [1, 8], 'int32')).arraySync() as number[][];
      for (let position = 0; position < 5; position++) assert.deepEqual(la[position], lb[position]);
      assert.notDeepEqual(la[5], lb[5]);
      model.dispose();
    });

  it('gives the same initial weights for the same seed and different ones for another', () => {
    const first = TransformerLM.create(micro, 7).toArrays();
    const again = TransformerLM.create(micro, 7).toArrays();
    const other = TransformerLM.create(micro, 8).toArrays();
    assert.deepEqual(first.get('head.weight'), again.get('head.weight'));
    assert.notDeepEqual(first.get('head.weight'), other.get('head.weight'));
  });

  const variants = [
    { activation: 'gelu', positions: 'learned' },
    { activation: 'swiglu', positions: 'rotary' },
  ] as const;
  for (const variant of variants) {
    it(`has gradients that match finite differences (${variant.activation}, ${variant.positions} positions)`, () => {
      // float64 would be nicer; float32 with a central difference and a loose bound still catches wrong formulas.
      const config = { ...micro, ...variant, layers: 1 };
      const model = TransformerLM.create(config, 3);
      const inputs = tf.tensor2d([[1, 5, 9, 13, 2, 6, 10, 14]], [1, 8], 'int32');
      const targets = tf.tensor2d([[5, 9, 13, 2, 6, 10, 14, 3]], [1, 8], 'int32');
      const loss = () => model.loss(inputs, targets).dataSync()[0];
      const { grads } = tf.variableGrads(() => model.loss(inputs, targets), [...model.params.values()]);
      const epsilon = 1e-2;
      for (const name of [
        'layers.0.attention.query.weight',
        'layers.0.ffn.up.weight',
        'embed.tokens.weight',
        'norm.weight',
      ]) {
        const variable = model.params.get(name) as tf.Variable;
        const analytic = grads[variable.name].dataSync();
        const values = variable.dataSync().slice() as Float32Array;
        // Probe the entries with the largest gradients, where the signal dominates float32 noise.
        const order = [...analytic.keys()].sort((i, j) => Math.abs(analytic[j]) - Math.abs(analytic[i])).slice(0, 3);
        for (const index of order) {
          const probe = (delta: number) => {
            const shifted = values.slice();
            shifted[index] += delta;
            variable.assign(tf.tensor(shifted, variable.shape));
            return loss();
          };
          const numeric = (probe(epsilon) - probe(-epsilon)) / (2 * epsilon);
          variable.assign(tf.tensor(values, variable.shape));
          const scale = Math.max(Math.abs(numeric), Math.abs(analytic[index]), 1e-3);
          assert.ok(
            Math.abs(numeric - analytic[index]) / scale < 0.05,
            `${name}[${index}]: analytic ${analytic[index]} vs numeric ${numeric}`,
          );
        }
      }
      model.dispose();
    });
  }

  it('rotary positions make query–key scores depend only on the offset between positions', () => {
    const headWidth = 8;
    const repeat = (values: number[]) => tf.tensor3d([Array(6).fill(values)], [1, 6, headWidth]);
    const q = applyRotary(repeat([0.3, -1, 0.5, 2, 0.1, 0.7, -0.4, 1.1])).arraySync()[0];
    const k = applyRotary(repeat([1, 0.2, -0.6, 0.4, 0.9, -1.3, 0.8, 0.05])).arraySync()[0];
    const score = (m: number, n: number) => q[m].reduce((sum, value, i) => sum + value * k[n][i], 0);
    assert.ok(Math.abs(score(2, 0) - score(5, 3)) < 1e-5);
    assert.ok(Math.abs(score(4, 1) - score(3, 0)) < 1e-5);
    assert.ok(Math.abs(score(2, 0) - score(3, 0)) > 1e-3, 'different offsets score differently');
    assert.ok(!parameterShapes({ ...micro, positions: 'rotary' }).has('embed.positions.weight'));
    assert.throws(
      () => TransformerLM.create({ ...micro, positions: 'rotary', width: 18, heads: 2 }, 1),
      /even head width/,
    );
  });

  it('round-trips weights through named arrays', () => {
    const model = TransformerLM.create(micro, 4);
    const copy = TransformerLM.fromArrays(micro, model.toArrays());
    assert.deepEqual(copy.toArrays(), model.toArrays());
    const missing = model.toArrays();
    missing.delete('norm.weight');
    assert.throws(() => TransformerLM.fromArrays(micro, missing), /missing parameter "norm.weight"/);
  });

  it('assigns weights in place without keeping a copy per assignment', () => {
    const model = TransformerLM.create(micro, 4);
    const other = TransformerLM.create(micro, 5).toArrays();
    const before = tf.memory().numBytes;
    for (let i = 0; i < 5; i++) model.assign(other);
    assert.equal(tf.memory().numBytes, before);
    assert.deepEqual(model.toArrays(), other);
    model.dispose();
  });

  it('starts near the uniform loss of ln(vocab)', () => {
    const model = TransformerLM.create(presetConfig('tiny'), 5);
    const tokens = tf.randomUniform([2, 128], 0, 256, 'int32') as tf.Tensor2D;
    const loss = model.loss(tokens, tokens).dataSync()[0];
    assert.ok(Math.abs(loss - Math.log(260)) < 0.1, `initial loss ${loss}`);
    model.dispose();
  });
});
