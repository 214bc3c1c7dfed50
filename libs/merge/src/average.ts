/** Parameter averaging: θ = Σ_j w_j θ_j over models that share every parameter name and size. */

export type NamedArrays = Map<string, Float32Array>;

export function weightedAverage(models: NamedArrays[], weights: number[]): NamedArrays {
  if (models.length === 0) throw new Error('Averaging needs at least one model.');
  if (weights.length !== models.length) throw new Error(`Got ${weights.length} weights for ${models.length} models.`);
  const total = weights.reduce((a, b) => a + b, 0);
  if (!(total > 0) || weights.some((w) => w < 0))
    throw new Error('Averaging weights must be non-negative with a positive sum.');
  const [first] = models;
  const average: NamedArrays = new Map();
  for (const [name, values] of first) {
    const sum = new Float32Array(values.length);
    models.forEach((model, index) => {
      const other = model.get(name);
      if (!other)
        throw new Error(`Model ${index} has no parameter "${name}"; only models of one shape can be averaged.`);
      if (other.length !== values.length) {
        throw new Error(
          `Parameter "${name}" has ${other.length} values in model ${index} but ${values.length} in model 0.`,
        );
      }
      const weight = weights[index] / total;
      for (let i = 0; i < sum.length; i++) sum[i] += weight * other[i];
    });
    average.set(name, sum);
  }
  models.forEach((model, index) => {
    if (model.size !== first.size)
      throw new Error(`Model ${index} has ${model.size} parameters, model 0 has ${first.size}.`);
  });
  return average;
}

export const uniformWeights = (count: number): number[] => Array(count).fill(1 / count);
