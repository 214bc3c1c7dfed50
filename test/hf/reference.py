"""
An independent PyTorch reading of a Hugging Face LLaMA, Arcee or Mixtral folder, written from the
published modeling definitions of `transformers` (RMSNorm, rotate-half rotary positions, causal
attention, the gated and two-matrix MLPs, Mixtral's softmax -> top-k -> renormalise sparse MoE
block). It reads config.json, tokenizer.json and model.safetensors by their file layouts, with no
transformers, tokenizers or safetensors package, so that it checks the files rather than trusting
a library that reads them.

usage: reference.py MODEL_DIR TEXT_FILE WINDOW LOGITS_OUT

Encodes the text with tokenizer.json, splits the ids into consecutive windows of WINDOW tokens
(a trailing part window is dropped), and writes the logits of every window as little-endian
float32 [windows, WINDOW, vocab] to LOGITS_OUT. Prints {"architecture", "tokens"} as JSON.
"""

import json
import struct
import sys

import torch
import torch.nn.functional as F

SAFETENSORS_DTYPES = {"F32": torch.float32}


def read_safetensors(path):
    """The tensors of a safetensors file: 8-byte little-endian header size, JSON header, raw data."""
    with open(path, "rb") as file:
        blob = file.read()
    (header_size,) = struct.unpack("<Q", blob[:8])
    header = json.loads(blob[8 : 8 + header_size])
    data = blob[8 + header_size :]
    tensors = {}
    for name, entry in header.items():
        if name == "__metadata__":
            continue
        start, end = entry["data_offsets"]
        values = torch.frombuffer(bytearray(data[start:end]), dtype=SAFETENSORS_DTYPES[entry["dtype"]])
        tensors[name] = values.reshape(entry["shape"])
    return header.get("__metadata__", {}), tensors


def byte_stand_ins():
    """The ByteLevel pre-tokenizer's character for each byte (GPT-2): printable Latin-1 bytes are
    themselves; every other byte, in order, takes the next code point from 256 on."""
    printable = set(range(0x21, 0x7F)) | set(range(0xA1, 0xAD)) | set(range(0xAE, 0x100))
    table, spare = {}, 256
    for byte in range(256):
        if byte in printable:
            table[byte] = chr(byte)
        else:
            table[byte] = chr(spare)
            spare += 1
    return table


def encode(tokenizer, text):
    """What tokenizer.json does to `text` when it is a ByteLevel pre-tokenizer over a BPE without merges."""
    model, pre = tokenizer["model"], tokenizer["pre_tokenizer"]
    if model["type"] != "BPE" or model["merges"] or pre["type"] != "ByteLevel" or tokenizer["normalizer"]:
        raise SystemExit("tokenizer.json is not a merge-free byte-level BPE; this reference reads only those")
    if tokenizer["post_processor"] is not None:
        raise SystemExit("tokenizer.json adds tokens around the text; Grove adds none")
    stand_ins = byte_stand_ins()
    return [model["vocab"][stand_ins[byte]] for byte in text.encode("utf-8")]


def expected_shapes(config):
    """Every tensor transformers would load for this config, so none is silently left random."""
    width, ffn, vocab = config["hidden_size"], config["intermediate_size"], config["vocab_size"]
    heads, kv_heads = config["num_attention_heads"], config["num_key_value_heads"]
    head_dim = config.get("head_dim") or width // heads
    shapes = {"model.embed_tokens.weight": [vocab, width], "model.norm.weight": [width], "lm_head.weight": [vocab, width]}
    for layer in range(config["num_hidden_layers"]):
        prefix = f"model.layers.{layer}."
        shapes[prefix + "input_layernorm.weight"] = [width]
        shapes[prefix + "post_attention_layernorm.weight"] = [width]
        shapes[prefix + "self_attn.q_proj.weight"] = [heads * head_dim, width]
        shapes[prefix + "self_attn.k_proj.weight"] = [kv_heads * head_dim, width]
        shapes[prefix + "self_attn.v_proj.weight"] = [kv_heads * head_dim, width]
        shapes[prefix + "self_attn.o_proj.weight"] = [width, heads * head_dim]
        if config["model_type"] == "mixtral":
            shapes[prefix + "block_sparse_moe.gate.weight"] = [config["num_local_experts"], width]
            for expert in range(config["num_local_experts"]):
                block = f"{prefix}block_sparse_moe.experts.{expert}."
                shapes[block + "w1.weight"] = [ffn, width]
                shapes[block + "w3.weight"] = [ffn, width]
                shapes[block + "w2.weight"] = [width, ffn]
        else:
            shapes[prefix + "mlp.up_proj.weight"] = [ffn, width]
            shapes[prefix + "mlp.down_proj.weight"] = [width, ffn]
            if config["model_type"] == "llama":
                shapes[prefix + "mlp.gate_proj.weight"] = [ffn, width]
    return shapes


ACTIVATIONS = {
    "silu": F.silu,
    "quick_gelu": lambda x: x * torch.sigmoid(1.702 * x),
}


def rms_norm(x, weight, eps):
    return weight * (x * torch.rsqrt(x.pow(2).mean(-1, keepdim=True) + eps))


def rotate_half(x):
    half = x.shape[-1] // 2
    return torch.cat((-x[..., half:], x[..., :half]), dim=-1)


def rotary_tables(config, length, head_dim):
    theta = (config.get("rope_parameters") or {}).get("rope_theta", config.get("rope_theta"))
    inverse_frequencies = 1.0 / (theta ** (torch.arange(0, head_dim, 2, dtype=torch.int64).float() / head_dim))
    angles = torch.outer(torch.arange(length).float(), inverse_frequencies)
    table = torch.cat((angles, angles), dim=-1)
    return table.cos(), table.sin()


def attention(x, weights, prefix, config, cos, sin):
    batch, length, width = x.shape
    heads, kv_heads = config["num_attention_heads"], config["num_key_value_heads"]
    head_dim = config.get("head_dim") or width // heads

    def project(name, count):
        return F.linear(x, weights[prefix + name]).view(batch, length, count, head_dim).transpose(1, 2)

    q, k, v = project("q_proj.weight", heads), project("k_proj.weight", kv_heads), project("v_proj.weight", kv_heads)
    q, k = q * cos + rotate_half(q) * sin, k * cos + rotate_half(k) * sin
    k = k.repeat_interleave(heads // kv_heads, dim=1)
    v = v.repeat_interleave(heads // kv_heads, dim=1)
    scores = q @ k.transpose(2, 3) * head_dim**-0.5
    scores = scores + torch.full((length, length), float("-inf")).triu(1)
    mixed = (F.softmax(scores, dim=-1, dtype=torch.float32) @ v).transpose(1, 2).reshape(batch, length, -1)
    return F.linear(mixed, weights[prefix + "o_proj.weight"])


def mlp(x, weights, prefix, config):
    act = ACTIVATIONS[config["hidden_act"]]
    if config["model_type"] == "arcee":
        return F.linear(act(F.linear(x, weights[prefix + "up_proj.weight"])), weights[prefix + "down_proj.weight"])
    gated = act(F.linear(x, weights[prefix + "gate_proj.weight"])) * F.linear(x, weights[prefix + "up_proj.weight"])
    return F.linear(gated, weights[prefix + "down_proj.weight"])


def sparse_moe(x, weights, prefix, config):
    """Mixtral's block: softmax over all experts, keep the top k, renormalise their weights."""
    batch, length, width = x.shape
    rows = x.reshape(-1, width)
    act = ACTIVATIONS[config["hidden_act"]]
    probabilities = F.softmax(F.linear(rows, weights[prefix + "gate.weight"]), dim=1, dtype=torch.float)
    top, chosen = torch.topk(probabilities, config["num_experts_per_tok"], dim=-1)
    top = top / top.sum(dim=-1, keepdim=True)
    output = torch.zeros_like(rows)
    for expert in range(config["num_local_experts"]):
        row, slot = torch.where(chosen == expert)
        if row.numel() == 0:
            continue
        block = f"{prefix}experts.{expert}."
        h = rows[row]
        y = F.linear(act(F.linear(h, weights[block + "w1.weight"])) * F.linear(h, weights[block + "w3.weight"]),
                     weights[block + "w2.weight"])
        output.index_add_(0, row, y * top[row, slot, None])
    return output.reshape(batch, length, width)


# Fields transformers 5 declares as float in its strict configs: an integer there (0, not 0.0) is refused.
FLOAT_FIELDS = ["initializer_range", "rms_norm_eps", "router_aux_loss_coef", "router_jitter_noise"]


def check_config(config):
    """Settings this reference does not implement must be at the values Grove exports."""
    for field in FLOAT_FIELDS:
        if field in config and not isinstance(config[field], float):
            raise SystemExit(f"config.json field {field} is {config[field]!r}; the library's config requires a float")
    for field, neutral in [("tie_word_embeddings", False), ("attention_bias", False), ("mlp_bias", False),
                           ("rope_scaling", None), ("sliding_window", None)]:
        if config.get(field, neutral) != neutral:
            raise SystemExit(f"config.json sets {field}={config[field]!r}; this reference implements only {neutral!r}")
    if config["model_type"] not in ("llama", "arcee", "mixtral"):
        raise SystemExit(f"unsupported model_type {config['model_type']!r}")


def logits(config, weights, ids):
    batch, length = ids.shape
    width, heads = config["hidden_size"], config["num_attention_heads"]
    eps = config["rms_norm_eps"]
    cos, sin = rotary_tables(config, length, config.get("head_dim") or width // heads)
    x = weights["model.embed_tokens.weight"][ids]
    for layer in range(config["num_hidden_layers"]):
        prefix = f"model.layers.{layer}."
        h = rms_norm(x, weights[prefix + "input_layernorm.weight"], eps)
        x = x + attention(h, weights, prefix + "self_attn.", config, cos, sin)
        h = rms_norm(x, weights[prefix + "post_attention_layernorm.weight"], eps)
        if config["model_type"] == "mixtral":
            x = x + sparse_moe(h, weights, prefix + "block_sparse_moe.", config)
        else:
            x = x + mlp(h, weights, prefix + "mlp.", config)
    return F.linear(rms_norm(x, weights["model.norm.weight"], eps), weights["lm_head.weight"])


def main(model_dir, text_file, window, logits_out):
    with open(f"{model_dir}/config.json") as file:
        config = json.load(file)
    with open(f"{model_dir}/tokenizer.json") as file:
        tokenizer = json.load(file)
    check_config(config)
    _, weights = read_safetensors(f"{model_dir}/model.safetensors")
    shapes = {name: list(tensor.shape) for name, tensor in weights.items()}
    if shapes != expected_shapes(config):
        raise SystemExit(f"model.safetensors does not hold exactly the tensors {config['architectures'][0]} loads")
    with open(text_file, encoding="utf-8") as file:
        tokens = encode(tokenizer, file.read())
    windows = len(tokens) // window
    ids = torch.tensor(tokens[: windows * window], dtype=torch.int64).reshape(windows, window)
    with torch.no_grad():
        output = logits(config, weights, ids)
    with open(logits_out, "wb") as file:
        file.write(output.contiguous().numpy().astype("<f4").tobytes())
    print(json.dumps({"architecture": config["architectures"][0], "tokens": ids.reshape(-1).tolist()}))


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2], int(sys.argv[3]), sys.argv[4])
