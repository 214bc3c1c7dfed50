import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { METHOD_OPTIONS, TENSOR_MERGE_METHODS } from './methods/index.js';
import { MERGE_METHOD_NAMES } from './registry.js';

describe('merge method registry', () => {
  it('names every tensor method, the ensemble and both MoE assemblers once', () => {
    assert.deepEqual(MERGE_METHOD_NAMES, [
      ...TENSOR_MERGE_METHODS.map((method) => method.name),
      'ensemble',
      'btx',
      'ds-moe',
    ]);
    assert.equal(new Set(MERGE_METHOD_NAMES).size, MERGE_METHOD_NAMES.length);
  });

  it('composes the options of the methods that have any, each defaulted and checked', () => {
    assert.deepEqual(Object.keys(METHOD_OPTIONS).sort(), ['dare', 'karcher', 'slerp', 'taskArithmetic', 'ties']);
    assert.deepEqual(METHOD_OPTIONS.ties.parse(undefined), { density: 0.5, scale: 1 });
    assert.deepEqual(METHOD_OPTIONS.dare.parse({ dropRate: 0.9 }), { dropRate: 0.9, scale: 1 });
    assert.equal(METHOD_OPTIONS.ties.safeParse({ density: 0 }).success, false);
    assert.equal(METHOD_OPTIONS.dare.safeParse({ dropRate: 1 }).success, false);
    assert.equal(METHOD_OPTIONS.taskArithmetic.safeParse({ lambda: 1 }).success, false, 'unknown keys are refused');
  });
});
