"""Extractive question answering: find the answer span to a question in passages.

Question and passage go into the model together; a passage longer than the window is split into
overlapping windows (``stride``), never truncated. Decoding keeps only spans inside the passage,
with end >= start and at most ``max_answer_tokens`` tokens, and scores a span by the sum of its start
and end logits, which is comparable across windows and passages.
"""

from __future__ import annotations

import json
import math
import re
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path
from typing import Sequence

import numpy as np

from .exported import Windows, padded
from .runner import ModelRunner

#: The reader this project trains and ships (see its finetuned.json for data, recipe and metrics).
DEFAULT_READER = Path(__file__).resolve().parent / "reader_model"
#: Trained from multilingual-e5-small on SQuAD (English): reads Russian and other languages zero-shot.
MULTILINGUAL_READER = Path(__file__).resolve().parent / "multilingual_reader_model"
#: The languages the shipped reader reads: it was trained on SQuAD, in English.
SHIPPED_LANGUAGES = frozenset({"en"})


def shipped_readers() -> dict[str, Path]:
    """The readers this project ships, by the names ``Reader`` and ``--reader`` take."""
    return {"english": DEFAULT_READER, "multilingual": MULTILINGUAL_READER}


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


#: ``Reader.read(threshold=DEFAULT)``: the threshold the reader's calibration chose.
DEFAULT = "default"
CALIBRATION = "calibration.json"


@dataclass(frozen=True)
class Calibration:
    """How a reader's no-answer margin becomes a probability that its best span is right:
    ``sigmoid(scale * margin + bias)``, and below which confidence it says "no answer" (fitted on
    questions held out of training: ``search train calibrate``)."""

    scale: float
    bias: float
    threshold: float

    def answerable(self, margin: float) -> float:
        return 1 / (1 + math.exp(-(self.scale * margin + self.bias)))


def length_batches(lengths: Sequence[int], size: int, waste: float = 0.1) -> list[list[int]]:
    """Indices of ``lengths`` in batches of at most ``size``, longest first, each closed before its
    padding would exceed ``waste`` of its tokens: on a CPU a padding token costs as much as a word
    (retrieved passages differ in length: padded together, 40% of the demo's tokens were padding)."""
    batches: list[list[int]] = []
    total = 0
    for i in sorted(range(len(lengths)), key=lambda i: -lengths[i]):
        current = batches[-1] if batches else []
        if current and len(current) < size and (len(current) + 1) * lengths[current[0]] * (1 - waste) <= total + lengths[i]:
            current.append(i)
            total += lengths[i]
        else:
            batches.append([i])
            total = lengths[i]
    return batches


class Reader(ModelRunner):
    """``Reader(model).read(question, passages)`` returns ranked answers, or none when it is not sure.

    ``model`` is a folder of an ``AutoModelForQuestionAnswering`` (or one made by ``search train
    reader``), a hub id (online only), or a shipped reader by name: ``Reader()`` or
    ``Reader("english")`` loads the English one, ``Reader("multilingual")`` the multilingual one.
    """

    auto_class = "AutoModelForQuestionAnswering"
    outputs = ("start_logits", "end_logits")
    what = "reader"
    train_hint = "search train reader --data train-v1.1.json --output DIR"

    def __init__(self, model: str | None = None, max_length: int = 256, stride: int = 96, max_answer_tokens: int = 30,
                 top_n: int = 20, batch_size: int = 16, precision: str = "auto", backend: str = "auto"):
        super().__init__(shipped_readers().get(str(model).lower(), model) if model else None, precision, backend)
        self.max_length, self.stride = max_length, stride
        self.max_answer_tokens, self.top_n, self.batch_size = max_answer_tokens, top_n, batch_size

    @classmethod
    def default_model(cls) -> Path:
        return DEFAULT_READER

    @classmethod
    def shipped_models(cls) -> list[Path]:
        return list(shipped_readers().values())

    @classmethod
    def for_encoder(cls, encoder_model: str, **options) -> "Reader":
        """The shipped reader for an index built with ``encoder_model``: the multilingual one for the
        multilingual encoder, else the English one."""
        from .models import is_multilingual

        return cls("multilingual" if is_multilingual(encoder_model) else None, **options)

    @property
    def languages(self) -> frozenset[str] | None:
        """The languages it reads (None: any, for a model of the user's)."""
        return SHIPPED_LANGUAGES if self.model_name == str(DEFAULT_READER) else None

    def reads(self, hit) -> bool:
        """Whether it reads a retrieved passage: one in its languages, of unknown language, or code
        (whose detected language means nothing: doctests of hashes come out as 'zxx' or Latin)."""
        from .language import readable_by

        return hit.code or readable_by(self.languages, hit.language)

    def unread_language(self, question: str, hits: Sequence = ()) -> str | None:
        """Why this reader can give no answer, as a sentence: ``question`` is in a language it does
        not read, or every one of ``hits`` is; else None."""
        from .language import detect_language, named, readable_by

        reads = (f"the shipped reader reads {named(self.languages or ())} only"
                 " (--reader multilingual reads other languages)")
        language = detect_language(question)
        if not readable_by(self.languages, language):
            return f"The question looks like {named([language])}; {reads}."
        if hits and not any(map(self.reads, hits)):
            return f"The passages found are in {named({h.language for h in hits})}; {reads}."
        return None

    @classmethod
    def from_model(cls, model, tokenizer, **options):
        runner = super().from_model(model, tokenizer, **options)
        runner.__dict__.update(calibration=None)  # a model in training: no calibration yet
        return runner

    @cached_property
    def _fast_tokenizer(self):
        return self.fast_tokenizer.truncated(max_length=self.max_length, stride=self.stride, strategy="only_second")

    @cached_property
    def calibration(self) -> Calibration | None:
        """The model folder's calibration.json; without one, every span counts as answerable."""
        path = Path(self.path) / CALIBRATION
        return Calibration(**json.loads(path.read_text())) if path.is_file() else None

    def threshold_for(self, threshold: float | str | None) -> float | None:
        """``DEFAULT`` made concrete: the calibrated threshold (None for an uncalibrated reader)."""
        if threshold == DEFAULT:
            return self.calibration.threshold if self.calibration else None
        return threshold

    def _windows(self, question: str, passages: Sequence[str]):
        """The (question, passage) windows, as the transformers tokenizer gives them: ``input_ids``,
        ``attention_mask``, ``token_type_ids``, ``offset_mapping``, ``overflow_to_sample_mapping``
        and ``sequence_ids(w)`` (through ``tokenizers`` alone on ONNX Runtime)."""
        if self.session is None:
            return self.tokenizer(
                [question] * len(passages), list(passages), truncation="only_second", max_length=self.max_length,
                stride=self.stride, return_overflowing_tokens=True, return_offsets_mapping=True, padding="longest",
            )
        return Windows(self._fast_tokenizer.encode_batch([(question, p) for p in passages]))

    def _logits(self, encoded) -> tuple[np.ndarray, np.ndarray]:
        """Start and end logits of every window; padding positions get -1e4."""
        names = [n for n in ("input_ids", "attention_mask", "token_type_ids") if n in encoded]
        lengths = [sum(mask) for mask in encoded["attention_mask"]]
        shape = (len(lengths), max(len(ids) for ids in encoded["input_ids"]))
        starts, ends = np.full(shape, -1e4, dtype=np.float32), np.full(shape, -1e4, dtype=np.float32)
        for batch in length_batches(lengths, self.batch_size):
            longest = lengths[batch[0]]
            inputs = {n: padded([encoded[n][w] for w in batch], longest) for n in names}
            starts[batch, :longest], ends[batch, :longest] = self._forward(inputs)
        return starts, ends

    def _forward(self, inputs: dict[str, np.ndarray]) -> tuple[np.ndarray, np.ndarray]:
        if self.session is not None:
            start, end = self.session.run(inputs)
            return start, end
        import torch

        with torch.inference_mode():
            out = self.model(**{n: torch.from_numpy(v) for n, v in inputs.items()})
        return out.start_logits.float().cpu().numpy(), out.end_logits.float().cpu().numpy()

    def spans(self, question: str, passages: Sequence[str], passage_bias: Sequence[float] | None = None,
              body_starts: Sequence[int] | None = None) -> tuple[list[tuple[float, int, int, int]], float]:
        """Candidate spans as (logit + bias, passage, start, end) and the no-answer margin.

        A span lies inside one sentence of its passage, at or after its ``body_starts`` offset
        (past the headings it begins with), and starts and ends on word boundaries.
        The margin is the most any window's best span beats that window's no-answer ([CLS]) score,
        in the reader's own logits (``passage_bias`` says nothing about whether there is an answer).
        """
        from .passages import sentence_starts

        encoded = self._windows(question, passages)
        start_logits, end_logits = self._logits(encoded)
        breaks = [sentence_starts(p) for p in passages]
        candidates, margin = [], -math.inf
        for w in range(len(encoded["input_ids"])):
            context = [i for i, s in enumerate(encoded.sequence_ids(w)) if s == 1]
            if not context:
                continue
            passage = encoded["overflow_to_sample_mapping"][w]
            offsets, text = encoded["offset_mapping"][w], passages[passage]
            bias = passage_bias[passage] if passage_bias is not None else 0.0
            body = body_starts[passage] if body_starts is not None else 0
            no_answer = float(start_logits[w][0] + end_logits[w][0])
            for logit, s, e in best_spans(start_logits[w], end_logits[w], context[0], context[-1],
                                          self.top_n, self.max_answer_tokens):
                start, end = offsets[s][0], offsets[e][1]
                start += len(text[start:end]) - len(text[start:end].lstrip())  # "▁Д": SentencePiece offsets hold the space
                if start >= body and _acceptable(text, start, end, breaks[passage]):
                    candidates.append((logit + bias, passage, start, end))
                    margin = max(margin, logit - no_answer)
        return candidates, margin

    def read(self, question: str, passages: Sequence[str], top_k: int = 5, passage_bias: Sequence[float] | None = None,
             threshold: float | str | None = DEFAULT, body_starts: Sequence[int] | None = None) -> list[Answer]:
        """The ``top_k`` best answers to ``question`` found in ``passages``, best first; none when
        the best one's confidence is below ``threshold`` (``DEFAULT``: the calibrated one; None:
        never abstain).

        ``passage_bias`` is added to the logits of every span of a passage (retrieval evidence);
        ``body_starts`` says where each passage's text starts after its headings (``body_start``).
        An answer's confidence is the calibrated probability that the reader's best span is right
        times the answer's share of the softmax over all candidate spans.
        """
        if not passages or not question.strip():
            return []
        candidates, margin = self.spans(question, passages, passage_bias, body_starts)
        answerable = self.calibration.answerable(margin) if self.calibration and candidates else 1.0
        ranked = _rank(candidates, passages, top_k, answerable, asked_kind(question))
        return abstain(ranked, self.threshold_for(threshold))


def abstain(answers: list, threshold: float | None) -> list:
    """No answers when the best one's confidence is below ``threshold`` (None: keep them)."""
    return [] if threshold is not None and (not answers or answers[0].score < threshold) else answers


#: Characters a span does not end (or start) with: a person would not select them.
_DANGLING_END = ",;:"
_PAIRS = {"(": ")", "[": "]", "{": "}"}
_SAME_PAIRS = '"`'
#: Before a sentence start, the ends of abbreviations and initials, which do not end a sentence:
#: "C. J. Anderson", "U.S. Army", "Dr. Smith".
_ABBREVIATION = re.compile(r"(?:\b[A-Za-z]|(?:[A-Z]\.)+[A-Z]|\b[A-Z][a-z]{1,2})\.[\"')\]]*\s+$")


def _with_call_parentheses(text: str, end: int) -> int:
    """The end of a span, past the "()" right after it when it ends on a name: a call is written
    with them (`con.commit()`), where the reader stops at the name, a token of its own."""
    if end and (text[end - 1].isalnum() or text[end - 1] == "_") and text.startswith("()", end):
        return end + 2
    return end


#: A definition's signature on a line of its own, as reference pages start an entry: ``abs(x)``,
#: ``shuffle(x)``, ``Path.cwd()``: a name, then parameters (names, defaults, ``*``, ``/``, ``[``).
_SIGNATURE = re.compile(r"([A-Za-z_][\w.]*)\((?:[\w\s,=*/\[\].'\"-]*)\)")


def _name_of_signature(text: str, start: int, end: int) -> int:
    """The end of a span, at the defined name when the span is a whole signature line: a person
    asking which function does something wants ``abs``, not ``abs(x)``."""
    whole_line = (start == 0 or text[start - 1] == "\n") and (end == len(text) or text[end] == "\n")
    match = _SIGNATURE.fullmatch(text, start, end) if whole_line else None
    return match.end(1) if match and match.end(1) + 2 < end else end


def body_start(text: str, headings: set[str]) -> int:
    """Where a passage's text starts after the heading lines it begins with (a section's passage
    repeats its headings): a heading names a topic, it does not answer a question."""
    at = 0
    while True:
        line_end = text.find("\n", at)
        line_end = len(text) if line_end < 0 else line_end
        if not text[at:line_end].strip() or text[at:line_end].strip() not in headings:
            return at
        at = line_end
        while at < len(text) and text[at] in "\n ":
            at += 1


#: The kind of thing a question asks for when it names one: "Which function ...", "What built-in
#: function ...", "Which module ...".
_ASKED_KIND = re.compile(r"\s*(?:which|what)\s+(?:(?:built-in|standard)\s+)?([a-z][a-z-]+)\b", re.I)
_NOT_A_KIND = {"is", "are", "was", "were", "does", "do", "did", "can", "could", "should", "will", "would", "has",
               "have", "had", "happens", "kind", "kinds", "type", "types", "sort"}


def asked_kind(question: str) -> str | None:
    """The kind a question names ("function" in "Which function returns ..."), or None."""
    match = _ASKED_KIND.match(question)
    kind = match.group(1).lower() if match else None
    return None if kind in _NOT_A_KIND else kind


#: Kinds of things named by one identifier: asked which function, "re module" or "pseudo-random
#: generators" is not an answer.
_NAMED_KINDS = {"function", "method", "module", "class", "exception", "decorator", "attribute", "parameter",
                "argument", "keyword", "constant", "package"}


def fits_kind(answer: str, kind: str | None) -> bool:
    """Whether an answer can be the kind a question names: not the kind itself ("Level" to "Which
    level ..."), and one identifier (no space) when that kind is named by one."""
    if kind and answer.lower() in (kind, kind + "s"):
        return False
    return not (kind in _NAMED_KINDS and any(c.isspace() for c in answer))


def _without_kind(text: str, start: int, end: int, kind: str | None) -> tuple[int, int]:
    """A span without the kind the question names and the article or "built-in" that went with it:
    asked which statement, "The pass statement" answers "pass"; which module, "secrets module"
    "secrets"; which function, "the built-in function dir()" "dir()". Only the kind written in
    lower case goes: in "Levi's Stadium" or "Super Bowl XXXVII" it is part of a name."""
    if not kind:
        return start, end
    span = text[start:end]
    ending = re.search(rf"\s+{re.escape(kind)}s?$", span)
    if ending and ending.start() > 0:
        end = start + ending.start()
        article = re.match(r"(?:the|a|an)\s+(?=\S)", text[start:end], re.I)  # "The pass", once "statement" went
        start += article.end() if article else 0
    leading = re.match(rf"(?:(?:the|a|an)\s+)?(?:built-in\s+)?{re.escape(kind)}\s+(?=\S)", text[start:end], re.I)
    if leading and kind in leading.group(0):
        start += leading.end()
    return start, end


def _acceptable(text: str, start: int, end: int, sentence_starts: list[int]) -> bool:
    """A span a person would select: inside one sentence and one line (one table cell), whole words
    (a dotted name is one), no dangling punctuation, balanced brackets and quotes (an apostrophe
    inside a span is fine: Workers' Party)."""
    if end <= start or any(start < b < end and not _ABBREVIATION.search(text[max(0, b - 8):b]) for b in sentence_starts):
        return False
    if start > 0 and text[start - 1].isalnum() and text[start].isalnum():
        return False
    if end < len(text) and text[end - 1].isalnum() and text[end].isalnum():
        return False
    if text[end - 1].isalnum() and text[end : end + 1] == "." and text[end + 1 : end + 2].isalnum():
        return False  # "sys" of sys.path, "3" of 3.11: a dotted name is one word
    span = text[start:end]
    if "\n" in span or " | " in span:  # across lines, or across the cells of a table row (markup.py)
        return False
    if span[-1] in _DANGLING_END or span[0] in _DANGLING_END + ")]}":
        return False
    if any(span.count(o) != span.count(c) for o, c in _PAIRS.items()) or any(span.count(q) % 2 for q in _SAME_PAIRS):
        return False
    return not (span[0] == "'" and span.count("'") == 1)


def _rank(candidates: list[tuple[float, int, int, int]], passages: Sequence[str], top_k: int,
          answerable: float = 1.0, kind: str | None = None) -> list[Answer]:
    """One answer per distinct (passage, start, end), best first; confidence ``answerable`` times
    the softmax share over all candidate spans. A whole signature line answers with its name
    (``_name_of_signature``); a span ending on a called name takes the "()" after it
    (``_with_call_parentheses``); a span drops the kind the question asks for (``_without_kind``);
    the spans that become one answer add up their shares; answers that cannot be of that kind go
    (``fits_kind``)."""
    best: dict[tuple[int, int, int], float] = {}
    for logit, passage, start, end in candidates:  # a span seen in two overlapping windows counts once
        key = (passage, start, end)
        best[key] = max(logit, best.get(key, -math.inf))
    if not best:
        return []
    top = max(best.values())
    total = sum(math.exp(v - top) for v in best.values())
    answers: dict[tuple[int, int, int], Answer] = {}
    for (passage, start, end), logit in best.items():
        text = passages[passage]
        start, end = _without_kind(text, start, _name_of_signature(text, start, end), kind)
        end = _with_call_parentheses(text, end)
        share = answerable * math.exp(logit - top) / total
        if (passage, start, end) in answers:
            same = answers[(passage, start, end)]
            same.score, same.logit = same.score + share, max(same.logit, logit)
        else:
            answers[(passage, start, end)] = Answer(text[start:end], share, logit, passage, start, end)
    kept = [a for a in answers.values() if fits_kind(a.text, kind)]  # what the others held is lost, not shared
    return sorted(kept, key=lambda a: a.score, reverse=True)[:top_k]


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
    document_id: int | None = None
    passage_id: int | None = None  # the passage it came from

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


#: Candidate spans merged into answers: enough that the best answer does not depend on how many are asked for.
CANDIDATES = 15


def answers_from_hits(reader: Reader, question: str, hits: list, answers: int = 3,
                      retrieval_weight: float | None = None, threshold: float | str | None = DEFAULT) -> list[FoundAnswer]:
    """Read retrieved passages (``Hit``s) and merge identical answers from different passages
    (their confidences add up); none when the best merged answer is below ``threshold``."""
    from .language import detect_language, readable_by
    from .markup import PATH_SEPARATOR
    from .metrics import normalize_answer

    if not readable_by(reader.languages, detect_language(question)):
        return []
    hits = [h for h in hits if reader.reads(h)]  # an English reader reads no Russian
    weight = RETRIEVAL_WEIGHT if retrieval_weight is None else retrieval_weight
    merged: dict[str, FoundAnswer] = {}
    passages: dict[str, set[int]] = {}  # the passages that gave each answer
    # a section's passages start with its headings (not with the title: a text file's is its first line)
    bodies = [body_start(h.text, set(h.section.split(PATH_SEPARATOR)) - {""}) for h in hits]
    for a in reader.read(question, [h.text for h in hits], top_k=max(answers * 5, CANDIDATES),
                         passage_bias=retrieval_evidence(hits, weight), threshold=None, body_starts=bodies):
        key = normalize_answer(a.text) or a.text
        if key in merged:
            merged[key].score += a.score
            passages[key].add(a.passage)
            merged[key].sources = len(passages[key])
            continue
        passages[key] = {a.passage}
        hit = hits[a.passage]
        sentence, offset = sentence_around(hit.text, a.start, a.end)
        merged[key] = FoundAnswer(
            text=a.text, score=a.score, path=hit.path, title=hit.title, start=hit.start + a.start,
            end=hit.start + a.end, page=hit.page, sentence=sentence, sentence_offset=offset, passage_rank=hit.rank,
            section=hit.section, document_id=hit.document_id, passage_id=hit.passage_id,
        )
    return abstain(sorted(merged.values(), key=lambda f: f.score, reverse=True), reader.threshold_for(threshold))[:answers]
