import assert from 'node:assert/strict';
import { afterEach, describe, it } from 'node:test';
import { smokeBudget, smokeCap } from './smoke.js';

const given = process.env.GROVE_SMOKE;
afterEach(() => {
  if (given === undefined) delete process.env.GROVE_SMOKE;
  else process.env.GROVE_SMOKE = given;
});

describe('smoke mode', () => {
  it('caps budgets by name, at any depth, and leaves everything else alone', () => {
    process.env.GROVE_SMOKE = '1';
    const spec = {
      seed: { steps: 200 },
      expertSteps: 100,
      expertReplicas: 4,
      training: { batchSize: 16, learningRate: 3e-3, warmupSteps: 30, checkpointEvery: 25, seed: 1 },
      eval: { bytes: 16_384 },
      domains: ['press', 'fiction'],
      experts: [{ domain: 'press', steps: 1, replicas: 1 }],
    };
    assert.deepEqual(smokeBudget(spec), {
      ...spec,
      seed: { steps: 2 },
      expertSteps: 2,
      expertReplicas: 2,
      training: { ...spec.training, batchSize: 4, warmupSteps: 2 },
      eval: { bytes: 1024 },
    });
    assert.equal(smokeCap('minutes', 15), 0.05);
    assert.equal(smokeCap('tokens', 300), 16);
    assert.equal(smokeCap('lr', 5), 5);
  });

  it('caps numeric flags as strings, and each value of a list once', () => {
    process.env.GROVE_SMOKE = '1';
    assert.deepEqual(smokeBudget({ H: '1,8,32,128', replicas: '2,4,8', 'eval-bytes': '32768', codecs: 'fp32,int8' }), {
      H: '1,2',
      replicas: '2',
      'eval-bytes': '1024',
      codecs: 'fp32,int8',
    });
  });

  it('changes nothing unless GROVE_SMOKE is 1', () => {
    delete process.env.GROVE_SMOKE;
    const spec = { seed: { steps: 200 }, eval: { bytes: 16_384 } };
    assert.equal(smokeBudget(spec), spec);
    assert.equal(smokeCap('steps', 400), 400);
    process.env.GROVE_SMOKE = '0';
    assert.equal(smokeCap('steps', 400), 400);
  });
});
