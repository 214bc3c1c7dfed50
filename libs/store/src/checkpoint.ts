/**
 * A checkpoint is a folder: `model.safetensors` (weights; the model config in its
 * metadata), optionally `optimizer.safetensors` (optimizer moments) and `state.json`
 * (trainer position: step, schedule, data and RNG state). The folder is written under a
 * temporary name and renamed into place, and `state.json` records the hash of each
 * tensor file, so a checkpoint is either complete and consistent or refused.
 */
import { existsSync, readdirSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { readRequiredFile, writeFileAtomic, writeNewFolder } from './files.js';
import { decodeSafetensors, encodeSafetensors, sha256, type TensorMap } from './safetensors.js';

export const MODEL_FILE = 'model.safetensors';
export const OPTIMIZER_FILE = 'optimizer.safetensors';
export const STATE_FILE = 'state.json';
/** The metadata key under which a model file carries its Grove config as JSON. */
export const CONFIG_METADATA_KEY = 'grove.config';

export interface Checkpoint {
  /** The model's config as JSON (validated by whoever loads it). */
  config: Record<string, unknown>;
  weights: TensorMap;
  optimizer?: TensorMap;
  /** Anything the trainer needs to continue exactly: must be JSON. */
  state?: Record<string, unknown>;
}

export function saveCheckpoint(folder: string, checkpoint: Checkpoint): void {
  const files = encodeCheckpoint(checkpoint);
  if (existsSync(folder)) {
    // The folder may hold other things (a run's checkpoints/): replace our files one by one,
    // state.json last; until it lands, its hashes refuse any mix of old and new files.
    for (const [name, bytes] of files) writeFileAtomic(join(folder, name), bytes);
    if (!checkpoint.optimizer) rmSync(join(folder, OPTIMIZER_FILE), { force: true });
    return;
  }
  writeNewFolder(folder, files);
}

/** The checkpoint's files in write order, state.json (with the others' hashes) last. */
function encodeCheckpoint(checkpoint: Checkpoint): [string, Uint8Array | string][] {
  const files: [string, Uint8Array][] = [
    [
      MODEL_FILE,
      encodeSafetensors(checkpoint.weights, { format: 'pt', [CONFIG_METADATA_KEY]: JSON.stringify(checkpoint.config) }),
    ],
  ];
  if (checkpoint.optimizer) files.push([OPTIMIZER_FILE, encodeSafetensors(checkpoint.optimizer, { format: 'pt' })]);
  const hashes = Object.fromEntries(files.map(([name, bytes]) => [name, sha256(bytes)]));
  const state = { ...(checkpoint.state ?? {}), files: hashes };
  return [...files, [STATE_FILE, `${JSON.stringify(state, null, 2)}\n`]];
}

/** Loads a checkpoint folder, verifying every file; throws one sentence naming what is wrong. */
export function loadCheckpoint(folder: string): Checkpoint {
  if (!existsSync(folder)) throw new Error(`Checkpoint not found: ${folder} does not exist.`);
  const statePath = join(folder, STATE_FILE);
  let state: (Record<string, unknown> & { files?: Record<string, string> }) | undefined;
  if (existsSync(statePath)) {
    try {
      state = JSON.parse(readRequiredFile(statePath, 'Checkpoint state').toString('utf8'));
    } catch {
      throw new Error(`Checkpoint ${folder} has an unreadable ${STATE_FILE}; it was not loaded.`);
    }
  }
  const read = (file: string) => {
    const bytes = readRequiredFile(join(folder, file), 'Checkpoint file');
    const expected = state?.files?.[file];
    if (expected && expected !== sha256(bytes)) {
      throw new Error(
        `Checkpoint file ${join(folder, file)} does not match the hash in ${STATE_FILE}; it was not loaded.`,
      );
    }
    return decodeSafetensors(bytes, join(folder, file));
  };
  const model = read(MODEL_FILE);
  const configJson = model.metadata[CONFIG_METADATA_KEY];
  if (!configJson) throw new Error(`${join(folder, MODEL_FILE)} carries no model config in its metadata.`);
  const hasOptimizer = existsSync(join(folder, OPTIMIZER_FILE));
  if (state?.files?.[OPTIMIZER_FILE] && !hasOptimizer) {
    throw new Error(`Checkpoint ${folder} is missing ${OPTIMIZER_FILE}; it was not loaded.`);
  }
  const { files: _files, ...trainerState } = state ?? {};
  return {
    config: JSON.parse(configJson),
    weights: model.tensors,
    optimizer: hasOptimizer ? read(OPTIMIZER_FILE).tensors : undefined,
    state: state ? trainerState : undefined,
  };
}

const STEP_FOLDER = /^step-(\d+)$/;

/** Saves `checkpoints/step-NNNNNNNN` under `root`, then keeps only the newest `keep`. */
export function saveNumberedCheckpoint(root: string, step: number, checkpoint: Checkpoint, keep = 2): string {
  const folder = join(root, `step-${String(step).padStart(8, '0')}`);
  saveCheckpoint(folder, checkpoint);
  const steps = listNumbered(root);
  for (const old of steps.slice(0, Math.max(0, steps.length - keep)))
    rmSync(join(root, old), { recursive: true, force: true });
  return folder;
}

/** The newest complete numbered checkpoint under `root`, or undefined when there is none. */
export function latestCheckpointFolder(root: string): string | undefined {
  const steps = listNumbered(root);
  return steps.length ? join(root, steps[steps.length - 1]) : undefined;
}

function listNumbered(root: string): string[] {
  if (!existsSync(root)) return [];
  return readdirSync(root)
    .filter((name) => STEP_FOLDER.test(name))
    .sort();
}
