"""Fine-tuning recipes on top of the bundled encoder: the QA reader, NER, sentiment, any text classifier.

Built for a few CPU cores: bf16 autocast, frozen word embeddings, length-bucketed batches with no
padding waste, and resumable checkpoints (safetensors weights, optimizer state, the position in the
epoch) so that a run spread over several sessions continues where it stopped. Every checkpoint
scores the dev set and keeps the best model in ``OUTPUT/best`` (see ``finetuned.export_finetuned``).
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
from typing import TYPE_CHECKING, Callable

from .finetuned import export_finetuned, load_finetuned
from .models import DEFAULT_MODEL, quiet_transformers, resolve_model
from .precision import native_bfloat16
from .progress import progress_bar
from .squad import QAExample, load_squad, split_articles, unanswerable_examples

if TYPE_CHECKING:
    from .conll import Sentence


@dataclass
class Recipe:
    base_model: str = DEFAULT_MODEL
    epochs: float = 2.0
    batch_size: int = 32
    learning_rate: float = 1e-4
    warmup: float = 0.05
    weight_decay: float = 0.01
    max_length: int = 256
    stride: int = 96  # reader only: tokens shared by consecutive windows
    seed: int = 13
    freeze_word_embeddings: bool = True
    bf16: bool | None = None  # bf16 autocast; None: only on CPUs with bfloat16 instructions (else 12x slower)


#: The default recipe of each task; ``search train TASK`` takes its option defaults from here.
RECIPES = {
    "reader": Recipe(epochs=2.0, learning_rate=1e-4, max_length=256),
    "ner": Recipe(epochs=6.0, batch_size=8, learning_rate=1e-4, max_length=128),
    "sentiment": Recipe(epochs=2.0, learning_rate=5e-5, max_length=64),
    "classifier": Recipe(epochs=3.0, learning_rate=5e-5, max_length=128),
    "reranker": Recipe(epochs=1.0, learning_rate=5e-5, max_length=256),
}

# --- the shared loop ------------------------------------------------------------------------------

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


def pad_batch(features: list[dict], indices: list[int], label_key: str | None = None, label_pad: int = -100):
    """Model inputs padded to the longest feature of the batch (and padded per-token labels)."""
    import torch

    width = max(len(features[i]["input_ids"]) for i in indices)
    inputs = {name: torch.zeros((len(indices), width), dtype=torch.long)
              for name in ("input_ids", "token_type_ids", "attention_mask")}
    labels = torch.full((len(indices), width), label_pad, dtype=torch.long) if label_key else None
    for row, i in enumerate(indices):
        n = len(features[i]["input_ids"])
        inputs["input_ids"][row, :n] = torch.tensor(features[i]["input_ids"])
        if "token_type_ids" in features[i]:
            inputs["token_type_ids"][row, :n] = torch.tensor(features[i]["token_type_ids"])
        inputs["attention_mask"][row, :n] = 1
        if label_key:
            labels[row, :n] = torch.tensor(features[i][label_key])
    return inputs, labels


def _save_checkpoint(folder: Path, model, optimizer, scheduler, state: dict) -> None:
    """Write to a temporary folder, then swap it in: a kill never leaves half a checkpoint."""
    import torch
    from safetensors.torch import save_file

    tmp = folder.with_name(folder.name + ".tmp")
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir(parents=True)
    trainable = {k: v.detach().clone().contiguous() for k, v in model.named_parameters() if v.requires_grad}
    save_file(trainable, str(tmp / "trainable.safetensors"))
    torch.save({"optimizer": optimizer.state_dict(), "scheduler": scheduler.state_dict()}, tmp / "optimizer.pt")
    (tmp / "state.json").write_text(json.dumps(state, indent=2))
    old = folder.with_name(folder.name + ".old")
    shutil.rmtree(old, ignore_errors=True)
    if folder.exists():
        os.replace(folder, old)
    os.replace(tmp, folder)
    shutil.rmtree(old, ignore_errors=True)


def fit(model, tokenizer, features: list[dict], collate: Callable, loss_of: Callable, output: Path,
        recipe: Recipe, evaluate: Callable | None, metric: str, card: dict, checkpoint_minutes: float = 15.0,
        max_minutes: float | None = None, progress: bool = True, log=print) -> dict:
    """Train ``model`` on ``features`` with ``recipe``; resume from ``output/checkpoint`` when present.

    ``collate(features, indices) -> (inputs, labels)``, ``loss_of(model outputs, labels) -> loss``,
    ``evaluate(model) -> {metric: value, ...}``. The best model by ``metric`` goes to ``output/best``
    (without ``evaluate``, the latest), and at the end of the schedule the model to ``output/last``.
    """
    import torch
    from transformers import get_linear_schedule_with_warmup

    output.mkdir(parents=True, exist_ok=True)
    checkpoint = output / "checkpoint"
    if recipe.freeze_word_embeddings:
        model.get_input_embeddings().weight.requires_grad_(False)
    lengths = [len(f["input_ids"]) for f in features]
    steps_per_epoch = math.ceil(len(features) / recipe.batch_size)
    total_steps = max(1, int(steps_per_epoch * recipe.epochs))
    log(f"{len(features)} training examples; {steps_per_epoch} steps per epoch, {total_steps} in all")

    # No weight decay on biases, norms and (when trained) word embeddings: the row of a word the data
    # never shows stays as it was.
    embeddings = model.get_input_embeddings().weight
    trainable = [p for p in model.parameters() if p.requires_grad]
    optimizer = torch.optim.AdamW(
        [{"params": [p for p in trainable if p.ndim > 1 and p is not embeddings], "weight_decay": recipe.weight_decay},
         {"params": [p for p in trainable if p.ndim <= 1 or p is embeddings], "weight_decay": 0.0}],
        lr=recipe.learning_rate,
    )
    scheduler = get_linear_schedule_with_warmup(optimizer, int(recipe.warmup * total_steps), total_steps)
    state = {"step": 0, "best": -1.0, "metric": metric, "recipe": asdict(recipe), "history": []}
    if (checkpoint / "state.json").exists():
        from safetensors.torch import load_file

        state = json.loads((checkpoint / "state.json").read_text())
        state.setdefault("best", state.pop("best_f1", -1.0))  # checkpoints of the first reader runs
        state.setdefault("metric", metric)
        model.load_state_dict(load_file(str(checkpoint / "trainable.safetensors")), strict=False)
        saved = torch.load(checkpoint / "optimizer.pt", weights_only=True)
        optimizer.load_state_dict(saved["optimizer"])
        scheduler.load_state_dict(saved["scheduler"])
        log(f"resumed at step {state['step']} (best dev {metric} so far {state['best']:.1f})")

    since = {"loss": 0.0, "steps": 0, "time": time.monotonic()}  # since the last checkpoint

    def export(folder: str, **card_fields) -> None:
        export_finetuned(model, tokenizer, recipe.base_model, output / folder,
                         {**card, "recipe": asdict(recipe), "step": state["step"], **card_fields})

    def evaluate_and_save() -> None:
        """Score, keep the best, checkpoint; log the mean training loss and the speed since the last time
        (with a redirected log there is no progress bar)."""
        pace = {"train_loss": since["loss"] / max(1, since["steps"]),
                "s_per_step": (time.monotonic() - since["time"]) / max(1, since["steps"])}
        since.update(loss=0.0, steps=0)
        progress_line = (f"step {state['step']}/{total_steps}: train loss {pace['train_loss']:.3f}, "
                         f"{pace['s_per_step']:.2f} s/step")
        model.eval()
        if evaluate is None:  # nothing to compare: the latest model is the one to use
            export("best")
            log(progress_line)
        else:
            scores = evaluate(model)
            state["history"].append({"step": state["step"], **scores, **pace, "time": time.time()})
            log(f"{progress_line}; dev " + ", ".join(f"{k} {v:.1f}" for k, v in scores.items()))
            if scores[metric] > state["best"]:
                state["best"] = scores[metric]
                export("best", **{f"dev_{k}": v for k, v in scores.items()})
        _save_checkpoint(checkpoint, model, optimizer, scheduler, state)
        since["time"] = time.monotonic()
        model.train()

    bf16 = native_bfloat16() if recipe.bf16 is None else recipe.bf16
    started = last_save = time.monotonic()
    model.train()
    bar = progress_bar(total=total_steps, initial=state["step"], desc="Training", unit="step", enabled=progress,
                       interval=60.0)  # runs last hours: a line a minute in a log
    while state["step"] < total_steps:
        epoch, position = divmod(state["step"], steps_per_epoch)
        for indices in bucketed_batches(lengths, recipe.batch_size, recipe.seed + epoch)[position:]:
            inputs, labels = collate(features, indices)
            with torch.autocast("cpu", dtype=torch.bfloat16, enabled=bf16):
                out = model(**inputs)
            loss = loss_of(out, labels)
            loss.backward()
            torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
            optimizer.step()
            scheduler.step()
            optimizer.zero_grad(set_to_none=True)
            state["step"] += 1
            value = loss.item()
            since["loss"] += value
            since["steps"] += 1
            bar.update(1)
            bar.set_postfix(loss=f"{value:.3f}")
            done = state["step"] >= total_steps
            out_of_time = max_minutes is not None and time.monotonic() - started > 60 * max_minutes
            if done or out_of_time or time.monotonic() - last_save > 60 * checkpoint_minutes:
                evaluate_and_save()
                last_save = time.monotonic()
            if done or out_of_time:
                bar.close()
                if done:  # the end of the schedule, beside the best by dev score: the two to choose from
                    export("last")
                return state
    bar.close()
    return state


def _start(recipe: Recipe, init: str | None, auto_class, **model_options):
    """Tokenizer and model for a run: the base model with a new head, or an earlier run's model."""
    from transformers import AutoTokenizer

    quiet_transformers()
    base_path = resolve_model(recipe.base_model)
    tokenizer = AutoTokenizer.from_pretrained(base_path)
    model = load_finetuned(init, auto_class) if init else auto_class.from_pretrained(base_path, **model_options)
    model.set_attn_implementation("eager")  # on CPU in bf16, 1.3-1.9x faster to train than SDPA (docs/training.md)
    return tokenizer, model


def _cross_entropy(logits, labels):
    import torch

    return torch.nn.functional.cross_entropy(logits.float().reshape(-1, logits.shape[-1]), labels.reshape(-1),
                                             ignore_index=-100)


# --- the reader ------------------------------------------------------------------------------------

def train_features(tokenizer, examples: list[QAExample], max_length: int, stride: int,
                   chunk: int = 1000) -> list[dict]:
    """Tokenized windows with the token positions of the first gold answer (0, 0, the [CLS] token, when
    it is outside the window or the question has no answer).

    Tokenized ``chunk`` questions at a time and kept as numpy arrays: all of SQuAD at once peaked
    at 5.9 GB (the tokenizer's offsets and Python ints); this way, 0.65 GB.
    """
    import numpy as np

    features = []
    for c in range(0, len(examples), chunk):
        part = examples[c : c + chunk]
        encoded = tokenizer(
            [e.question for e in part], [e.context for e in part], truncation="only_second",
            max_length=max_length, stride=stride, return_overflowing_tokens=True, return_offsets_mapping=True,
        )
        for i, ids in enumerate(encoded["input_ids"]):
            example = part[encoded["overflow_to_sample_mapping"][i]]
            start, end = (_answer_tokens(example, encoded.sequence_ids(i), encoded["offset_mapping"][i])
                          if example.answers else (0, 0))
            features.append({"input_ids": np.array(ids, dtype=np.int32),
                             "token_type_ids": np.array(encoded["token_type_ids"][i], dtype=np.int8),
                             "start": start, "end": end})
    return features


def _answer_tokens(example: QAExample, sequence_ids: list, offsets: list) -> tuple[int, int]:
    """First and last token of the first gold answer in a window, or (0, 0) when it is not all inside."""
    start_char = example.answer_starts[0]
    end_char = start_char + len(example.answers[0])
    context = [t for t, s in enumerate(sequence_ids) if s == 1]
    if not context or offsets[context[0]][0] > start_char or offsets[context[-1]][1] < end_char:
        return 0, 0
    start = next(t for t in context if offsets[t][1] > start_char)
    end = next(t for t in reversed(context) if offsets[t][0] < end_char)
    return start, end


def train_reader(data: str | Path, output: str | Path, recipe: Recipe | None = None,
                 dev: str | Path | None = None, dev_questions: int = 600, init: str | None = None,
                 unanswerable: float = 0.0, held_out_articles: int = 0, **loop) -> dict:
    """Fine-tune ``recipe.base_model`` for extractive QA on the SQuAD-format file ``data``.

    ``init`` starts from an existing reader folder instead of the base model (when there is no
    checkpoint to resume). ``unanswerable`` adds that many unanswerable pairs per question
    (``squad.unanswerable_examples``), which teach the [CLS] token to score "no answer".
    ``held_out_articles`` leaves the file's last articles out of training (to calibrate on).
    ``loop`` options go to ``fit`` (checkpoint_minutes, max_minutes, progress, log).
    """
    import torch
    from transformers import AutoModelForQuestionAnswering

    from .evaluation import evaluate_reader
    from .reader import Reader

    recipe = recipe or RECIPES["reader"]
    tokenizer, model = _start(recipe, init, AutoModelForQuestionAnswering)
    examples, _ = split_articles(load_squad(data), held_out_articles)
    if unanswerable:
        examples += unanswerable_examples(examples, unanswerable, seed=recipe.seed)
    features = train_features(tokenizer, examples, recipe.max_length, recipe.stride)
    dev_examples = load_squad(dev)[:dev_questions] if dev else []

    def collate(feats, indices):
        inputs, _ = pad_batch(feats, indices)
        return inputs, (torch.tensor([feats[i]["start"] for i in indices]), torch.tensor([feats[i]["end"] for i in indices]))

    def loss_of(out, labels):
        return (_cross_entropy(out.start_logits, labels[0]) + _cross_entropy(out.end_logits, labels[1])) / 2

    def evaluate(m):
        reader = Reader.from_model(m, tokenizer, max_length=recipe.max_length, stride=recipe.stride)
        scores = evaluate_reader(reader, dev_examples)
        return {"f1": scores["f1"], "exact_match": scores["exact_match"]}

    return fit(model, tokenizer, features, collate, loss_of, Path(output), recipe, evaluate if dev_examples else None,
               "f1", {"task": "question-answering", "data": str(data), "dev": str(dev)}, **loop)


# --- the reranker ----------------------------------------------------------------------------------

def reranker_pairs(examples: list[QAExample], seed: int) -> list[tuple[str, str, int]]:
    """(question, paragraph, 1) for each question's own paragraph and (question, paragraph, 0) for
    a paragraph of its article without the answer, usually the one sharing most words with the
    question (``squad.unanswerable_examples``): the near misses a reranker has to put second."""
    negatives = unanswerable_examples(examples, rate=1.0, seed=seed)
    return [(ex.question, ex.context, 1) for ex in examples] + [(ex.question, ex.context, 0) for ex in negatives]


def pairwise_accuracy(scores_of: Callable, pairs: list[tuple[str, str, int]]) -> float:
    """The share of questions whose own paragraph scores above their near miss (``reranker_pairs``)."""
    own = {q: p for q, p, label in pairs if label}
    misses = [(q, p) for q, p, label in pairs if not label and q in own]
    right = sum(bool(a > b) for a, b in (scores_of(q, [own[q], p]) for q, p in misses))
    return 100.0 * right / max(len(misses), 1)


def train_reranker(data: str | Path, output: str | Path, recipe: Recipe | None = None,
                   dev: str | Path | None = None, dev_questions: int = 600, init: str | None = None, **loop) -> dict:
    """Fine-tune a cross-encoder (one relevance logit per question and paragraph) on a SQuAD-format
    file: each question's paragraph against a near miss from its article (``reranker_pairs``).
    Each checkpoint scores ``pairwise_accuracy`` on the first ``dev_questions`` of ``dev``."""
    import numpy as np
    import torch
    from transformers import AutoModelForSequenceClassification

    from .reranker import Reranker

    recipe = recipe or RECIPES["reranker"]
    tokenizer, model = _start(recipe, init, AutoModelForSequenceClassification, num_labels=1)
    pairs = reranker_pairs(load_squad(data), recipe.seed)
    features = []  # numpy arrays, not lists of Python ints: a few times less memory (see train_features)
    for c in range(0, len(pairs), 1000):
        chunk = pairs[c : c + 1000]
        encoded = tokenizer([q for q, _, _ in chunk], [p for _, p, _ in chunk], truncation="only_second",
                            max_length=recipe.max_length)
        features += [{"input_ids": np.array(ids, dtype=np.int32), "token_type_ids": np.array(types, dtype=np.int8),
                      "label": label} for ids, types, (_, _, label)
                     in zip(encoded["input_ids"], encoded["token_type_ids"], chunk)]
    dev_pairs = reranker_pairs(load_squad(dev)[:dev_questions], recipe.seed) if dev else []

    def collate(feats, indices):
        inputs, _ = pad_batch(feats, indices)
        return inputs, torch.tensor([float(feats[i]["label"]) for i in indices])

    def loss_of(out, labels):
        return torch.nn.functional.binary_cross_entropy_with_logits(out.logits.float()[:, 0], labels)

    def evaluate(m):
        reranker = Reranker.from_model(m, tokenizer, max_length=recipe.max_length)
        return {"accuracy": pairwise_accuracy(reranker.scores, dev_pairs)}

    return fit(model, tokenizer, features, collate, loss_of, Path(output), recipe, evaluate if dev_pairs else None,
               "accuracy", {"task": "reranking", "data": str(data), "dev": str(dev)}, **loop)


# --- named entities ------------------------------------------------------------------------------

def ner_features(tokenizer, sentences: list[Sentence], label_ids: dict[str, int],
                 max_length: int, case_feature: bool = False) -> list[dict]:
    """Word-tokenized sentences -> features labelled on each word's first word piece (-100 elsewhere)."""
    from .tagging import case_types

    encoded = tokenizer([words for words, _ in sentences], is_split_into_words=True, truncation=True,
                        max_length=max_length, return_offsets_mapping=True)
    features = []
    for i, (words, tags) in enumerate(sentences):
        labels, previous = [], None
        for word in encoded.word_ids(i):
            labels.append(label_ids[tags[word]] if word is not None and word != previous else -100)
            previous = word
        types = (case_types(encoded.word_ids(i), encoded["offset_mapping"][i], words.__getitem__) if case_feature
                 else encoded["token_type_ids"][i])
        features.append({"input_ids": encoded["input_ids"][i], "token_type_ids": types, "labels": labels})
    return features


def train_ner(data: str | Path, output: str | Path, recipe: Recipe | None = None, dev: str | Path | None = None,
              init: str | None = None, case_feature: bool = True, **loop) -> dict:
    """Fine-tune a token classifier on a CoNLL file (IOB1 or BIO tags; trained and scored as BIO).

    Sentences are read in runs of their document (``pack_sentences``), and with ``case_feature``
    the model sees capitals through its token types (``enrich.case_types``).
    """
    from transformers import AutoModelForTokenClassification

    from .conll import pack_sentences, read_conll_documents
    from .evaluation import ner_scores
    from .tagging import EntityTagger

    recipe = recipe or RECIPES["ner"]
    documents = read_conll_documents(data)
    labels = ["O"] + sorted({t for d in documents for _, tags in d for t in tags} - {"O"})
    label_ids = {label: i for i, label in enumerate(labels)}
    tokenizer, model = _start(recipe, init, AutoModelForTokenClassification, num_labels=len(labels),
                              id2label=dict(enumerate(labels)), label2id=label_ids)
    model.config.case_feature = case_feature
    features = ner_features(tokenizer, pack_sentences(tokenizer, documents, recipe.max_length), label_ids,
                            recipe.max_length, case_feature)
    dev_documents = read_conll_documents(dev) if dev else []

    def evaluate(m):
        scores = ner_scores(EntityTagger.from_model(m, tokenizer, batch_size=32), dev_documents, recipe.max_length)
        return {"f1": scores["f1"], "precision": scores["precision"], "recall": scores["recall"]}

    return fit(model, tokenizer, features, lambda f, ix: pad_batch(f, ix, "labels"),
               lambda out, y: _cross_entropy(out.logits, y), Path(output), recipe,
               evaluate if dev_documents else None, "f1",
               {"task": "token-classification", "data": str(data), "dev": str(dev), "case_feature": case_feature},
               **loop)


# --- text classification (sentiment and any labelled texts) ------------------------------------------

def train_classifier(data: str | Path, output: str | Path, recipe: Recipe | None = None,
                     dev: str | Path | None = None, label_names: list[str] | None = None,
                     text_column: str | None = None, label_column: str = "label", init: str | None = None,
                     **loop) -> dict:
    """Fine-tune a sequence classifier on a TSV/CSV file of texts and labels.

    ``label_names`` name the labels in order (``negative,positive`` for SST-2's 0/1); without it
    the labels found in the data are used as they are, sorted.
    """
    import torch
    from transformers import AutoModelForSequenceClassification

    from .classification import TextClassifier
    from .evaluation import classifier_accuracy
    from .labelled import label_mapping, read_labelled

    recipe = recipe or RECIPES["classifier"]
    texts, raw = read_labelled(data, text_column, label_column)
    to_name = label_mapping(raw, label_names)
    names = list(to_name.values())
    label_ids = {name: i for i, name in enumerate(names)}
    tokenizer, model = _start(recipe, init, AutoModelForSequenceClassification, num_labels=len(names),
                              id2label=dict(enumerate(names)), label2id=label_ids)
    encoded = tokenizer(texts, truncation=True, max_length=recipe.max_length)
    features = [{"input_ids": ids, "token_type_ids": encoded["token_type_ids"][i], "label": label_ids[to_name[raw[i]]]}
                for i, ids in enumerate(encoded["input_ids"])]
    dev_texts, dev_raw = read_labelled(dev, text_column, label_column) if dev else ([], [])

    def collate(feats, indices):
        inputs, _ = pad_batch(feats, indices)
        return inputs, torch.tensor([feats[i]["label"] for i in indices])

    def evaluate(m):
        gold = [to_name.get(g, g) for g in dev_raw]
        return {"accuracy": classifier_accuracy(TextClassifier.from_model(m, tokenizer), dev_texts, gold)}

    return fit(model, tokenizer, features, collate, lambda out, y: _cross_entropy(out.logits, y), Path(output),
               recipe, evaluate if dev_texts else None, "accuracy",
               {"task": "text-classification", "data": str(data), "dev": str(dev), "labels": names}, **loop)


# --- the reader's confidence -------------------------------------------------------------------------

def fit_calibration(margins, shares, right) -> tuple[float, float]:
    """``scale`` and ``bias`` of ``sigmoid(scale * margin + bias) * share`` that minimise the log
    loss of predicting ``right`` (the reader's best span is right), by gradient descent."""
    import numpy as np

    m, s, y = (np.asarray(x, dtype=np.float64) for x in (margins, shares, right))
    m = np.clip(m, -50, 50)
    scale, bias = 0.5, 0.0
    for _ in range(5000):
        z = 1 / (1 + np.exp(-(scale * m + bias)))
        p = np.clip(z * s, 1e-9, 1 - 1e-9)
        grad_p = (p - y) / (p * (1 - p))  # d loss / d p
        grad_z = grad_p * s * z * (1 - z)
        scale -= 0.05 * float(np.mean(grad_z * m))
        bias -= 0.05 * float(np.mean(grad_z))
    return scale, bias


def best_threshold(confidences, f1s, no_answer) -> float:
    """The confidence threshold that maximises SQuAD 2.0 F1: below it the reader says "no answer"
    (right for an unanswerable question, F1 0 for an answerable one)."""
    def f1_at(t):
        return sum((f if c >= t else float(n)) for c, f, n in zip(confidences, f1s, no_answer))

    return max((round(t / 100, 2) for t in range(0, 100)), key=f1_at)


def calibrate_reader(reader_folder: str | Path, data: str | Path, held_out_articles: int = 12, seed: int = 13,
                     log=print, progress: bool = False) -> dict:
    """Fit the reader's confidence and its no-answer threshold on the last ``held_out_articles``
    articles of ``data`` (the ones ``train_reader --held-out-articles`` left out), each question
    with its paragraph and once with an unanswerable one (``squad.unanswerable_examples``), and
    write them to the folder's calibration.json."""
    import math


    from .metrics import answer_f1
    from .reader import CALIBRATION, Calibration, Reader, _rank

    _, held_out = split_articles(load_squad(data), held_out_articles)
    if not held_out:
        raise ValueError("--held-out-articles must leave some articles to calibrate on")
    examples = held_out + unanswerable_examples(held_out, rate=1.0, seed=seed)
    reader = Reader(str(reader_folder), precision="float32")
    margins, shares, f1s = [], [], []
    for ex in progress_bar(examples, desc="Calibrating", unit="question", enabled=progress):
        candidates, margin = reader.spans(ex.question, [ex.context])
        top = _rank(candidates, [ex.context], 1)
        margins.append(margin if math.isfinite(margin) else -50.0)
        shares.append(top[0].score if top else 0.0)
        f1s.append(answer_f1(top[0].text, ex.answers) if top and ex.answers else 0.0)
    scale, bias = fit_calibration(margins, shares, [f >= 0.5 for f in f1s])
    calibration = Calibration(scale, bias, 0.0)
    confidences = [calibration.answerable(m) * s for m, s in zip(margins, shares)]
    threshold = best_threshold(confidences, f1s, [not ex.answers for ex in examples])
    result = {"scale": scale, "bias": bias, "threshold": threshold}
    (Path(reader_folder) / CALIBRATION).write_text(json.dumps(result, indent=2) + "\n")
    log(f"calibrated on {len(held_out)} questions of the last {held_out_articles} articles of {data} and"
        f" {len(examples) - len(held_out)} unanswerable pairs: scale {scale:.3f}, bias {bias:.3f}, threshold {threshold}")
    return {**result, "questions": len(examples)}
