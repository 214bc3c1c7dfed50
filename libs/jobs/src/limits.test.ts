import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { ClusterLimits, clusterLimitsFromEnv, limitErrors } from './limits.js';
import { parseRunSpec } from './run-spec.js';

describe('cluster limits', () => {
  it('reads its variables, with defaults for the unset ones', () => {
    const limits = clusterLimitsFromEnv({ GROVE_MAX_EXPERTS: '4', GROVE_MAX_PRESET: 'tiny' });
    assert.equal(limits.maxExperts, 4);
    assert.equal(limits.maxPreset, 'tiny');
    assert.equal(limits.maxBatchSize, ClusterLimits.parse({}).maxBatchSize);
  });

  it('names a wrong variable', () => {
    assert.throws(
      () => clusterLimitsFromEnv({ GROVE_MAX_STEPS: 'lots', GROVE_MAX_PRESET: 'huge' }),
      /GROVE_MAX_STEPS: .*; GROVE_MAX_PRESET: /,
    );
  });

  it('refuses a preset larger than the limit', () => {
    const limits = ClusterLimits.parse({ maxPreset: 'tiny' });
    assert.deepEqual(limitErrors(parseRunSpec({ model: { preset: 'tiny' } }), limits), []);
    const [error] = limitErrors(parseRunSpec({ model: { preset: 'small' } }), limits);
    assert.equal(error.path, 'model.preset');
    assert.match(error.message, /GROVE_MAX_PRESET/);
  });
});
