export * from './backend.js';
export * from './config.js';
export * from './generate.js';
export { chooseExperts, RoutingStats } from './moe.js';
export {
  type AdamWStep,
  causalMask,
  causalSelfAttention,
  fusedAdamWStep,
  gelu,
  rmsNorm,
  silu,
  softmaxCrossEntropy,
} from './ops.js';
export * from './random.js';
export * from './tokenizer.js';
export * from './transformer.js';
