/**
 * Reads a Hugging Face folder of a LLaMA, Arcee or Mixtral model back into a Grove checkpoint.
 * The weights return to Grove's names and [in, out] layouts bit for bit; the config comes from
 * config.json, completed by the Grove config an export keeps in the weights file's metadata.
 */
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { type ModelConfig, validateModelConfig } from '@grove/model';
import {
  type Checkpoint,
  CONFIG_METADATA_KEY,
  decodeSafetensors,
  readRequiredFile,
  type TensorMap,
} from '@grove/store';
import { HF_CONFIG_FILE, HF_MODEL_FILE, HF_TOKENIZER_FILE } from './export.js';
import { modelConfigFromHf } from './hf-config.js';
import { hfShape, tensorPlacements, transpose } from './tensor-names.js';
import { isByteTokenizer } from './tokenizer-files.js';

export function importHuggingFace(folder: string): Checkpoint {
  const hfConfig = readJson(join(folder, HF_CONFIG_FILE), 'Model config');
  const tokenizerPath = join(folder, HF_TOKENIZER_FILE);
  if (existsSync(tokenizerPath) && !isByteTokenizer(readJson(tokenizerPath, 'Tokenizer'))) {
    throw new Error(
      `${tokenizerPath} is not a byte-level tokenizer with each byte its own id; Grove models read raw bytes, so this model cannot be imported.`,
    );
  }
  const modelPath = join(folder, HF_MODEL_FILE);
  if (!existsSync(modelPath) && existsSync(`${modelPath}.index.json`))
    throw new Error(`${folder} holds a sharded model; Grove imports a single ${HF_MODEL_FILE}.`);
  const { tensors, metadata } = decodeSafetensors(readRequiredFile(modelPath, 'Model file'), modelPath);
  const config = completeConfig(modelConfigFromHf(hfConfig), metadata[CONFIG_METADATA_KEY]);
  return { config: config as unknown as Record<string, unknown>, weights: groveWeights(tensors, config) };
}

function readJson(path: string, what: string): Record<string, unknown> {
  const text = readRequiredFile(path, what).toString('utf8');
  try {
    const value = JSON.parse(text);
    if (typeof value === 'object' && value !== null && !Array.isArray(value)) return value;
  } catch {}
  throw new Error(`${path} is not a JSON object; it was not imported.`);
}

/** Settings config.json has no place for: `modelConfigFromHf` can only guess them. */
const TRAINING_ONLY = ['moe.training', 'moe.threshold'];

/**
 * The Grove config an export recorded, when it agrees with every field config.json describes
 * (it adds moe.training and moe.threshold, which config.json has no place for); else `described`.
 */
function completeConfig(described: ModelConfig, recordedJson: string | undefined): ModelConfig {
  if (recordedJson === undefined) return described;
  let recorded: ModelConfig;
  try {
    recorded = JSON.parse(recordedJson);
  } catch {
    throw new Error(`The Grove config in ${HF_MODEL_FILE}'s metadata is not JSON; it was not imported.`);
  }
  const mismatch = (field: string, described: unknown, recordedValue: unknown) =>
    new Error(
      `${HF_CONFIG_FILE} gives ${field} as ${JSON.stringify(described)} but the Grove config in ${HF_MODEL_FILE} says ${JSON.stringify(recordedValue)}; one of them was edited, so the model was not imported.`,
    );
  if (Boolean(recorded?.moe) !== Boolean(described.moe)) throw mismatch('moe', described.moe, recorded?.moe);
  for (const [path, value] of leaves(described)) {
    if (TRAINING_ONLY.includes(path.join('.'))) continue;
    const recordedValue = path.reduce<unknown>((node, key) => (node as Record<string, unknown>)?.[key], recorded);
    if (recordedValue !== value) throw mismatch(path.join('.'), value, recordedValue);
  }
  return validateModelConfig(recorded);
}

function leaves(node: object, path: string[] = []): [string[], unknown][] {
  return Object.entries(node).flatMap(([key, value]) =>
    typeof value === 'object' && value !== null ? leaves(value, [...path, key]) : [[[...path, key], value]],
  );
}

/** Grove's weights, in its stable order; every tensor the file holds must be one of them. */
function groveWeights(tensors: TensorMap, config: ModelConfig): TensorMap {
  const weights: TensorMap = new Map();
  const placements = tensorPlacements(config);
  for (const placement of placements) {
    const tensor = tensors.get(placement.hfName);
    const expected = hfShape(placement);
    if (!tensor || tensor.shape.join() !== expected.join()) {
      throw new Error(
        `${HF_MODEL_FILE} has ${tensor ? `"${placement.hfName}" shaped [${tensor.shape}]` : `no "${placement.hfName}"`}; ${HF_CONFIG_FILE} needs it shaped [${expected}].`,
      );
    }
    weights.set(placement.groveName, placement.transposed ? transpose(tensor) : tensor);
  }
  const known = new Set(placements.map((placement) => placement.hfName));
  const unknown = [...tensors.keys()].find((name) => !known.has(name));
  if (unknown)
    throw new Error(
      `${HF_MODEL_FILE} holds "${unknown}", which Grove's ${config.moe ? 'MoE' : 'dense'} model has no place for; it was not imported.`,
    );
  return weights;
}
