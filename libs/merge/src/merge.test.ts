import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { weightedAverage } from './average.js';
import { domainPosterior } from './posterior.js';

const model = (a: number[], b: number[]) =>
  new Map([
    ['a', Float32Array.from(a)],
    ['b', Float32Array.from(b)],
  ]);

describe('weightedAverage', () => {
  it('matches a hand-computed weighted mean, normalising the weights', () => {
    const merged = weightedAverage([model([1, 2], [3]), model([3, 6], [-3])], [3, 1]);
    assert.deepEqual([...(merged.get('a') as Float32Array)], [1.5, 3]);
    assert.deepEqual([...(merged.get('b') as Float32Array)], [1.5]);
  });

  it('refuses models of different shapes, naming the parameter', () => {
    assert.throws(
      () => weightedAverage([model([1, 2], [3]), model([1], [3])], [1, 1]),
      /Parameter "a" has 1 values in expert 1 but 2 in the base/,
    );
    assert.throws(() => weightedAverage([model([1], [3])], [-1]), /non-negative/);
  });
});

describe('domainPosterior', () => {
  it('applies Bayes’ rule per sequence and averages', () => {
    // Sequence 1: expert 0 is e¹ times likelier; sequence 2: equal.
    const weights = domainPosterior([
      [0, -1],
      [-5, -5],
    ]);
    const first = Math.E / (Math.E + 1);
    assert.ok(Math.abs(weights[0] - (first + 0.5) / 2) < 1e-12);
    assert.ok(Math.abs(weights[0] + weights[1] - 1) < 1e-12);
  });

  it('uses the prior and stays finite for very unlikely sequences', () => {
    const weights = domainPosterior([[-10_000, -10_001]], [0.25, 0.75]);
    const expected = (0.25 * Math.E) / (0.25 * Math.E + 0.75);
    assert.ok(Math.abs(weights[0] - expected) < 1e-12);
  });
});
