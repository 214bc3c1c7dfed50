/**
 * Branch-Train-MiX assembly (Sukhbaatar et al. 2024): the experts' feed-forward blocks become the
 * experts of a Mixture-of-Experts layer in every layer; every other parameter (attention, norms,
 * embeddings, head) is averaged. A router per layer starts random, or (like mergekit-moe's
 * `hidden` gate mode) points each expert's column at its domain's mean hidden state.
 */
import { feedForwardShapes, type ModelConfig, Rng } from '@grove/model';
import { uniformWeights, weightedAverage } from '../average.js';
import { checkShapes, type NamedArrays } from '../shapes.js';

export interface BtxOptions {
  /** Experts each token runs through. */
  topK: number;
  /** Keep the seed's feed-forward blocks as one more expert (the last). */
  keepSeed: boolean;
  router: 'random' | 'hidden';
  /**
   * For `hidden`: [layer][expert] mean normalised feed-forward input of each expert's domain (the
   * seed's last, when kept), e.g. from TransformerLM.feedForwardInputMeans.
   */
  hiddenMeans?: Float32Array[][];
  /** Weight of the switch load-balancing loss when the MoE trains. */
  balanceCoefficient: number;
  /** Seeds the random router. */
  seed: number;
}

const ROUTER_INIT_STD = 0.02;
/** A hidden-state router gives a token of expert i's domain a logit this much above the average column. */
const HIDDEN_ROUTER_MARGIN = 2;

export function assembleBtx(
  config: ModelConfig,
  seed: NamedArrays,
  experts: NamedArrays[],
  options: BtxOptions,
): { config: ModelConfig; weights: NamedArrays } {
  if (config.moe) throw new Error('BTX assembles dense experts; these are already a Mixture-of-Experts.');
  checkShapes(seed, experts);
  const sources = options.keepSeed ? [...experts, seed] : experts;
  const count = sources.length;
  if (!Number.isInteger(options.topK) || options.topK < 1 || options.topK > count) {
    throw new Error(`BTX top-k must be an integer from 1 to the number of experts (${count}); got ${options.topK}.`);
  }
  const moeConfig: ModelConfig = {
    ...config,
    moe: {
      experts: count,
      topK: options.topK,
      training: 'sparse',
      threshold: 0,
      balanceCoefficient: options.balanceCoefficient,
    },
  };
  const matrices = feedForwardShapes(config).map(([matrix]) => matrix);
  const isExpertBlock = (name: string) =>
    matrices.some((matrix) => new RegExp(`^layers\\.\\d+\\.ffn\\.${matrix}\\.weight$`).test(name));

  const shared = (model: NamedArrays) => new Map([...model].filter(([name]) => !isExpertBlock(name)));
  const weights = weightedAverage(sources.map(shared), uniformWeights(count));
  const rng = new Rng(options.seed).fork('btx-router');
  for (let layer = 0; layer < config.layers; layer++) {
    sources.forEach((source, expert) => {
      for (const matrix of matrices) {
        weights.set(
          `layers.${layer}.ffn.experts.${expert}.${matrix}.weight`,
          source.get(`layers.${layer}.ffn.${matrix}.weight`) as Float32Array,
        );
      }
    });
    weights.set(
      `layers.${layer}.ffn.router.weight`,
      options.router === 'hidden'
        ? hiddenRouter(options.hiddenMeans?.[layer], config.width, count, layer)
        : Float32Array.from({ length: config.width * count }, () => rng.normal() * ROUTER_INIT_STD),
    );
  }
  return { config: moeConfig, weights };
}

/**
 * Column i = margin · (μ_i − μ̄) / ‖μ_i − μ̄‖²: a token at its domain's mean scores `margin` above
 * the mean score. Centring removes what every domain shares, which would otherwise dominate.
 */
function hiddenRouter(means: Float32Array[] | undefined, width: number, experts: number, layer: number): Float32Array {
  if (!means || means.length !== experts || means.some((mean) => mean.length !== width)) {
    throw new Error(`The hidden-state router needs one mean of width ${width} per expert for layer ${layer}.`);
  }
  const centre = new Float32Array(width);
  for (const mean of means) for (let i = 0; i < width; i++) centre[i] += mean[i] / experts;
  const router = new Float32Array(width * experts);
  means.forEach((mean, expert) => {
    const direction = mean.map((value, i) => value - centre[i]);
    const squaredNorm = direction.reduce((sum, value) => sum + value * value, 0) || 1;
    for (let i = 0; i < width; i++) router[i * experts + expert] = (HIDDEN_ROUTER_MARGIN * direction[i]) / squaredNorm;
  });
  return router;
}
