/**
 * EDiT's pseudo-gradient penalty, deciding how much each replica's Δ counts in a round:
 * non-finite Δ never counts; anomaly elimination drops a Δ whose norm is an outlier against
 * an EMA of past norms; weighted averaging gives larger norms less weight (softmax(−‖Δ‖/T));
 * clipping scales a Δ down to a largest norm. In asynchronous rounds each Δ can also be
 * weighted by the inner steps behind it. Every replica runs this on the same inputs and
 * state, so all agree on the weights without another message.
 */
export interface PenaltySettings {
  /** Drop a Δ whose norm's z-score against the EMA exceeds `threshold`, after `warmupRounds`. */
  anomaly: { enabled: boolean; alpha: number; threshold: number; warmupRounds: number };
  /** w_i ∝ exp(−‖Δ_i‖ / temperature). */
  weighting: { enabled: boolean; temperature: number };
  /** Scale each Δ to at most this norm; 0 turns clipping off. */
  clipNorm: number;
  /** Weight each Δ by its share of the round's inner steps (asynchronous rounds). */
  weightBySteps: boolean;
}

export const PENALTY_DEFAULTS: PenaltySettings = {
  anomaly: { enabled: true, alpha: 0.02, threshold: 3, warmupRounds: 3 },
  weighting: { enabled: false, temperature: 1 },
  clipNorm: 0,
  weightBySteps: false,
};

import type { Contribution } from '@grove/peer';

export interface PenaltyState {
  rounds: number;
  /** Norms observed so far. */
  count: number;
  mean: number;
  variance: number;
}

export interface Verdict {
  /** Final factor to multiply each rank's Δ by (clip × weight); 0 for excluded ranks. */
  scale: Map<number, number>;
  excluded: Map<number, string>;
}

export class PseudoGradientPenalty {
  constructor(
    readonly settings: PenaltySettings,
    readonly state: PenaltyState = { rounds: 0, count: 0, mean: 0, variance: 0 },
  ) {}

  /**
   * The round's weights, and the norm statistics updated with the norms kept. Pure: a round
   * attempt that fails changes nothing, and the caller keeps `state` once the round is done.
   */
  judge(contributions: Contribution[], round: number): { verdict: Verdict; state: PenaltyState } {
    const { anomaly, weighting, clipNorm, weightBySteps } = this.settings;
    const excluded = new Map<number, string>();
    // A floor on the spread: a few similar early norms must not make every later one an outlier.
    const std = Math.max(Math.sqrt(this.state.variance), 0.05 * this.state.mean);
    for (const c of contributions) {
      if (c.baseRound !== round - 1) excluded.set(c.rank, `started from round ${c.baseRound}, not ${round - 1}`);
      else if (!c.finite || !Number.isFinite(c.norm)) excluded.set(c.rank, 'non-finite pseudo-gradient');
      else if (c.steps <= 0) excluded.set(c.rank, 'no inner steps');
      else if (anomaly.enabled && this.state.rounds >= anomaly.warmupRounds && std > 0) {
        const z = (c.norm - this.state.mean) / std;
        if (z > anomaly.threshold)
          excluded.set(c.rank, `norm ${c.norm.toPrecision(3)} is an outlier (z = ${z.toFixed(1)})`);
      }
    }
    const kept = contributions.filter((c) => !excluded.has(c.rank));
    const raw = new Map<number, number>();
    const smallestNorm = Math.min(...kept.map((c) => c.norm));
    for (const c of kept) {
      let weight = 1;
      // Shifted by the smallest norm for a stable softmax; the shift cancels in the normalisation.
      if (weighting.enabled) weight *= Math.exp(-(c.norm - smallestNorm) / weighting.temperature);
      if (weightBySteps) weight *= c.steps;
      raw.set(c.rank, weight);
    }
    const total = [...raw.values()].reduce((a, b) => a + b, 0);
    const scale = new Map<number, number>();
    for (const c of contributions) {
      const weight = raw.get(c.rank);
      if (weight === undefined || total === 0) {
        scale.set(c.rank, 0);
        continue;
      }
      const clip = clipNorm > 0 && c.norm > clipNorm ? clipNorm / c.norm : 1;
      scale.set(c.rank, (weight / total) * clip);
    }
    let state = this.state;
    for (const c of kept) state = observe(state, c.norm, this.settings.anomaly.alpha);
    if (kept.length > 0) state = { ...state, rounds: state.rounds + 1 };
    return { verdict: { scale, excluded }, state };
  }
}

/** EMA of mean and variance; a plain running average until it has seen 1/α norms (no bias towards 0). */
function observe(state: PenaltyState, norm: number, alphaSetting: number): PenaltyState {
  const alpha = Math.max(alphaSetting, 1 / (state.count + 1));
  const delta = norm - state.mean;
  const mean = state.mean + alpha * delta;
  const variance = (1 - alpha) * (state.variance + alpha * delta * delta);
  return { ...state, count: state.count + 1, mean, variance };
}
