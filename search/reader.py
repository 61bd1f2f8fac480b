"""Extractive question answering: find the answer span to a question in passages.

Question and passage go into the model together; a passage longer than the window is split into
overlapping windows (``stride``), never truncated. Decoding keeps only spans inside the passage,
with end >= start and at most ``max_answer_tokens`` tokens, and scores a span by the sum of its start
and end logits, which is comparable across windows and passages.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path
from typing import Sequence

import numpy as np

from .runner import ModelRunner

#: The reader this project trains and ships (see its finetuned.json for data, recipe and metrics).
DEFAULT_READER = Path(__file__).resolve().parent / "reader_model"


@dataclass
class Answer:
    text: str
    score: float  # confidence: softmax of the span logits over every candidate of the call
    logit: float  # start + end logit
    passage: int  # index of the passage it was found in
    start: int  # character offsets in that passage
    end: int


def best_spans(start_logits: np.ndarray, end_logits: np.ndarray, first: int, last: int,
               top_n: int = 20, max_tokens: int = 30) -> list[tuple[float, int, int]]:
    """The best (logit, start token, end token) spans with first <= start <= end <= last.

    Only the ``top_n`` start and end positions inside [first, last] are paired, and a span has at
    most ``max_tokens`` tokens. Sorted best first.
    """
    if last < first:
        return []
    starts = first + np.argsort(start_logits[first : last + 1])[::-1][:top_n]
    ends = first + np.argsort(end_logits[first : last + 1])[::-1][:top_n]
    spans = [
        (float(start_logits[s] + end_logits[e]), int(s), int(e))
        for s in starts for e in ends if s <= e < s + max_tokens
    ]
    return sorted(spans, reverse=True)


class Reader(ModelRunner):
    """``Reader(model).read(question, passages)`` returns ranked answers.

    ``model`` is a folder of an ``AutoModelForQuestionAnswering`` (or one made by ``search train
    reader``) or a hub id (online only); ``Reader()`` loads the reader this project ships.
    """

    auto_class = "AutoModelForQuestionAnswering"
    what = "reader"
    train_hint = "search train reader --data train-v1.1.json --output DIR"

    def __init__(self, model: str | None = None, max_length: int = 256, stride: int = 96, max_answer_tokens: int = 30,
                 top_n: int = 20, batch_size: int = 16, precision: str = "auto"):
        super().__init__(model, precision)
        self.max_length, self.stride = max_length, stride
        self.max_answer_tokens, self.top_n, self.batch_size = max_answer_tokens, top_n, batch_size

    @classmethod
    def default_model(cls) -> Path:
        return DEFAULT_READER

    def _windows(self, question: str, passages: Sequence[str]):
        return self.tokenizer(
            [question] * len(passages), list(passages), truncation="only_second", max_length=self.max_length,
            stride=self.stride, return_overflowing_tokens=True, return_offsets_mapping=True, padding="longest",
        )

    def _logits(self, encoded) -> tuple[np.ndarray, np.ndarray]:
        import torch

        names = [n for n in ("input_ids", "attention_mask", "token_type_ids") if n in encoded]
        starts, ends = [], []
        for b in range(0, len(encoded["input_ids"]), self.batch_size):
            batch = {n: torch.tensor(encoded[n][b : b + self.batch_size]) for n in names}
            with torch.inference_mode():
                out = self.model(**batch)
            starts.append(out.start_logits.float().cpu().numpy())
            ends.append(out.end_logits.float().cpu().numpy())
        return np.concatenate(starts), np.concatenate(ends)

    def read(self, question: str, passages: Sequence[str], top_k: int = 5,
             passage_bias: Sequence[float] | None = None, no_answer_threshold: float | None = None) -> list[Answer]:
        """The ``top_k`` best answers to ``question`` found in ``passages``, best first.

        ``passage_bias`` is added to the logits of every span of a passage (retrieval evidence).
        With ``no_answer_threshold``, nothing is returned unless the best span beats the model's
        no-answer score (the [CLS] span, lowest over windows) by at least that many logits; the
        reader's own logits, before ``passage_bias``, since the bias says nothing about that.
        """
        if not passages or not question.strip():
            return []
        encoded = self._windows(question, passages)
        start_logits, end_logits = self._logits(encoded)
        candidates, no_answer, best_span = [], math.inf, -math.inf
        for w in range(len(encoded["input_ids"])):
            sequence_ids = encoded.sequence_ids(w)
            context = [i for i, s in enumerate(sequence_ids) if s == 1]
            if not context:
                continue
            passage = encoded["overflow_to_sample_mapping"][w]
            offsets = encoded["offset_mapping"][w]
            bias = passage_bias[passage] if passage_bias is not None else 0.0
            no_answer = min(no_answer, float(start_logits[w][0] + end_logits[w][0]))
            for logit, s, e in best_spans(start_logits[w], end_logits[w], context[0], context[-1],
                                          self.top_n, self.max_answer_tokens):
                candidates.append((logit + bias, passage, offsets[s][0], offsets[e][1]))
                best_span = max(best_span, logit)
        if no_answer_threshold is not None and best_span < no_answer + no_answer_threshold:
            return []
        return _rank(candidates, passages, top_k)


def _rank(candidates: list[tuple[float, int, int, int]], passages: Sequence[str], top_k: int) -> list[Answer]:
    """Softmax over all candidate spans; one answer per distinct (passage, start, end), best first."""
    best: dict[tuple[int, int, int], float] = {}
    for logit, passage, start, end in candidates:  # a span seen in two overlapping windows counts once
        key = (passage, start, end)
        best[key] = max(logit, best.get(key, -math.inf))
    if not best:
        return []
    top = max(best.values())
    total = sum(math.exp(v - top) for v in best.values())
    answers = []
    for (passage, start, end), logit in sorted(best.items(), key=lambda kv: kv[1], reverse=True):
        text = passages[passage][start:end]
        answers.append(Answer(text, math.exp(logit - top) / total, logit, passage, start, end))
        if len(answers) == top_k:
            break
    return answers


@dataclass
class FoundAnswer:
    """An answer found in the index: the span, where it is, and how sure the reader is."""

    text: str
    score: float  # reader confidence, summed over the passages that gave the same answer
    path: str
    title: str
    start: int  # character offsets of the span in the document's text
    end: int
    page: int | None
    sentence: str  # the sentence around the span
    sentence_offset: int  # where the span starts inside ``sentence``
    passage_rank: int  # retrieval rank of the passage it came from
    sources: int = 1  # how many passages gave this answer
    section: str = ""  # heading path of its passage

    def to_dict(self) -> dict:
        return dict(self.__dict__)


def sentence_around(text: str, start: int, end: int) -> tuple[str, int]:
    """The sentence of ``text`` holding [start, end), and the span's offset inside it."""
    from .passages import sentence_starts

    starts = sentence_starts(text)
    begin = max((s for s in starts if s <= start), default=0)
    finish = min((s for s in starts if s >= end), default=len(text))
    raw = text[begin:finish]
    stripped = raw.lstrip()
    return stripped.rstrip(), start - begin - (len(raw) - len(stripped))


#: Logits added to a span per unit of its passage's retrieval score relative to the best retrieved
#: passage (chosen by measurement, docs/results.md).
RETRIEVAL_WEIGHT = 16.0


def retrieval_evidence(hits: list, weight: float) -> list[float]:
    """``weight * score / best score`` per hit: hybrid, cosine and BM25 scores on one scale (0 to 1)."""
    top = max((h.score for h in hits), default=0.0)
    return [weight * max(h.score, 0.0) / top if top > 0 else 0.0 for h in hits]


def answers_from_hits(reader: Reader, question: str, hits: list, answers: int = 3,
                      retrieval_weight: float | None = None, no_answer_threshold: float | None = None) -> list[FoundAnswer]:
    """Read retrieved passages (``Hit``s) and merge identical answers from different passages."""
    from .metrics import normalize_answer

    weight = RETRIEVAL_WEIGHT if retrieval_weight is None else retrieval_weight
    merged: dict[str, FoundAnswer] = {}
    for a in reader.read(question, [h.text for h in hits], top_k=max(answers * 5, 10),
                         passage_bias=retrieval_evidence(hits, weight), no_answer_threshold=no_answer_threshold):
        key = normalize_answer(a.text) or a.text
        if key in merged:
            merged[key].score += a.score
            merged[key].sources += 1
            continue
        hit = hits[a.passage]
        sentence, offset = sentence_around(hit.text, a.start, a.end)
        merged[key] = FoundAnswer(
            text=a.text, score=a.score, path=hit.path, title=hit.title, start=hit.start + a.start,
            end=hit.start + a.end, page=hit.page, sentence=sentence, sentence_offset=offset, passage_rank=hit.rank,
            section=hit.section,
        )
    return sorted(merged.values(), key=lambda f: f.score, reverse=True)[:answers]
