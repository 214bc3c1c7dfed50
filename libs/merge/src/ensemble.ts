/**
 * BTM's expert ensemble: at each position the experts' next-byte distributions are mixed
 * with the domain posterior given the context so far, by Bayes' rule,
 *   p(x_t | x_<t) = Σ_j p_j(x_t | x_<t) · p(D=j | x_<t),  p(D=j | x_<t) ∝ p(D=j) · Π_{s<t} p_j(x_s | x_<s),
 * optionally over the top-k experts only. The prior p(D=j) is "cached": an EMA of the
 * posteriors at the end of a few held-out sequences of the target domain.
 *
 * Everything works on token losses (−log p_j of each actual next byte), so it needs one
 * forward pass per expert and nothing else.
 */

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

/**
 * Total loss in nats of the ensemble over one window: at each position the experts are
 * weighted by their posterior given the window's earlier bytes (top-k of it when `topK` is
 * smaller than the number of experts).
 */
export function ensembleWindowLoss(losses: WindowLosses, prior: number[], topK = losses.length): number {
  const experts = losses.length;
  const length = losses[0].length;
  const logPosterior = prior.map(Math.log);
  let total = 0;
  for (let t = 0; t < length; t++) {
    const weights = softmax(logPosterior);
    const chosen = topK >= experts ? weights.map((_, j) => j) : topIndices(weights, topK);
    const mass = chosen.reduce((sum, j) => sum + weights[j], 0);
    // log Σ_j w_j p_j, computed stably around the likeliest expert.
    const best = Math.min(...chosen.map((j) => losses[j][t]));
    const mixture = chosen.reduce((sum, j) => sum + (weights[j] / mass) * Math.exp(best - losses[j][t]), 0);
    total += best - Math.log(mixture);
    for (let j = 0; j < experts; j++) logPosterior[j] -= losses[j][t];
  }
  return total;
}

function softmax(scores: number[]): number[] {
  const top = Math.max(...scores);
  const exps = scores.map((s) => Math.exp(s - top));
  const sum = exps.reduce((a, b) => a + b, 0);
  return exps.map((e) => e / sum);
}

function topIndices(values: number[], k: number): number[] {
  return values
    .map((value, index) => [value, index] as const)
    .sort((a, b) => b[0] - a[0])
    .slice(0, k)
    .map(([, index]) => index);
}
