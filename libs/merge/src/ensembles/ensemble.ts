/**
 * BTM's expert ensemble: at each position the experts' next-byte distributions are mixed,
 *   p(x_t | x_<t) = Σ_j p_j(x_t | x_<t) · w_j(t),
 * with weights from a mixture rule (mixtures.ts): uniform, or the domain posterior given the
 * context so far by Bayes' rule, p(D=j | x_<t) ∝ p(D=j) · Π_{s<t} p_j(x_s | x_<s). The prior
 * p(D=j) is "cached": an EMA of the posteriors at the end of a few held-out sequences of the
 * target domain.
 *
 * Everything works on token losses (−log p_j of each actual next byte), so it needs one
 * forward pass per expert and nothing else.
 */
import { type EnsembleMixture, posteriorMixture, softmax } from './mixtures.js';

/** losses[expert][position]: −log p_j(x_t | x_<t) in nats for one window. */
export type WindowLosses = Float32Array[];

/** The posterior over experts after a whole window, given `prior`. */
export function windowPosterior(losses: WindowLosses, prior: number[]): number[] {
  const scores = losses.map((row, j) => Math.log(prior[j]) - row.reduce((sum, loss) => sum + loss, 0));
  return softmax(scores);
}

/** BTM's cached prior: EMA (α) of the end-of-window posteriors, from uniform. */
export function cachedPrior(windows: WindowLosses[], experts: number, alpha = 0.3): number[] {
  let prior = Array(experts).fill(1 / experts);
  for (const window of windows) {
    const posterior = windowPosterior(window, Array(experts).fill(1 / experts));
    prior = prior.map((p, j) => (1 - alpha) * p + alpha * posterior[j]);
  }
  return prior;
}

/** Total loss in nats of the ensemble over one window, its experts weighted at each position by `mixture`. */
export function ensembleWindowLoss(
  losses: WindowLosses,
  prior: number[],
  mixture: EnsembleMixture = posteriorMixture,
): number {
  const logPosterior = prior.map(Math.log);
  let total = 0;
  for (let t = 0; t < losses[0].length; t++) {
    const weights = mixture.weights(logPosterior);
    const chosen = weights.flatMap((weight, j) => (weight > 0 ? [j] : []));
    // −log Σ_j w_j p_j, computed stably around the likeliest chosen expert.
    const best = Math.min(...chosen.map((j) => losses[j][t]));
    const mixed = chosen.reduce((sum, j) => sum + weights[j] * Math.exp(best - losses[j][t]), 0);
    total += best - Math.log(mixed);
    for (let j = 0; j < losses.length; j++) logPosterior[j] -= losses[j][t];
  }
  return total;
}
