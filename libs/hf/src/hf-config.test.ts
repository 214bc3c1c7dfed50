import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { type ModelConfig, presetConfig } from '@grove/model';
import { architectureFor, hfConfigText, modelConfigFromHf, toHfConfig } from './hf-config.js';

const dense: ModelConfig = { ...presetConfig('tiny'), activation: 'swiglu' };
const moe = { experts: 4, topK: 2, training: 'sparse' as const, threshold: 0, balanceCoefficient: 0.01 };

describe('Hugging Face config', () => {
  it('maps SwiGLU onto LLaMA, GELU onto Arcee and top-k MoE onto Mixtral', () => {
    assert.equal(architectureFor(dense), 'LlamaForCausalLM');
    assert.equal(architectureFor({ ...dense, activation: 'gelu' }), 'ArceeForCausalLM');
    assert.equal(architectureFor({ ...dense, moe }), 'MixtralForCausalLM');
    // Dense-trained (DS-MoE) models routed top-k at inference are Mixtral too.
    assert.equal(architectureFor({ ...dense, moe: { ...moe, training: 'dense' } }), 'MixtralForCausalLM');
  });

  it('writes the fields that make the library compute as Grove does', () => {
    const hf = toHfConfig({ ...dense, activation: 'gelu' });
    assert.equal(hf.model_type, 'arcee');
    assert.equal(hf.hidden_act, 'quick_gelu');
    assert.equal(hf.max_position_embeddings, dense.contextLength);
    assert.equal(hf.rms_norm_eps, dense.normEpsilon);
    assert.equal(hf.num_key_value_heads, dense.heads);
    assert.equal(hf.tie_word_embeddings, false);
    assert.equal(hf.rope_theta, 10_000);
    assert.deepEqual([hf.bos_token_id, hf.eos_token_id, hf.pad_token_id], [256, 257, 258]);
    const mixtral = toHfConfig({ ...dense, moe });
    assert.deepEqual([mixtral.num_local_experts, mixtral.num_experts_per_tok, mixtral.hidden_act], [4, 2, 'silu']);
    assert.equal(mixtral.sliding_window, null);
  });

  it('writes whole-numbered float fields with a decimal point, as the library’s strict configs need', () => {
    const text = hfConfigText(toHfConfig({ ...dense, normEpsilon: 1, moe: { ...moe, balanceCoefficient: 0 } }));
    assert.match(text, /^ {2}"router_aux_loss_coef": 0\.0,$/m);
    assert.match(text, /^ {2}"router_jitter_noise": 0\.0,$/m);
    assert.match(text, /^ {2}"rms_norm_eps": 1\.0,$/m);
    assert.match(text, /^ {2}"num_local_experts": 4,$/m);
    assert.equal(JSON.parse(text).router_aux_loss_coef, 0);
  });

  it('reads back the config it writes', () => {
    for (const config of [dense, { ...dense, activation: 'gelu' as const }, { ...dense, moe }])
      assert.deepEqual(modelConfigFromHf(toHfConfig(config)), config);
  });

  it('refuses models with no exact counterpart, naming the reason and the fix', () => {
    assert.throws(
      () => architectureFor({ ...dense, positions: 'learned' }),
      /rotary positions only; train with model\.positions "rotary"\./,
    );
    assert.throws(
      () => architectureFor({ ...dense, activation: 'gelu', moe }),
      /Mixtral’s experts are gated.*train with model\.activation "swiglu"\./,
    );
    assert.throws(
      () => architectureFor({ ...dense, moe: { ...moe, training: 'dense', threshold: 0.2 } }),
      /Threshold routing \(moe\.threshold 0\.2\).*set moe\.threshold to 0 to route the top 2/,
    );
    assert.throws(() => architectureFor({ ...dense, vocabSize: 256 }), /needs 260 token ids.*model\.vocabSize 260/);
  });

  it('refuses config.json settings Grove cannot compute, naming the field', () => {
    const hf = toHfConfig(dense);
    const refusals: [Record<string, unknown>, RegExp][] = [
      [
        { architectures: ['GPTNeoXForCausalLM'] },
        /names architecture "GPTNeoXForCausalLM"; Grove imports LlamaForCausalLM/,
      ],
      [{ tie_word_embeddings: true }, /"tie_word_embeddings" to true, which means an output head tied/],
      [{ attention_bias: true }, /"attention_bias" to true, which means attention biases/],
      [{ num_key_value_heads: 2 }, /"num_key_value_heads" to 2, which means grouped-query attention/],
      [
        { hidden_act: 'gelu' },
        /"hidden_act" to "gelu", which means LlamaForCausalLM with an activation other than silu/,
      ],
      [
        { rope_theta: 500_000, rope_parameters: undefined },
        /"rope_theta" to 500000, which means a rotary base other than 10000/,
      ],
      [{ rope_scaling: { type: 'linear', factor: 2 } }, /"rope_scaling".*scaled rotary positions/],
      [{ hidden_size: 0 }, /"hidden_size" must be a positive integer; got 0/],
      [{ rms_norm_eps: 'small' }, /"rms_norm_eps" must be a positive number/],
    ];
    for (const [change, message] of refusals) assert.throws(() => modelConfigFromHf({ ...hf, ...change }), message);
    // A Mixtral config that leaves rope_theta out means the library's default base, 10⁶.
    const { rope_theta: _theta, rope_parameters: _parameters, ...mixtral } = toHfConfig({ ...dense, moe });
    assert.throws(() => modelConfigFromHf(mixtral), /"rope_theta" to 1000000/);
  });
});
