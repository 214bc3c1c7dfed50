/**
 * How an ensemble weighs its experts at each position. BTM compares the uniform ensemble (every
 * expert 1/k everywhere) with the posterior one (p(D=j | x_<t) by Bayes' rule), which can also
 * keep only its likeliest experts.
 */

export interface EnsembleMixture {
  /** The eval row is `ensemble:<name>`. */
  name: string;
  /** The experts' weights at one position, from the log posterior given the context so far (unnormalised). */
  weights(logPosterior: number[]): number[];
}

export function softmax(scores: number[]): number[] {
  const top = Math.max(...scores);
  const exps = scores.map((s) => Math.exp(s - top));
  const sum = exps.reduce((a, b) => a + b, 0);
  return exps.map((e) => e / sum);
}

export const uniformMixture: EnsembleMixture = {
  name: 'uniform',
  weights: (logPosterior) => logPosterior.map(() => 1 / logPosterior.length),
};

export const posteriorMixture: EnsembleMixture = { name: 'posterior', weights: softmax };

/** The posterior renormalised over its `k` likeliest experts. */
export function posteriorTopK(k: number): EnsembleMixture {
  return {
    name: `posterior-top${k}`,
    weights: (logPosterior) => {
      const posterior = softmax(logPosterior);
      const chosen = new Set(
        posterior
          .map((value, index) => [value, index] as const)
          .sort((a, b) => b[0] - a[0])
          .slice(0, k)
          .map(([, index]) => index),
      );
      const mass = posterior.reduce((sum, value, j) => sum + (chosen.has(j) ? value : 0), 0);
      return posterior.map((value, j) => (chosen.has(j) ? value / mass : 0));
    },
  };
}

/** The rows the `ensemble` method adds to the eval table, in order. */
export const ENSEMBLE_MIXTURES: EnsembleMixture[] = [uniformMixture, posteriorMixture, posteriorTopK(1)];
