/**
 * Writes a Grove model as a folder `transformers` loads with AutoModelForCausalLM.from_pretrained:
 * config.json, model.safetensors (the library's tensor names and [out, in] layouts),
 * generation_config.json and the byte tokenizer. The file's metadata keeps the Grove config, so
 * an import restores the training-only settings config.json has no place for.
 */
import { type ModelConfig, validateModelConfig } from '@grove/model';
import {
  type Checkpoint,
  CONFIG_METADATA_KEY,
  encodeSafetensors,
  refuseOccupiedFolder,
  type TensorMap,
  writeNewFolder,
} from '@grove/store';
import { type Architecture, architectureFor, generationConfig, hfConfigText, toHfConfig } from './hf-config.js';
import { tensorPlacements, transpose } from './tensor-names.js';
import { specialTokensMap, tokenizerConfig, tokenizerJson } from './tokenizer-files.js';

export const HF_MODEL_FILE = 'model.safetensors';
export const HF_CONFIG_FILE = 'config.json';
export const HF_TOKENIZER_FILE = 'tokenizer.json';

/** Creates `folder` (which must not exist, or be empty) and returns the architecture written. */
export function exportHuggingFace(checkpoint: Checkpoint, folder: string): Architecture {
  const config = validateModelConfig(checkpoint.config as unknown as ModelConfig);
  const hfConfig = toHfConfig(config);
  refuseOccupiedFolder(folder);
  const tensors: TensorMap = new Map();
  for (const placement of tensorPlacements(config)) {
    const tensor = checkpoint.weights.get(placement.groveName);
    if (!tensor || tensor.shape.join() !== placement.shape.join()) {
      throw new Error(
        `The checkpoint's parameter "${placement.groveName}" is ${tensor ? `shaped [${tensor.shape}]` : 'missing'}; its config needs [${placement.shape}].`,
      );
    }
    tensors.set(placement.hfName, placement.transposed ? transpose(tensor) : tensor);
  }
  const json = (value: unknown) => `${JSON.stringify(value, null, 2)}\n`;
  writeNewFolder(folder, [
    [HF_CONFIG_FILE, hfConfigText(hfConfig)],
    ['generation_config.json', json(generationConfig(config))],
    [
      HF_MODEL_FILE,
      encodeSafetensors(tensors, { format: 'pt', [CONFIG_METADATA_KEY]: JSON.stringify(checkpoint.config) }),
    ],
    [HF_TOKENIZER_FILE, json(tokenizerJson())],
    ['tokenizer_config.json', json(tokenizerConfig(config))],
    ['special_tokens_map.json', json(specialTokensMap())],
  ]);
  return architectureFor(config);
}
