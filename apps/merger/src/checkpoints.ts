/** Reading and writing the merge service's models: checkpoints ↔ named arrays. */
import { existsSync } from 'node:fs';
import type { artifactPaths, FinetunedMethod } from '@grove/jobs';
import { type ModelConfig, type NamedArrays, parameterShapes } from '@grove/model';
import { saveCheckpoint } from '@grove/store';

export type RunPaths = ReturnType<typeof artifactPaths>;

/** Saves merged weights under `config` (possibly MoE), with what made them in the checkpoint's state. */
export function saveMerged(
  folder: string,
  config: ModelConfig,
  weights: NamedArrays,
  state: Record<string, unknown>,
): void {
  const shapes = parameterShapes(config);
  saveCheckpoint(folder, {
    config: { ...config },
    weights: new Map(
      [...weights].map(([name, data]) => {
        const shape = shapes.get(name);
        if (!shape) throw new Error(`The merged model has a parameter "${name}" its config does not describe.`);
        return [name, { shape, data }];
      }),
    ),
    state: { kind: 'model', ...state },
  });
}

/** The folder of `method`'s fine-tuned MoE, when its fine-tune ran. */
export function finetunedFolder(paths: RunPaths, method: FinetunedMethod): string | undefined {
  const folder = paths.merged(`${method}-finetuned`);
  return existsSync(folder) ? folder : undefined;
}
