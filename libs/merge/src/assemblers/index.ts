/**
 * Methods that assemble the experts into one Mixture-of-Experts instead of merging them into a
 * dense model. BTX and DS-MoE build the same MoE (assemble); they differ in how it then trains
 * and runs, which the run spec's `merge.btx` and `merge.dsMoe` describe.
 */
import { assembleBtx } from './moe.js';

export interface MoeAssembler {
  name: 'btx' | 'ds-moe';
  description: string;
  assemble: typeof assembleBtx;
}

export const MOE_ASSEMBLERS: readonly MoeAssembler[] = [
  {
    name: 'btx',
    description:
      "BTX: the experts' feed-forward blocks as the experts of a Mixture-of-Experts, the rest averaged, then a router fine-tune",
    assemble: assembleBtx,
  },
  {
    name: 'ds-moe',
    description:
      'DS-MoE: the same assembly trained densely (every expert on every token), run sparsely (top-k or threshold)',
    assemble: assembleBtx,
  },
];

export { assembleBtx, type BtxOptions } from './moe.js';
