import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { stepsWithinBudget } from './budget.js';

describe('stepsWithinBudget', () => {
  it('spends what is left on steps and the evaluations they bring', () => {
    // 100 s left minus a 10 s final evaluation; each step costs 1 s plus 10 s / 10 steps of evaluation.
    const steps = stepsWithinBudget({
      budgetSeconds: 120,
      elapsedSeconds: 20,
      stepsDone: 5,
      secondsPerStep: 1,
      evaluationSeconds: 10,
      evaluateEvery: 10,
    });
    assert.equal(steps, 5 + 45);
  });

  it('never plans fewer steps than are done', () => {
    const steps = stepsWithinBudget({
      budgetSeconds: 10,
      elapsedSeconds: 30,
      stepsDone: 7,
      secondsPerStep: 1,
      evaluationSeconds: 5,
      evaluateEvery: 0,
    });
    assert.equal(steps, 7);
  });
});
