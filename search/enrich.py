"""Enrichment: named entities (whole entities with character offsets) and text classification
(sentiment, or any classifier trained with ``search train classifier``)."""

from __future__ import annotations

import csv
import re
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path
from typing import Callable, Sequence

import numpy as np

from .errors import SearchError
from .models import ModelRunner, native_bfloat16

MODELS_DIR = Path(__file__).resolve().parent
#: The models this project trains and ships (each folder's finetuned.json has data, recipe, metrics).
DEFAULT_NER = MODELS_DIR / "ner_model"
DEFAULT_SENTIMENT = MODELS_DIR / "sentiment_model"

#: A CoNLL sentence: its words and their BIO tags.
Sentence = tuple[list[str], list[str]]


@dataclass
class Entity:
    text: str
    label: str
    start: int  # character offsets in the text that was tagged
    end: int
    score: float

    def to_dict(self) -> dict:
        return dict(self.__dict__)


@dataclass
class Label:
    label: str
    score: float

    def to_dict(self) -> dict:
        return dict(self.__dict__)


# --- data ---------------------------------------------------------------------------------------

def iob1_to_bio(tags: list[str]) -> list[str]:
    """IOB1 (I- inside, B- only between two adjacent entities of a type) -> BIO (B- starts every entity)."""
    out = []
    for i, tag in enumerate(tags):
        if tag.startswith("I-"):
            previous = out[i - 1] if i else "O"
            if previous == "O" or previous[2:] != tag[2:]:
                tag = "B-" + tag[2:]
        out.append(tag)
    return out


def read_conll_documents(path: str | Path) -> list[list[Sentence]]:
    """Documents (split at ``-DOCSTART-`` lines) of sentences (words, BIO tags) from a CoNLL file
    (word first, tag last on each line, a blank line after each sentence)."""
    documents, sentences, words, tags = [], [], [], []
    try:
        lines = Path(path).read_text(encoding="utf-8").splitlines()
    except (OSError, UnicodeDecodeError) as exc:
        raise SearchError(f"Cannot read {path}: {exc}") from exc
    for line in lines + ["-DOCSTART-"]:
        parts = line.split()
        if not parts or parts[0] == "-DOCSTART-":
            if words:
                sentences.append((words, iob1_to_bio(tags)))
            if parts and sentences:
                documents.append(sentences)
                sentences = []
            words, tags = [], []
            continue
        words.append(parts[0])
        tags.append(parts[-1])
    if not documents:
        raise SearchError(f"{path} has no CoNLL sentences (one 'word ... tag' per line, blank lines between)")
    return documents


def pack_sentences(tokenizer, documents: list[list[Sentence]],
                   max_length: int) -> list[Sentence]:
    """Runs of consecutive sentences of a document joined while they fit in ``max_length`` tokens.

    The tagger then sees each sentence in its context, as it sees multi-sentence passages at index
    time (CoNLL test: see README). A sentence longer than the window stays alone (and is cut).
    """
    packed = []
    for document in documents:
        sizes = [len(ids) for ids in tokenizer([w for w, _ in document], is_split_into_words=True,
                                               add_special_tokens=False)["input_ids"]]
        words, tags, size = [], [], 0
        for (w, t), n in zip(document, sizes):
            if words and size + n > max_length - 2:
                packed.append((words, tags))
                words, tags, size = [], [], 0
            words, tags, size = words + w, tags + t, size + n
        packed.append((words, tags))
    return packed


def unpack_tags(documents: list[list[Sentence]], packed_tags: list[list[str]]) -> list[list[str]]:
    """Per-sentence tags back from the tags of ``pack_sentences``' runs (same documents, same order)."""
    flat = iter(tag for tags in packed_tags for tag in tags)
    return [[next(flat) for _ in words] for document in documents for words, _ in document]


def read_labelled(path: str | Path, text_column: str | None = None, label_column: str = "label") -> tuple[list[str], list[str]]:
    """Texts and labels from a TSV (.tsv) or CSV file with a header row.

    The text column is ``text_column``, else ``text`` or ``sentence``, else the first column.
    """
    path = Path(path)
    try:
        with open(path, newline="", encoding="utf-8") as f:
            rows = list(csv.DictReader(f, delimiter="\t" if path.suffix.lower() == ".tsv" else ",",
                                       quoting=csv.QUOTE_NONE if path.suffix.lower() == ".tsv" else csv.QUOTE_MINIMAL))
    except (OSError, UnicodeDecodeError, csv.Error) as exc:
        raise SearchError(f"Cannot read {path}: {exc}") from exc
    if not rows:
        raise SearchError(f"{path} has no rows")
    columns = list(rows[0])
    text_column = text_column or next((c for c in ("text", "sentence") if c in columns), columns[0])
    if label_column not in columns or text_column not in columns:
        raise SearchError(f"{path}: need columns {text_column!r} and {label_column!r}; it has {', '.join(columns)}")
    rows = [r for r in rows if (r[text_column] or "").strip() and (r[label_column] or "").strip()]
    return [r[text_column].strip() for r in rows], [r[label_column].strip() for r in rows]


def entity_spans(tags: Sequence[str]) -> set[tuple[int, int, str]]:
    """Strict BIO chunks: B-X followed by I-X...; a stray I- starts no entity."""
    spans, start, label = set(), None, None
    for i, tag in enumerate(list(tags) + ["O"]):
        if start is not None and tag != "I-" + label:
            spans.add((start, i, label))
            start = None
        if tag.startswith("B-"):
            start, label = i, tag[2:]
    return spans


def score_entities(gold: list[list[str]], predicted: list[list[str]]) -> dict[str, float]:
    """Entity-level precision, recall and F1 (percent), exact span and type (seqeval strict style)."""
    tp = n_gold = n_pred = 0
    for g, p in zip(gold, predicted):
        gs, ps = entity_spans(g), entity_spans(p)
        tp, n_gold, n_pred = tp + len(gs & ps), n_gold + len(gs), n_pred + len(ps)
    precision = tp / n_pred if n_pred else 0.0
    recall = tp / n_gold if n_gold else 0.0
    f1 = 2 * precision * recall / (precision + recall) if precision + recall else 0.0
    return {"precision": 100 * precision, "recall": 100 * recall, "f1": 100 * f1, "entities": n_gold}


# --- inference ------------------------------------------------------------------------------------

def _batches(n: int, size: int):
    order = list(range(n))
    for b in range(0, n, size):
        yield order[b : b + size]


def case_types(word_ids, offsets, word_text: Callable[[int], str]) -> list[int]:
    """Token type 1 for word pieces that start with a capital letter, else 0.

    The bundled encoder is uncased, and capitals are the strongest clue to a name. A tagger trained
    with ``config.case_feature`` gets them back through BERT's token type embedding (2 x 384
    weights; CoNLL test: see README). ``word_text(w)`` is the text that the offsets of word ``w``
    point into: the word itself for pre-split words, the whole text otherwise.
    """
    return [int(w is not None and word_text(w)[s : s + 1].isupper()) for w, (s, _) in zip(word_ids, offsets)]


def predict_word_tags(model, tokenizer, sentences: list[list[str]], max_length: int = 128,
                      batch_size: int = 32) -> list[list[str]]:
    """BIO tags for pre-split words (each word takes its first word piece's label; cut words get O)."""
    import torch

    id2label = model.config.id2label
    out = []
    for chunk in _batches(len(sentences), batch_size):
        batch = tokenizer([sentences[i] for i in chunk], is_split_into_words=True, truncation=True,
                          max_length=max_length, padding=True, return_tensors="pt", return_offsets_mapping=True)
        word_ids = [batch.word_ids(row) for row in range(len(chunk))]
        offsets = batch.pop("offset_mapping").tolist()
        if getattr(model.config, "case_feature", False):
            batch["token_type_ids"] = torch.tensor([case_types(word_ids[row], offsets[row], sentences[i].__getitem__)
                                                    for row, i in enumerate(chunk)])
        with torch.inference_mode():
            logits = model(**batch).logits.float().numpy()
        for row, i in enumerate(chunk):
            tags, seen = ["O"] * len(sentences[i]), set()
            for t, word in enumerate(word_ids[row]):
                if word is not None and word not in seen:
                    seen.add(word)
                    tags[word] = id2label[int(logits[row, t].argmax())]
            out.append(tags)
    return out


#: Words as CoNLL splits them: acronyms with their dots (U.S.), words joined by - & or an apostrophe
#: (Anglo-Dutch, AT&T, O'Neill) but 's on its own, and every other character that is not a space alone.
WORD = re.compile(r"(?:[A-Z]\.){2,}|\w+(?:[-&]\w+|['’](?![sS]\b)\w+)*|['’][sS]\b|\S")


def split_words(text: str) -> list[tuple[int, str]]:
    """The words of raw text (``WORD``) with their character offsets, as the tagger was trained on them."""
    return [(m.start(), m.group()) for m in WORD.finditer(text)]


def tag_documents(model, tokenizer, documents: list[list[Sentence]], max_length: int = 128,
                  context: bool = True) -> list[list[str]]:
    """Predicted BIO tags of every sentence of CoNLL ``documents``: in runs of consecutive sentences
    (``pack_sentences``), or one sentence at a time without ``context``."""
    if not context:
        return predict_word_tags(model, tokenizer, [w for d in documents for w, _ in d], max_length)
    packed = pack_sentences(tokenizer, documents, max_length)
    return unpack_tags(documents, predict_word_tags(model, tokenizer, [w for w, _ in packed], max_length))


class EntityTagger(ModelRunner):
    """``EntityTagger(model).tag(texts)``: whole named entities with character offsets."""

    auto_class = "AutoModelForTokenClassification"
    what = "NER model"
    train_hint = "search train ner --data eng.train --dev eng.testa --output DIR"

    def __init__(self, model: str | Path | None = None, batch_size: int = 16, max_length: int = 256,
                 precision: str = "auto"):
        super().__init__(model, precision)
        self.batch_size, self.max_length = batch_size, max_length

    @classmethod
    def default_model(cls) -> Path:
        return DEFAULT_NER

    def tag(self, texts: Sequence[str]) -> list[list[Entity]]:
        """Entities of each text. Texts longer than the window are tagged in consecutive windows."""
        import torch

        words = [split_words(text) for text in texts]
        todo = [t for t, w in enumerate(words) if w]
        encoded = self.tokenizer([[word for _, word in words[t]] for t in todo], is_split_into_words=True,
                                 truncation=True, max_length=self.max_length, stride=0,
                                 return_overflowing_tokens=True, return_offsets_mapping=True)
        windows = [todo[i] for i in encoded["overflow_to_sample_mapping"]]  # window -> text
        if getattr(self.model.config, "case_feature", False):
            encoded["token_type_ids"] = [case_types(encoded.word_ids(w), offsets, lambda i: words[windows[w]][i][1])
                                         for w, offsets in enumerate(encoded["offset_mapping"])]
        probabilities = []
        for chunk in _batches(len(windows), self.batch_size):
            batch = self.tokenizer.pad({k: [encoded[k][i] for i in chunk] for k in ("input_ids", "attention_mask", "token_type_ids")},
                                       return_tensors="pt")
            with torch.inference_mode():
                probabilities += list(torch.softmax(self.model(**batch).logits.float(), -1).numpy())
        result: list[list[Entity]] = [[] for _ in texts]
        for w, (t, probs) in enumerate(zip(windows, probabilities)):
            word_ids = encoded.word_ids(w)
            offsets = [(words[t][i][0] + a, words[t][i][0] + b) if i is not None else (0, 0)
                       for i, (a, b) in zip(word_ids, encoded["offset_mapping"][w])]
            result[t] += _entities(texts[t], word_ids, offsets, probs, self.model.config.id2label)
        return result


def _entities(text: str, word_ids, offsets, probs: np.ndarray, id2label) -> list[Entity]:
    """Merge word-level B-/I- labels (each word labelled by its first piece) into whole entities."""
    words: list[tuple[int, int, str, float]] = []  # (start, end, label, probability)
    previous = None
    for t, word in enumerate(word_ids):
        if word is None:
            previous = None
            continue
        if word == previous:  # later pieces of the same word extend it
            words[-1] = (words[-1][0], offsets[t][1], words[-1][2], words[-1][3])
            continue
        previous = word
        best = int(probs[t].argmax())
        words.append((offsets[t][0], offsets[t][1], id2label[best], float(probs[t][best])))
    entities: list[Entity] = []
    current: list = []
    for start, end, label, p in words + [(0, 0, "O", 1.0)]:
        kind = label[2:] if "-" in label else None
        continues = current and label.startswith("I-") and kind == current[0][2][2:]
        if current and not continues:
            first, last = current[0], current[-1]
            entities.append(Entity(text[first[0] : last[1]], first[2][2:], first[0], last[1],
                                   float(np.mean([x[3] for x in current]))))
            current = []
        if kind and (continues or label.startswith(("B-", "I-"))):
            current.append((start, end, label, p))
    return entities


class TextClassifier(ModelRunner):
    """``TextClassifier(model).classify(texts)``: one label and its probability per text (sentiment by default)."""

    auto_class = "AutoModelForSequenceClassification"
    what = "sentiment model"
    train_hint = "search train sentiment --data train.tsv --dev dev.tsv --output DIR"

    def __init__(self, model: str | Path | None = None, batch_size: int = 32, max_length: int = 256,
                 precision: str = "auto"):
        super().__init__(model, precision)
        self.batch_size, self.max_length = batch_size, max_length

    @classmethod
    def default_model(cls) -> Path:
        return DEFAULT_SENTIMENT

    @property
    def labels(self) -> list[str]:
        return [self.model.config.id2label[i] for i in range(self.model.config.num_labels)]

    def classify(self, texts: Sequence[str]) -> list[Label]:
        import torch

        order = sorted(range(len(texts)), key=lambda i: len(texts[i]))
        results: dict[int, Label] = {}
        for b in range(0, len(order), self.batch_size):
            chunk = order[b : b + self.batch_size]
            batch = self.tokenizer([texts[i] for i in chunk], truncation=True, max_length=self.max_length,
                                   padding=True, return_tensors="pt")
            with torch.inference_mode():
                probs = torch.softmax(self.model(**batch).logits.float(), -1).numpy()
            for row, i in enumerate(chunk):
                best = int(probs[row].argmax())
                results[i] = Label(self.model.config.id2label[best], float(probs[row][best]))
        return [results[i] for i in range(len(texts))]


# --- enrichment of an index -------------------------------------------------------------------------

@dataclass
class Enricher:
    """One enrichment task: ``ner`` (entities) or a classification (``sentiment``, ``classify:PATH``)."""

    task: str
    model: str = ""  # a model folder; "" for the shipped default

    @classmethod
    def parse(cls, spec: str) -> "Enricher":
        """``ner``, ``sentiment``, ``ner:PATH``, ``sentiment:PATH`` or ``classify:PATH`` (named after
        the model folder, or its parent when that is ``best``)."""
        name, _, model = spec.strip().partition(":")
        if name in ("ner", "sentiment"):
            return cls(name, model)
        if name == "classify" and model:
            folder = Path(model)
            return cls((folder.parent.name if folder.name == "best" else folder.name) or "classify", model)
        raise ValueError(f"Unknown enrichment {spec!r}: use ner, sentiment or classify:MODEL_FOLDER (optionally ner:FOLDER)")

    @cached_property
    def runner(self):
        """At index time the models run in bfloat16 on CPUs with bfloat16 instructions, else with int8
        linear layers, and classifiers read the first 128 tokens of a passage: that keeps enrichment
        within the time of indexing itself (see README; int8 costs NER 0.2 F1 on CoNLL test, bfloat16 nothing)."""
        precision = "bfloat16" if native_bfloat16() else "int8"
        if self.task == "ner":
            return EntityTagger(self.model or None, precision=precision)
        return TextClassifier(self.model or None, max_length=128, precision=precision)

    def run(self, texts: list[str], starts: list[int]) -> list:
        """Results per text; entity offsets are shifted by ``starts`` (passage -> document offsets)."""
        if self.task != "ner":
            return self.runner.classify(texts)
        out = []
        for entities, start in zip(self.runner.tag(texts), starts):
            out.append([Entity(e.text, e.label, e.start + start, e.end + start, e.score) for e in entities])
        return out


def parse_enrichers(specs) -> list[Enricher]:
    """Enrichers from ``"ner,sentiment"`` or a list of specs."""
    if isinstance(specs, str):
        specs = specs.split(",")
    return [Enricher.parse(s) for s in specs if s.strip()]
