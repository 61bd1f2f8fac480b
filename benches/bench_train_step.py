"""Time one training step of a reader (forward, backward, clipping, AdamW step on 32 windows, bf16
autocast where the CPU has bfloat16 instructions, word embeddings frozen: the `search train` recipe)
with attention written out ("eager", what `search train` uses) against PyTorch's fused SDPA kernel
(the transformers default), in the same run. Pause other work first: steps take seconds.

    python benches/bench_train_step.py [--model multilingual] [--lengths 120,200,256] [--steps 3]
"""

from __future__ import annotations

import argparse
import os
import time

os.environ.setdefault("HF_HUB_OFFLINE", "1")

import torch  # noqa: E402
from transformers import AutoModelForQuestionAnswering  # noqa: E402

from search.models import quiet_transformers, resolve_model  # noqa: E402
from search.precision import native_bfloat16  # noqa: E402


def seconds_per_step(model_name: str, attention: str, length: int, steps: int) -> float:
    torch.manual_seed(0)
    quiet_transformers()
    model = AutoModelForQuestionAnswering.from_pretrained(resolve_model(model_name), attn_implementation=attention)
    model.get_input_embeddings().weight.requires_grad_(False)
    model.train()
    params = [p for p in model.parameters() if p.requires_grad]
    optimizer = torch.optim.AdamW(params, lr=1e-5)
    ids = torch.randint(5, model.config.vocab_size, (32, length))
    positions = torch.randint(0, length, (2, 32))

    def step() -> None:
        with torch.autocast("cpu", dtype=torch.bfloat16, enabled=native_bfloat16()):
            out = model(input_ids=ids, attention_mask=torch.ones_like(ids))
        loss = sum(torch.nn.functional.cross_entropy(logits.float(), target)
                   for logits, target in zip((out.start_logits, out.end_logits), positions))
        loss.backward()
        torch.nn.utils.clip_grad_norm_(params, 1.0)
        optimizer.step()
        optimizer.zero_grad(set_to_none=True)

    step()  # warm-up
    started = time.perf_counter()
    for _ in range(steps):
        step()
    return (time.perf_counter() - started) / steps


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default="multilingual")
    parser.add_argument("--lengths", default="120,200,256", help="Tokens per window, comma-separated.")
    parser.add_argument("--steps", type=int, default=3)
    args = parser.parse_args()
    print(f"{args.model}, 32 windows a step, bf16 autocast: {native_bfloat16()}, {torch.get_num_threads()} threads")
    print("| tokens | SDPA s/step | eager s/step | ratio |\n|---:|---:|---:|---:|")
    for length in map(int, args.lengths.split(",")):
        sdpa, eager = (seconds_per_step(args.model, a, length, args.steps) for a in ("sdpa", "eager"))
        print(f"| {length} | {sdpa:.2f} | {eager:.2f} | {sdpa / eager:.2f} |")


if __name__ == "__main__":
    main()
