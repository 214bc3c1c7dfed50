import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { karcher } from './karcher.js';
import type { TensorInputs } from './method.js';
import { modelStock } from './model-stock.js';
import { multislerp } from './multislerp.js';
import { slerp } from './slerp.js';

const close = (actual: ArrayLike<number>, expected: number[], tolerance = 1e-6) => {
  assert.equal(actual.length, expected.length);
  for (let i = 0; i < expected.length; i++)
    assert.ok(Math.abs(actual[i] - expected[i]) < tolerance, `[${i}] ${actual[i]} vs ${expected[i]}`);
};
const inputs = (experts: number[][], weights: number[], base = experts[0].map(() => 0)): TensorInputs => ({
  name: 'w',
  base: Float32Array.from(base),
  experts: experts.map((values) => Float32Array.from(values)),
  weights,
  seed: 1,
});
const degrees = (angle: number) => (angle * Math.PI) / 180;

describe('slerp', () => {
  const merge = (a: number[], b: number[], t: number) => slerp.merge(inputs([a, b], [0.5, 0.5]), { t });

  it('walks the arc between two experts: a third of the way from e1 to e2 is at 30°', () => {
    close(merge([1, 0], [0, 1], 0.5), [Math.SQRT1_2, Math.SQRT1_2]);
    close(merge([1, 0], [0, 1], 1 / 3), [Math.cos(degrees(30)), Math.sin(degrees(30))]);
    // Equal norms stay: the midpoint of (2, 0) and (0, 2) has norm 2, where the chord's has √2.
    close(merge([2, 0], [0, 2], 0.5), [Math.SQRT2, Math.SQRT2]);
    close(merge([1, 0], [0, 1], 0), [1, 0]);
  });

  it('falls back to the linear mix for nearly colinear or zero tensors', () => {
    close(merge([1, 0], [2, 0], 0.25), [1.25, 0]);
    close(merge([0, 0], [0, 4], 0.25), [0, 1]);
  });

  it('names which two experts it interpolates, the first two by default', () => {
    const options = slerp.options.parse({});
    assert.deepEqual(slerp.selectExperts?.(['press', 'lore', 'fiction'], options), ['press', 'lore']);
    const chosen = slerp.options.parse({ between: ['fiction', 'press'] });
    assert.deepEqual(slerp.selectExperts?.(['press', 'lore', 'fiction'], chosen), ['fiction', 'press']);
    assert.equal(slerp.options.safeParse({ t: 1.5 }).success, false);
  });
});

describe('multislerp and karcher', () => {
  it('with two experts both walk the arc between the directions to t = w₂, at the weighted mean norm', () => {
    // e1 with norm 2 (weight ¾) and e2 with norm 4 (weight ¼): 22.5° from e1, norm 2.5.
    const expected = [2.5 * Math.cos(degrees(22.5)), 2.5 * Math.sin(degrees(22.5))];
    close(
      multislerp.merge(
        inputs(
          [
            [2, 0],
            [0, 4],
          ],
          [0.75, 0.25],
        ),
        {},
      ),
      expected,
    );
    close(
      karcher.merge(
        inputs(
          [
            [2, 0],
            [0, 4],
          ],
          [0.75, 0.25],
        ),
        { maxIterations: 10, tolerance: 1e-9 },
      ),
      expected,
    );
  });

  it('average symmetric directions to their centre and fall back to the linear mean when directions cancel', () => {
    const third = 1 / 3;
    const centre = 2 / Math.sqrt(3); // direction (1, 1, 1)/√3, mean norm (1 + 2 + 3)/3 = 2
    close(
      multislerp.merge(
        inputs(
          [
            [1, 0, 0],
            [0, 2, 0],
            [0, 0, 3],
          ],
          [third, third, third],
        ),
        {},
      ),
      [centre, centre, centre],
    );
    close(
      multislerp.merge(
        inputs(
          [
            [1, 0],
            [-1, 0],
          ],
          [0.5, 0.5],
        ),
        {},
      ),
      [0, 0],
    );
    close(
      karcher.merge(
        inputs(
          [
            [0, 0],
            [0, 2],
          ],
          [0.5, 0.5],
        ),
        { maxIterations: 10, tolerance: 1e-9 },
      ),
      [0, 1],
    );
  });

  it('karcher converges to the Fréchet mean where one tangent step (multislerp) does not', () => {
    // e1 (weight ½), e2 and e3 (¼ each). By symmetry the mean is m = cos α e1 + sin α (e2 + e3)/√2.
    // From m, e1 lies α away; e2 and e3 lie β away with cos β = sin α / √2. The weighted tangent
    // vectors cancel along the arc when ½ α = 2 · ¼ · (β / sin β) · (e2 · t), t = −sin α e1 + cos α (e2 + e3)/√2,
    // i.e. α = (β / sin β) · cos α / √2. Solved by bisection on α ∈ (0, π/2):
    const gap = (alpha: number) => {
      const beta = Math.acos(Math.sin(alpha) / Math.SQRT2);
      return alpha - ((beta / Math.sin(beta)) * Math.cos(alpha)) / Math.SQRT2;
    };
    let low = 0;
    let high = Math.PI / 2;
    for (let i = 0; i < 100; i++) {
      const middle = (low + high) / 2;
      if (gap(middle) > 0) high = middle;
      else low = middle;
    }
    const alpha = low;
    const expected = [Math.cos(alpha), Math.sin(alpha) * Math.SQRT1_2, Math.sin(alpha) * Math.SQRT1_2];
    const experts = [
      [1, 0, 0],
      [0, 1, 0],
      [0, 0, 1],
    ];
    const weights = [0.5, 0.25, 0.25];
    close(karcher.merge(inputs(experts, weights), { maxIterations: 100, tolerance: 1e-12 }), expected);
    const oneStep = multislerp.merge(inputs(experts, weights), {});
    assert.ok(Math.abs(oneStep[0] - expected[0]) > 1e-4, `one step lands at ${oneStep[0]}, the mean at ${expected[0]}`);
    // The normalised chordal mean (2, 1, 1)/√6 is further still.
    assert.ok(Math.abs(2 / Math.sqrt(6) - expected[0]) > Math.abs(oneStep[0] - expected[0]));
  });
});

describe('model stock', () => {
  const merge = (experts: number[][], base: number[]) =>
    modelStock.merge(
      inputs(
        experts,
        experts.map(() => 1 / experts.length),
        base,
      ),
      {},
    );

  it('interpolates between the experts’ average and the seed by t = k cos θ / (1 + (k − 1) cos θ)', () => {
    // Seed (1, 1); task vectors (1, 0) and (½, √3/2) at 60°: cos θ = ½, t = 2 · ½ / (1 + ½) = ⅔.
    // Average (1.75, 1 + √3/4); θ = ⅔ · average + ⅓ · seed = (1.5, 1 + √3/6).
    close(
      merge(
        [
          [2, 1],
          [1.5, 1 + Math.sqrt(3) / 2],
        ],
        [1, 1],
      ),
      [1.5, 1 + Math.sqrt(3) / 6],
    );
    // Three task vectors e1, e2, (e1 + e2)/√2: cosines 0, 1/√2, 1/√2 → mean √2/3, t = √2 / (1 + 2√2/3).
    const t = Math.SQRT2 / (1 + (2 * Math.SQRT2) / 3);
    const average = [(1 + Math.SQRT1_2) / 3, (1 + Math.SQRT1_2) / 3];
    close(
      merge(
        [
          [1, 0],
          [0, 1],
          [Math.SQRT1_2, Math.SQRT1_2],
        ],
        [0, 0],
      ),
      [t * average[0], t * average[1]],
    );
  });

  it('stays at the seed when the task vectors are orthogonal or opposed, and keeps the average when they agree', () => {
    close(
      merge(
        [
          [2, 1],
          [1, 2],
        ],
        [1, 1],
      ),
      [1, 1],
    );
    close(
      merge(
        [
          [2, 1],
          [0, 1],
        ],
        [1, 1],
      ),
      [1, 1],
    );
    close(
      merge(
        [
          [2, 3],
          [3, 5],
        ],
        [1, 1],
      ),
      [2.5, 4],
    );
  });
});
