"""The same model and training step as Grove's tfjs trainer, in PyTorch, for a fair speed comparison.

Pre-norm decoder, RMSNorm, GELU in its sigmoid form, rotary positions, no biases,
AdamW, batch of random bytes. Prints one JSON line: {"tokensPerSecond": ..., "threads": ...}.
Run by `grove bench trainer` when Debian's python3-torch is installed; one thread, like Grove.
"""
import argparse
import json
import statistics
import time

import torch
import torch.nn as nn
import torch.nn.functional as F


class Block(nn.Module):
    def __init__(self, width, heads, ffn_width):
        super().__init__()
        self.heads = heads
        self.attention_norm = RMSNorm(width)
        self.qkv = nn.Linear(width, 3 * width, bias=False)
        self.out = nn.Linear(width, width, bias=False)
        self.ffn_norm = RMSNorm(width)
        self.up = nn.Linear(width, ffn_width, bias=False)
        self.down = nn.Linear(ffn_width, width, bias=False)

    def forward(self, x, mask, cos, sin):
        batch, length, width = x.shape
        q, k, v = self.qkv(self.attention_norm(x)).split(width, dim=-1)
        shape = (batch, length, self.heads, width // self.heads)
        q, k, v = (t.view(shape).transpose(1, 2) for t in (q, k, v))
        q, k = rotary(q, cos, sin), rotary(k, cos, sin)
        scores = q @ k.transpose(-1, -2) / (width // self.heads) ** 0.5 + mask
        mixed = (scores.softmax(-1) @ v).transpose(1, 2).reshape(batch, length, width)
        x = x + self.out(mixed)
        up = self.up(self.ffn_norm(x))
        return x + self.down(up * torch.sigmoid(1.702 * up))


def rotary(x, cos, sin):
    half = x.shape[-1] // 2
    rotated = torch.cat((-x[..., half:], x[..., :half]), dim=-1)
    return x * cos + rotated * sin


class RMSNorm(nn.Module):
    def __init__(self, width, eps=1e-5):
        super().__init__()
        self.weight = nn.Parameter(torch.ones(width))
        self.eps = eps

    def forward(self, x):
        return x * torch.rsqrt(x.pow(2).mean(-1, keepdim=True) + self.eps) * self.weight


class LM(nn.Module):
    def __init__(self, vocab, context, layers, width, heads, ffn_width):
        super().__init__()
        self.tokens = nn.Embedding(vocab, width)
        head_width = width // heads
        angles = torch.arange(context)[:, None] * 10000 ** (-torch.arange(head_width // 2) / (head_width // 2))
        self.register_buffer("cos", angles.cos().repeat(1, 2))
        self.register_buffer("sin", angles.sin().repeat(1, 2))
        self.blocks = nn.ModuleList(Block(width, heads, ffn_width) for _ in range(layers))
        self.norm = RMSNorm(width)
        self.head = nn.Linear(width, vocab, bias=False)
        self.register_buffer("mask", torch.full((context, context), float("-inf")).triu(1))

    def forward(self, tokens):
        x = self.tokens(tokens)
        for block in self.blocks:
            x = block(x, self.mask, self.cos, self.sin)
        return self.head(self.norm(x))


def main():
    parser = argparse.ArgumentParser()
    for name in ("vocab", "context", "layers", "width", "heads", "ffn-width", "batch", "steps"):
        parser.add_argument(f"--{name}", type=int, required=True)
    args = parser.parse_args()
    torch.set_num_threads(1)
    torch.manual_seed(0)
    model = LM(args.vocab, args.context, args.layers, args.width, args.heads, args.ffn_width)
    optimizer = torch.optim.AdamW(model.parameters(), lr=1e-3, betas=(0.9, 0.95), weight_decay=0.1)
    times = []
    for _ in range(args.steps + 2):
        data = torch.randint(0, 256, (args.batch, args.context + 1))
        started = time.perf_counter()
        logits = model(data[:, :-1])
        loss = F.cross_entropy(logits.reshape(-1, args.vocab), data[:, 1:].reshape(-1))
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        optimizer.step()
        times.append(time.perf_counter() - started)
    step = statistics.median(times[2:])
    print(json.dumps({"tokensPerSecond": args.batch * args.context / step, "threads": torch.get_num_threads()}))


if __name__ == "__main__":
    main()
