"""
Loads an exported folder with the real `transformers` library, where it is installed (it is not
a dependency of the project and CI does not run this), and checks it against reference.py, which
the hf-export test ties to Grove's own logits: from_pretrained must find every tensor and no
other, AutoTokenizer must encode text to its UTF-8 bytes and decode it back, and the logits of
the eager and SDPA attention must match the reference.

usage: python transformers_check.py MODEL_DIR TEXT_FILE WINDOW
"""

import json
import sys

import torch
from transformers import AutoModelForCausalLM, AutoTokenizer

sys.dont_write_bytecode = True  # leave no __pycache__ beside the sources
import reference  # noqa: E402


def main(model_dir, text_file, window):
    with open(text_file, encoding="utf-8") as file:
        text = file.read()
    tokenizer = AutoTokenizer.from_pretrained(model_dir)
    ids = tokenizer(text)["input_ids"]
    if ids != list(text.encode("utf-8")) or tokenizer.decode(ids) != text:
        raise SystemExit("AutoTokenizer does not encode the text to its bytes and back")
    with open(f"{model_dir}/config.json") as file:
        config = json.load(file)
    _, weights = reference.read_safetensors(f"{model_dir}/model.safetensors")
    windows = len(ids) // window
    batch = torch.tensor(ids[: windows * window]).reshape(windows, window)
    with torch.no_grad():
        expected = reference.logits(config, weights, batch)
    for attention in ["eager", "sdpa"]:
        model, loading = AutoModelForCausalLM.from_pretrained(
            model_dir, attn_implementation=attention, output_loading_info=True
        )
        if any(loading.get(key) for key in ["missing_keys", "unexpected_keys", "mismatched_keys"]):
            raise SystemExit(f"from_pretrained did not load the file as it is: {loading}")
        with torch.no_grad():
            actual = model(batch).logits
        difference = (actual - expected).abs().max().item()
        print(f"{type(model).__name__} {attention}: max |logit difference| from the reference {difference:.2e}")


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2], int(sys.argv[3]))
