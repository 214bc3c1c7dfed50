/**
 * BTM's domain posterior: by Bayes' rule, p(D=j | x) ∝ p(x | D=j) · p(D=j). Averaged over a
 * few sequences of the target data it gives each expert's weight for that target.
 */

/**
 * @param logLikelihoods [sequence][expert]: log p(x | D=j) of each sequence under each expert, in nats
 * @param prior p(D=j); uniform when left out
 * @returns the mean posterior over the sequences, one weight per expert, summing to 1
 */
export function domainPosterior(logLikelihoods: number[][], prior?: number[]): number[] {
  if (logLikelihoods.length === 0) throw new Error('The domain posterior needs at least one sequence.');
  const experts = logLikelihoods[0].length;
  const logPrior = (prior ?? Array(experts).fill(1 / experts)).map(Math.log);
  const mean = Array(experts).fill(0);
  for (const row of logLikelihoods) {
    if (row.length !== experts) throw new Error('Every sequence needs one log-likelihood per expert.');
    const scores = row.map((value, j) => value + logPrior[j]);
    const top = Math.max(...scores);
    const exps = scores.map((score) => Math.exp(score - top));
    const sum = exps.reduce((a, b) => a + b, 0);
    exps.forEach((value, j) => {
      mean[j] += value / sum / logLikelihoods.length;
    });
  }
  return mean;
}
