/**
 * BTM's expert ensemble: p(x_t | x_<t) = Σ_{j ∈ top-k} p(x_t | x_<t, D=j) · p(D=j | x_<t), with the
 * domain posterior by Bayes' rule over the context, p(D=j | x_<t) ∝ p(x_<t | D=j) · p(D=j), and the
 * prior p(D=j) cached from a few held-out sequences.
 */

export interface EnsembleOptions {
  /** Experts mixed per token: the k likeliest under the posterior, renormalised (all when left out). */
  topK?: number;
  /** false: fixed weights (the prior) instead of the Bayes posterior, e.g. the uniform ensemble. */
  bayes: boolean;
}

/**
 * Mixture log-probabilities of each token of `rows` windows of `length` tokens.
 * @param logProbabilities [expert][row · length + t]: log p(x_t | x_<t, D=j) in nats
 * @param prior p(D=j), summing to 1
 */
export function ensembleLogProbabilities(
  logProbabilities: Float32Array[],
  rows: number,
  length: number,
  prior: number[],
  options: EnsembleOptions,
): Float32Array {
  const experts = logProbabilities.length;
  if (experts === 0) throw new Error('An ensemble needs at least one expert.');
  if (prior.length !== experts) throw new Error(`Got a prior over ${prior.length} experts for ${experts} experts.`);
  if (logProbabilities.some((values) => values.length !== rows * length))
    throw new Error(`Every expert needs ${rows * length} token log-probabilities.`);
  const topK = Math.min(options.topK ?? experts, experts);
  const logPrior = prior.map(Math.log);
  const mixture = new Float32Array(rows * length);
  const order = [...Array(experts).keys()];
  for (let row = 0; row < rows; row++) {
    const context = new Float64Array(experts);
    for (let t = 0; t < length; t++) {
      const at = row * length + t;
      const scores = order.map((j) => logPrior[j] + (options.bayes ? context[j] : 0));
      const chosen = [...order].sort((a, b) => scores[b] - scores[a]).slice(0, topK);
      const top = scores[chosen[0]];
      let numerator = 0;
      let denominator = 0;
      for (const j of chosen) {
        const weight = Math.exp(scores[j] - top);
        denominator += weight;
        numerator += weight * Math.exp(logProbabilities[j][at]);
      }
      mixture[at] = Math.log(numerator / denominator);
      for (let j = 0; j < experts; j++) context[j] += logProbabilities[j][at];
    }
  }
  return mixture;
}

/**
 * The cached prior: starting uniform, an exponential moving average (weight `alpha` on the new
 * value) of each held-out sequence's posterior, itself taken under the prior so far.
 * @param sequenceLogLikelihoods [sequence][expert]: log p(x | D=j) in nats
 */
export function cachedPrior(sequenceLogLikelihoods: number[][], alpha = 0.3): number[] {
  if (sequenceLogLikelihoods.length === 0) throw new Error('The cached prior needs at least one sequence.');
  const experts = sequenceLogLikelihoods[0].length;
  let prior: number[] = Array(experts).fill(1 / experts);
  for (const row of sequenceLogLikelihoods) {
    if (row.length !== experts) throw new Error('Every sequence needs one log-likelihood per expert.');
    const scores = row.map((value, j) => value + Math.log(prior[j]));
    const top = Math.max(...scores);
    const exps = scores.map((score) => Math.exp(score - top));
    const sum = exps.reduce((a, b) => a + b, 0);
    // Never let an expert's prior reach exactly 0: its log would be −∞ for every later token.
    prior = prior.map((value, j) => Math.max((1 - alpha) * value + (alpha * exps[j]) / sum, 1e-12));
  }
  return prior;
}
