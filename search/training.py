"""Fine-tuning recipes. ``train_reader``: an extractive QA reader from a BERT encoder on SQuAD-format data.

Built for a few CPU cores: bf16 autocast, frozen word embeddings, length-bucketed batches with
no padding waste, and resumable checkpoints (safetensors weights, optimizer state, the position in
the epoch) so that a run spread over several sessions continues where it stopped.
"""

from __future__ import annotations

import json
import math
import os
import random
import shutil
import time
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np

from .models import DEFAULT_MODEL, resolve_model
from .reader import DELTA_WEIGHTS, READER_CARD, load_qa_model
from .squad import QAExample, load_squad, score_predictions


@dataclass
class ReaderRecipe:
    base_model: str = DEFAULT_MODEL
    epochs: float = 2.0
    batch_size: int = 32
    learning_rate: float = 1e-4
    warmup: float = 0.05
    weight_decay: float = 0.01
    max_length: int = 256
    stride: int = 96
    seed: int = 13
    freeze_word_embeddings: bool = True
    bf16: bool = True


def train_features(tokenizer, examples: list[QAExample], max_length: int, stride: int) -> list[dict]:
    """Tokenized windows with the token positions of the first gold answer (0, 0 when outside)."""
    encoded = tokenizer(
        [e.question for e in examples], [e.context for e in examples], truncation="only_second",
        max_length=max_length, stride=stride, return_overflowing_tokens=True, return_offsets_mapping=True,
    )
    features = []
    for i, ids in enumerate(encoded["input_ids"]):
        example = examples[encoded["overflow_to_sample_mapping"][i]]
        if not example.answers:
            continue
        start_char = example.answer_starts[0]
        end_char = start_char + len(example.answers[0])
        sequence_ids = encoded.sequence_ids(i)
        offsets = encoded["offset_mapping"][i]
        context = [t for t, s in enumerate(sequence_ids) if s == 1]
        start = end = 0
        if context and offsets[context[0]][0] <= start_char and offsets[context[-1]][1] >= end_char:
            start = next(t for t in context if offsets[t][1] > start_char)
            end = next(t for t in reversed(context) if offsets[t][0] < end_char)
        features.append({
            "input_ids": ids, "token_type_ids": encoded["token_type_ids"][i], "start": start, "end": end,
        })
    return features


def bucketed_batches(lengths: list[int], batch_size: int, seed: int) -> list[list[int]]:
    """Shuffled batches of similar lengths: shuffle, sort within chunks of 50 batches, shuffle the batches."""
    rng = random.Random(seed)
    order = list(range(len(lengths)))
    rng.shuffle(order)
    chunk = batch_size * 50
    batches = []
    for c in range(0, len(order), chunk):
        part = sorted(order[c : c + chunk], key=lambda i: lengths[i])
        batches += [part[b : b + batch_size] for b in range(0, len(part), batch_size)]
    rng.shuffle(batches)
    return batches


def _collate(features: list[dict], indices: list[int]):
    import torch

    width = max(len(features[i]["input_ids"]) for i in indices)
    ids = torch.zeros((len(indices), width), dtype=torch.long)
    types = torch.zeros_like(ids)
    mask = torch.zeros_like(ids)
    for row, i in enumerate(indices):
        n = len(features[i]["input_ids"])
        ids[row, :n] = torch.tensor(features[i]["input_ids"])
        types[row, :n] = torch.tensor(features[i]["token_type_ids"])
        mask[row, :n] = 1
    starts = torch.tensor([features[i]["start"] for i in indices])
    ends = torch.tensor([features[i]["end"] for i in indices])
    return {"input_ids": ids, "token_type_ids": types, "attention_mask": mask}, starts, ends


def evaluate_reader(reader, examples: list[QAExample]) -> dict[str, float]:
    """EM/F1 with the gold paragraph given (reader-only)."""
    predictions = {}
    for ex in examples:
        answers = reader.read(ex.question, [ex.context], top_k=1)
        predictions[ex.id] = answers[0].text if answers else ""
    return score_predictions(examples, predictions)


def _trainable_state(model) -> dict:
    return {k: v.detach().clone().contiguous() for k, v in model.named_parameters() if v.requires_grad}


def _save_checkpoint(folder: Path, model, optimizer, scheduler, state: dict) -> None:
    """Write to a temporary folder, then swap it in: a kill never leaves half a checkpoint."""
    import torch
    from safetensors.torch import save_file

    tmp = folder.with_name(folder.name + ".tmp")
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir(parents=True)
    save_file(_trainable_state(model), str(tmp / "trainable.safetensors"))
    torch.save({"optimizer": optimizer.state_dict(), "scheduler": scheduler.state_dict()}, tmp / "optimizer.pt")
    (tmp / "state.json").write_text(json.dumps(state, indent=2))
    old = folder.with_name(folder.name + ".old")
    shutil.rmtree(old, ignore_errors=True)
    if folder.exists():
        os.replace(folder, old)
    os.replace(tmp, folder)
    shutil.rmtree(old, ignore_errors=True)


def export_reader(model, tokenizer, base_model: str, folder: Path, card: dict) -> None:
    """Save a reader folder: fp16 weights of what training changed, on top of ``base_model``.

    Frozen parameters (the word embeddings) are left out and come from the base model at load
    time (see ``reader.load_qa_model``), which halves the folder for MiniLM.
    """
    from safetensors.torch import save_file

    tmp = folder.with_name(folder.name + ".tmp")
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir(parents=True)
    trained = {k: v.detach().half().contiguous() for k, v in model.named_parameters() if v.requires_grad}
    save_file(trained, str(tmp / DELTA_WEIGHTS), metadata={"base_model": base_model})
    model.config.save_pretrained(str(tmp))
    tokenizer.save_pretrained(str(tmp))
    (tmp / READER_CARD).write_text(json.dumps({"base_model": base_model, **card}, indent=2))
    if folder.exists():
        shutil.rmtree(folder)
    os.replace(tmp, folder)


def train_reader(data: str | Path, output: str | Path, recipe: ReaderRecipe | None = None,
                 dev: str | Path | None = None, dev_questions: int = 600, checkpoint_minutes: float = 15.0,
                 max_minutes: float | None = None, progress: bool = True, log=print, init: str | None = None) -> dict:
    """Fine-tune ``recipe.base_model`` for extractive QA on the SQuAD-format file ``data``.

    ``init`` starts from the weights of an existing reader folder (of the same base model) instead
    of the base model's, when there is no checkpoint to resume.

    ``output`` gets ``checkpoint/`` (resumed automatically when present) and ``best/`` (the reader
    with the best dev F1 so far, fp16). Stops after ``recipe.epochs`` or ``max_minutes``.
    """
    import torch
    from tqdm.auto import tqdm
    from transformers import AutoModelForQuestionAnswering, AutoTokenizer, get_linear_schedule_with_warmup

    from .encoders import _quiet_transformers
    from .reader import Reader

    _quiet_transformers()
    recipe = recipe or ReaderRecipe()
    output = Path(output)
    output.mkdir(parents=True, exist_ok=True)
    checkpoint = output / "checkpoint"
    base_path = resolve_model(recipe.base_model)
    tokenizer = AutoTokenizer.from_pretrained(base_path)
    model = load_qa_model(init) if init else AutoModelForQuestionAnswering.from_pretrained(base_path)
    if recipe.freeze_word_embeddings:
        model.get_input_embeddings().weight.requires_grad_(False)

    examples = load_squad(data)
    features = train_features(tokenizer, examples, recipe.max_length, recipe.stride)
    lengths = [len(f["input_ids"]) for f in features]
    steps_per_epoch = math.ceil(len(features) / recipe.batch_size)
    total_steps = int(steps_per_epoch * recipe.epochs)
    dev_examples = load_squad(dev)[:dev_questions] if dev else []
    log(f"{len(examples)} questions -> {len(features)} windows; {steps_per_epoch} steps per epoch, {total_steps} in all")

    decay = [p for n, p in model.named_parameters() if p.requires_grad and p.ndim > 1]
    no_decay = [p for n, p in model.named_parameters() if p.requires_grad and p.ndim <= 1]
    optimizer = torch.optim.AdamW(
        [{"params": decay, "weight_decay": recipe.weight_decay}, {"params": no_decay, "weight_decay": 0.0}],
        lr=recipe.learning_rate,
    )
    scheduler = get_linear_schedule_with_warmup(optimizer, int(recipe.warmup * total_steps), total_steps)
    state = {"step": 0, "best_f1": -1.0, "recipe": asdict(recipe), "history": []}
    if (checkpoint / "state.json").exists():
        from safetensors.torch import load_file

        state = json.loads((checkpoint / "state.json").read_text())
        model.load_state_dict(load_file(str(checkpoint / "trainable.safetensors")), strict=False)
        saved = torch.load(checkpoint / "optimizer.pt", weights_only=True)
        optimizer.load_state_dict(saved["optimizer"])
        scheduler.load_state_dict(saved["scheduler"])
        log(f"resumed at step {state['step']} (best dev F1 so far {state['best_f1']:.1f})")

    def evaluate_and_save() -> None:
        model.eval()
        if dev_examples:
            scores = evaluate_reader(Reader.from_model(model, tokenizer, max_length=recipe.max_length,
                                                       stride=recipe.stride), dev_examples)
            state["history"].append({"step": state["step"], **scores, "time": time.time()})
            log(f"step {state['step']}: dev EM {scores['exact_match']:.1f} F1 {scores['f1']:.1f} on {scores['questions']} questions")
            if scores["f1"] > state["best_f1"]:
                state["best_f1"] = scores["f1"]
                export_reader(model, tokenizer, recipe.base_model, output / "best",
                              {"data": str(data), "recipe": asdict(recipe), "step": state["step"],
                               "dev": str(dev), **{f"dev_{k}": v for k, v in scores.items()}})
        _save_checkpoint(checkpoint, model, optimizer, scheduler, state)
        model.train()

    started = last_save = time.monotonic()
    model.train()
    bar = tqdm(total=total_steps, initial=state["step"], desc="Training", unit="step", disable=not progress)
    while state["step"] < total_steps:
        epoch, position = divmod(state["step"], steps_per_epoch)
        batches = bucketed_batches(lengths, recipe.batch_size, recipe.seed + epoch)
        for indices in batches[position:]:
            inputs, starts, ends = _collate(features, indices)
            with torch.autocast("cpu", dtype=torch.bfloat16, enabled=recipe.bf16):
                out = model(**inputs)
            loss_fn = torch.nn.functional.cross_entropy
            loss = (loss_fn(out.start_logits.float(), starts) + loss_fn(out.end_logits.float(), ends)) / 2
            loss.backward()
            torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
            optimizer.step()
            scheduler.step()
            optimizer.zero_grad(set_to_none=True)
            state["step"] += 1
            bar.update(1)
            bar.set_postfix(loss=f"{loss.item():.3f}")
            out_of_time = max_minutes is not None and time.monotonic() - started > 60 * max_minutes
            if state["step"] >= total_steps or out_of_time or time.monotonic() - last_save > 60 * checkpoint_minutes:
                evaluate_and_save()
                last_save = time.monotonic()
            if state["step"] >= total_steps or out_of_time:
                bar.close()
                return state
    bar.close()
    return state
