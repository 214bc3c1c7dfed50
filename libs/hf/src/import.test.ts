import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, renameSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { type ModelConfig, parameterShapes, presetConfig, Rng } from '@grove/model';
import { type Checkpoint, CONFIG_METADATA_KEY, decodeSafetensors, encodeSafetensors } from '@grove/store';
import { exportHuggingFace } from './export.js';
import { importHuggingFace } from './import.js';

const config: ModelConfig = {
  ...presetConfig('tiny'),
  layers: 2,
  width: 16,
  heads: 2,
  ffnWidth: 32,
  activation: 'swiglu',
  moe: { experts: 3, topK: 2, training: 'dense', threshold: 0, balanceCoefficient: 0.02 },
};

function randomCheckpoint(modelConfig: ModelConfig): Checkpoint {
  const rng = new Rng(7);
  const weights = new Map(
    [...parameterShapes(modelConfig)].map(([name, shape]) => [
      name,
      { shape, data: Float32Array.from({ length: shape.reduce((a, b) => a * b, 1) }, () => rng.normal()) },
    ]),
  );
  return { config: modelConfig as unknown as Record<string, unknown>, weights };
}

const exported = (checkpoint = randomCheckpoint(config)) => {
  const folder = join(mkdtempSync(join(tmpdir(), 'grove-hf-')), 'model');
  exportHuggingFace(checkpoint, folder);
  return folder;
};

describe('Hugging Face import', () => {
  it('gives back the exported weights bit for bit and the config with its training-only settings', () => {
    const checkpoint = randomCheckpoint(config);
    const imported = importHuggingFace(exported(checkpoint));
    assert.deepEqual(imported.config, checkpoint.config);
    assert.deepEqual(imported.weights, checkpoint.weights);
  });

  it('stores matrices [out, in] under the library’s names', () => {
    const checkpoint = randomCheckpoint(config);
    const folder = exported(checkpoint);
    const { tensors } = decodeSafetensors(readFileSync(join(folder, 'model.safetensors')));
    const query = checkpoint.weights.get('layers.0.attention.query.weight')?.data as Float32Array;
    const qProj = tensors.get('model.layers.0.self_attn.q_proj.weight');
    // Grove's W[in=1][out=0] is nn.Linear's weight[out=0][in=1].
    assert.equal(qProj?.data[1], query[1 * 16 + 0]);
    assert.deepEqual(tensors.get('model.layers.1.block_sparse_moe.gate.weight')?.shape, [3, 16]);
    assert.deepEqual(tensors.get('model.layers.1.block_sparse_moe.experts.2.w2.weight')?.shape, [16, 32]);
    assert.deepEqual(tensors.get('lm_head.weight')?.shape, [260, 16]);
  });

  it('without Grove metadata, reads the model from config.json as sparse top-k', () => {
    const folder = exported();
    const path = join(folder, 'model.safetensors');
    const { tensors } = decodeSafetensors(readFileSync(path));
    writeFileSync(path, encodeSafetensors(tensors, { format: 'pt' }));
    assert.deepEqual(importHuggingFace(folder).config, { ...config, moe: { ...config.moe, training: 'sparse' } });
  });

  it('refuses what it cannot import, in one sentence', () => {
    const edit = (change: (folder: string) => void, message: RegExp) => {
      const folder = exported();
      change(folder);
      assert.throws(() => importHuggingFace(folder), message);
    };
    const editJson = (file: string, change: (json: Record<string, unknown>) => void) => (folder: string) => {
      const json = JSON.parse(readFileSync(join(folder, file), 'utf8'));
      change(json);
      writeFileSync(join(folder, file), JSON.stringify(json));
    };
    const rewriteTensors = (change: (tensors: ReturnType<typeof decodeSafetensors>) => void) => (folder: string) => {
      const path = join(folder, 'model.safetensors');
      const decoded = decodeSafetensors(readFileSync(path));
      change(decoded);
      writeFileSync(path, encodeSafetensors(decoded.tensors, decoded.metadata));
    };
    edit(
      editJson('config.json', (json) => {
        json.num_experts_per_tok = 1;
      }),
      /config\.json gives moe\.topK as 1 but the Grove config in model\.safetensors says 2; one of them was edited/,
    );
    edit(
      rewriteTensors(({ tensors }) => tensors.delete('model.layers.1.self_attn.k_proj.weight')),
      /model\.safetensors has no "model\.layers\.1\.self_attn\.k_proj\.weight"; config\.json needs it shaped \[16,16\]\./,
    );
    edit(
      rewriteTensors(({ tensors }) =>
        tensors.set('model.layers.0.self_attn.q_proj.bias', { shape: [16], data: new Float32Array(16) }),
      ),
      /holds "model\.layers\.0\.self_attn\.q_proj\.bias", which Grove's MoE model has no place for/,
    );
    edit(
      editJson('tokenizer.json', (json) => {
        (json.model as { vocab: Record<string, number> }).vocab.A = 1000;
      }),
      /tokenizer\.json is not a byte-level tokenizer with each byte its own id/,
    );
    edit(
      (folder) => writeFileSync(join(folder, 'config.json'), '{"architectures": '),
      /config\.json is not a JSON object/,
    );
    edit(
      (folder) => renameSync(join(folder, 'model.safetensors'), join(folder, 'model.safetensors.index.json')),
      /holds a sharded model; Grove imports a single model\.safetensors\./,
    );
    edit(
      rewriteTensors(({ metadata }) => {
        metadata[CONFIG_METADATA_KEY] = '{';
      }),
      /The Grove config in model\.safetensors's metadata is not JSON/,
    );
  });

  it('refuses to export into a folder that holds anything', () => {
    const folder = exported();
    assert.throws(
      () => exportHuggingFace(randomCheckpoint(config), folder),
      /already exists and is not empty; choose a new output folder\./,
    );
  });
});
