/**
 * Fitting a run to a wall-clock budget. The warm-up phase of the schedule does not depend
 * on the total step count, so a run can time its first steps and fix its length before
 * the cosine decay begins — no calibration run is thrown away.
 */
export interface BudgetMeasurements {
  budgetSeconds: number;
  /** Wall-clock time spent so far, evaluations included. */
  elapsedSeconds: number;
  stepsDone: number;
  secondsPerStep: number;
  /** Time one held-out evaluation takes. */
  evaluationSeconds: number;
  /** Steps between periodic evaluations (0: only the final one). */
  evaluateEvery: number;
}

/** The total step count that ends the run, final evaluation included, within the budget. */
export function stepsWithinBudget(m: BudgetMeasurements): number {
  const remaining = m.budgetSeconds - m.elapsedSeconds - m.evaluationSeconds;
  const perStep = m.secondsPerStep + (m.evaluateEvery > 0 ? m.evaluationSeconds / m.evaluateEvery : 0);
  return m.stepsDone + Math.max(0, Math.floor(remaining / perStep));
}
