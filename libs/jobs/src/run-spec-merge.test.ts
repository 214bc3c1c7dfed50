import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { METHOD_OPTIONS } from '@grove/merge';
import { z } from 'zod';
import { InvalidRunSpecError, parseRunSpec, RunSpec } from './run-spec.js';

const fieldsOf = (input: unknown) => {
  try {
    parseRunSpec(input);
  } catch (error) {
    assert.ok(error instanceof InvalidRunSpecError);
    return error.errors;
  }
  assert.fail('the spec was accepted');
};

describe('run spec: merge', () => {
  it('composes every method’s options from the registry, defaults filled in', () => {
    const { merge } = parseRunSpec({ merge: { methods: ['ties', 'slerp'], ties: { density: 0.2 } } });
    assert.deepEqual(merge.ties, { density: 0.2, scale: 1 });
    assert.deepEqual(merge.dare, { dropRate: 0.5, scale: 1 });
    assert.deepEqual(merge.taskArithmetic, { scale: 1 });
    assert.deepEqual(merge.slerp, { t: 0.5 });
    assert.deepEqual(merge.karcher, { maxIterations: 10, tolerance: 1e-6 });
  });

  it('documents every method’s options in the JSON schema the API publishes', () => {
    const schema = z.toJSONSchema(RunSpec, { io: 'input', unrepresentable: 'any' }) as unknown as {
      properties: { merge: { properties: Record<string, { properties?: Record<string, { description?: string }> }> } };
    };
    const merge = schema.properties.merge.properties;
    for (const key of Object.keys(METHOD_OPTIONS)) assert.ok(merge[key]?.properties, `merge.${key}`);
    assert.match(merge.ties.properties?.density.description ?? '', /Fraction of each task vector kept/);
    assert.match(merge.slerp.properties?.t.description ?? '', /arc/);
  });

  it('names the field of a bad or moved method option', () => {
    assert.deepEqual(
      fieldsOf({ merge: { ties: { density: 0 } } }).map((field) => field.path),
      ['merge.ties.density'],
    );
    assert.match(fieldsOf({ merge: { scale: 0.5 } })[0].message, /Unrecognized key/);
    assert.deepEqual(
      fieldsOf({ merge: { methods: ['merge-all'] } }).map((field) => field.path),
      ['merge.methods.0'],
    );
  });

  it('checks the experts a method picks against the run’s, and how many it needs', () => {
    const domains = ['press', 'lore', 'fiction'];
    const unknown = fieldsOf({ domains, merge: { methods: ['slerp'], slerp: { between: ['press', 'hobbies'] } } });
    assert.deepEqual(
      unknown.map((field) => [field.path, field.message]),
      [['merge.slerp', 'slerp names "hobbies", which is not an expert']],
    );
    assert.match(
      fieldsOf({ domains, merge: { methods: ['slerp'], slerp: { between: ['lore', 'lore'] } } })[0].message,
      /names one expert twice/,
    );
    assert.match(
      fieldsOf({ domains: ['press'], merge: { methods: ['model-stock'] } })[0].message,
      /model-stock needs at least 2 experts; the run has 1/,
    );
    assert.doesNotThrow(() =>
      parseRunSpec({ domains, merge: { methods: ['slerp'], slerp: { between: ['fiction', 'press'] } } }),
    );
  });
});
