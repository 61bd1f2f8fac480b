"""Named entities: a token classifier's word labels merged into whole entities with character offsets."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Sequence

import numpy as np

from .conll import Sentence, pack_sentences, split_words, unpack_tags
from .exported import Windows, padded
from .runner import ModelRunner, softmax

#: The NER model this project trains and ships (its finetuned.json has data, recipe and metrics).
DEFAULT_NER = Path(__file__).resolve().parent / "ner_model"


@dataclass
class Entity:
    text: str
    label: str
    start: int  # character offsets in the text that was tagged
    end: int
    score: float | None  # mean probability of its words' labels; None from a tagger without them

    def to_dict(self) -> dict:
        return dict(self.__dict__)


def batches(n: int, size: int):
    """Index lists of consecutive items, ``size`` at a time."""
    order = list(range(n))
    for b in range(0, n, size):
        yield order[b : b + size]


def case_types(word_ids, offsets, word_text: Callable[[int], str]) -> list[int]:
    """Token type 1 for word pieces that start with a capital letter, else 0.

    The bundled encoder is uncased, and capitals are the strongest clue to a name. A tagger trained
    with ``config.case_feature`` gets them back through BERT's token type embedding (2 x 384
    weights; CoNLL test: docs/results.md). ``word_text(w)`` is the text that the offsets of word ``w``
    point into: the word itself for pre-split words, the whole text otherwise.
    """
    return [int(w is not None and word_text(w)[s : s + 1].isupper()) for w, (s, _) in zip(word_ids, offsets)]


def predict_word_tags(tagger: "EntityTagger", sentences: list[list[str]], max_length: int = 128) -> list[list[str]]:
    """BIO tags for pre-split words (each word takes its first word piece's label; cut words get O)."""
    encoded, logits = tagger.window_logits(sentences, max_length, overflow=False)
    out = []
    for row, words in enumerate(sentences):
        tags, seen = ["O"] * len(words), set()
        for t, word in enumerate(encoded.word_ids(row)):
            if word is not None and word not in seen:
                seen.add(word)
                tags[word] = tagger.id2label[int(logits[row][t].argmax())]
        out.append(tags)
    return out


def tag_documents(tagger: "EntityTagger", documents: list[list[Sentence]], max_length: int = 128,
                  context: bool = True) -> list[list[str]]:
    """Predicted BIO tags of every sentence of CoNLL ``documents``: in runs of consecutive sentences
    (``pack_sentences``), or one sentence at a time without ``context``."""
    if not context:
        return predict_word_tags(tagger, [w for d in documents for w, _ in d], max_length)
    packed = pack_sentences(tagger.tokenizer, documents, max_length)
    return unpack_tags(documents, predict_word_tags(tagger, [w for w, _ in packed], max_length))


class EntityTagger(ModelRunner):
    """``EntityTagger(model).tag(texts)``: whole named entities with character offsets."""

    auto_class = "AutoModelForTokenClassification"
    what = "NER model"
    train_hint = "search train ner --data eng.train --dev eng.testa --output DIR"

    def __init__(self, model: str | Path | None = None, batch_size: int = 16, max_length: int = 256,
                 precision: str = "auto", backend: str = "auto"):
        super().__init__(model, precision, backend)
        self.batch_size, self.max_length = batch_size, max_length

    @classmethod
    def default_model(cls) -> Path:
        return DEFAULT_NER

    def tag(self, texts: Sequence[str]) -> list[list[Entity]]:
        """Entities of each text. Texts longer than the window are tagged in consecutive windows."""
        words = [split_words(text) for text in texts]
        todo = [t for t, w in enumerate(words) if w]
        encoded, logits = self.window_logits([[word for _, word in words[t]] for t in todo])
        result: list[list[Entity]] = [[] for _ in texts]
        for w, sample in enumerate(encoded["overflow_to_sample_mapping"]):
            t = todo[sample]
            word_ids = encoded.word_ids(w)
            offsets = [(words[t][i][0] + a, words[t][i][0] + b) if i is not None else (0, 0)
                       for i, (a, b) in zip(word_ids, encoded["offset_mapping"][w])]
            result[t] += _entities(texts[t], word_ids, offsets, softmax(logits[w]), self.id2label)
        return result

    @property
    def case_feature(self) -> bool:
        """Whether the model reads capitals through its token types (``case_types``)."""
        if self.session is not None:
            return bool(self.config.get("case_feature"))
        return bool(getattr(self.model.config, "case_feature", False))

    def window_logits(self, word_lists: list[list[str]], max_length: int | None = None, overflow: bool = True):
        """The windows of ``max_length`` tokens of each list of words (the rest in further windows
        with ``overflow``, else cut), as the transformers tokenizer gives them (through ``tokenizers``
        alone on ONNX Runtime), and the logits of each window."""
        max_length = max_length or self.max_length
        if self.session is None:
            encoded = self.tokenizer(word_lists, is_split_into_words=True, truncation=True, max_length=max_length,
                                     stride=0, return_overflowing_tokens=overflow, return_offsets_mapping=True)
        else:
            tokenizer = self.fast_tokenizer.truncated(max_length=max_length, stride=0)
            encoded = Windows(tokenizer.encode_batch(word_lists, is_pretokenized=True), overflow)
        samples = encoded.get("overflow_to_sample_mapping") or list(range(len(word_lists)))
        encoded["overflow_to_sample_mapping"] = samples
        if self.case_feature:
            encoded["token_type_ids"] = [case_types(encoded.word_ids(w), offsets, word_lists[samples[w]].__getitem__)
                                         for w, offsets in enumerate(encoded["offset_mapping"])]
        logits = []
        for chunk in batches(len(samples), self.batch_size):
            longest = max(len(encoded["input_ids"][i]) for i in chunk)
            inputs = {k: padded([encoded[k][i] for i in chunk], longest) for k in ("input_ids", "attention_mask", "token_type_ids")}
            logits += [row[: len(encoded["input_ids"][i])] for row, i in zip(self._logits(inputs), chunk)]
        return encoded, logits

    def _logits(self, inputs: dict[str, np.ndarray]) -> np.ndarray:
        if self.session is not None:
            return self.session.run(inputs)[0]
        import torch

        with torch.inference_mode():
            return self.model(**{k: torch.from_numpy(v) for k, v in inputs.items()}).logits.float().numpy()


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
