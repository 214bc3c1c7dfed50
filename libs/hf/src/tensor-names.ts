/**
 * Where each Grove parameter lives in a Hugging Face checkpoint (LLaMA, Arcee and Mixtral share
 * these names; Mixtral's are those its published checkpoints use). Grove stores matrices
 * [in, out] so every product is x · W; nn.Linear holds [out, in], so matrices are transposed.
 */
import { type ModelConfig, parameterShapes } from '@grove/model';
import type { Tensor } from '@grove/store';

export interface TensorPlacement {
  groveName: string;
  hfName: string;
  /** Grove's shape. */
  shape: number[];
  /** Stored transposed ([out, in]) in the Hugging Face file. */
  transposed: boolean;
}

const LAYER = String.raw`^layers\.(\d+)\.`;
const PLACEMENTS: [pattern: RegExp, hfName: string, transposed: boolean][] = [
  [/^embed\.tokens\.weight$/, 'model.embed_tokens.weight', false],
  [new RegExp(`${LAYER}attention\\.norm\\.weight$`), 'model.layers.$1.input_layernorm.weight', false],
  [new RegExp(`${LAYER}attention\\.query\\.weight$`), 'model.layers.$1.self_attn.q_proj.weight', true],
  [new RegExp(`${LAYER}attention\\.key\\.weight$`), 'model.layers.$1.self_attn.k_proj.weight', true],
  [new RegExp(`${LAYER}attention\\.value\\.weight$`), 'model.layers.$1.self_attn.v_proj.weight', true],
  [new RegExp(`${LAYER}attention\\.out\\.weight$`), 'model.layers.$1.self_attn.o_proj.weight', true],
  [new RegExp(`${LAYER}ffn\\.norm\\.weight$`), 'model.layers.$1.post_attention_layernorm.weight', false],
  [new RegExp(`${LAYER}ffn\\.(gate|up|down)\\.weight$`), 'model.layers.$1.mlp.$2_proj.weight', true],
  [new RegExp(`${LAYER}ffn\\.router\\.weight$`), 'model.layers.$1.block_sparse_moe.gate.weight', true],
  // Mixtral's expert: w2(silu(w1·x) ⊙ w3·x).
  [
    new RegExp(`${LAYER}ffn\\.experts\\.(\\d+)\\.gate\\.weight$`),
    'model.layers.$1.block_sparse_moe.experts.$2.w1.weight',
    true,
  ],
  [
    new RegExp(`${LAYER}ffn\\.experts\\.(\\d+)\\.up\\.weight$`),
    'model.layers.$1.block_sparse_moe.experts.$2.w3.weight',
    true,
  ],
  [
    new RegExp(`${LAYER}ffn\\.experts\\.(\\d+)\\.down\\.weight$`),
    'model.layers.$1.block_sparse_moe.experts.$2.w2.weight',
    true,
  ],
  [/^norm\.weight$/, 'model.norm.weight', false],
  [/^head\.weight$/, 'lm_head.weight', true],
];

/** Every parameter of `config`, in Grove's stable order, with its place in a Hugging Face checkpoint. */
export function tensorPlacements(config: ModelConfig): TensorPlacement[] {
  return [...parameterShapes(config)].map(([groveName, shape]) => {
    const placement = PLACEMENTS.find(([pattern]) => pattern.test(groveName));
    if (!placement) throw new Error(`Parameter "${groveName}" has no place in a Hugging Face checkpoint.`);
    const [pattern, hfName, transposed] = placement;
    return { groveName, hfName: groveName.replace(pattern, hfName), shape, transposed };
  });
}

/** The shape a placement has in the Hugging Face file. */
export function hfShape(placement: TensorPlacement): number[] {
  return placement.transposed ? [...placement.shape].reverse() : placement.shape;
}

/** A matrix [rows, cols] as [cols, rows]; transposing twice gives back the same bits. */
export function transpose(tensor: Tensor): Tensor {
  const [rows, cols] = tensor.shape;
  const data = new Float32Array(tensor.data.length);
  for (let row = 0; row < rows; row++)
    for (let col = 0; col < cols; col++) data[col * rows + row] = tensor.data[row * cols + col];
  return { shape: [cols, rows], data };
}
