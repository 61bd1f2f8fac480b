"""Enrichment of an index: tasks that tag every passage at index time and store what they found.

Two kinds with one interface (``task``, ``model``, ``languages``, ``run``, ``save``): ``EntityEnricher`` (named
entities, into the ``entities`` table) and ``LabelEnricher`` (sentiment or any classifier trained
with ``search train classifier``, into ``labels``).
"""

from __future__ import annotations

import sqlite3
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path
from typing import Sequence

from .classification import Label, TextClassifier
from .entity_keys import entity_key
from .language import readable_by
from .russian_ner import LANGUAGES as RUSSIAN, RussianEntityTagger
from .tagging import Entity, EntityTagger


#: The languages of the shipped NER and sentiment models (NER reads Russian too, through natasha).
SHIPPED_LANGUAGES = frozenset({"en"})


def mark_enriched(conn: sqlite3.Connection, task: str, passage_ids: Sequence[int]) -> None:
    """Record that ``task`` has seen these passages (whether it found anything or not)."""
    conn.executemany("INSERT OR IGNORE INTO enriched VALUES (?, ?)", [(pid, task) for pid in passage_ids])


class _ModelLanguages:
    model: str

    @property
    def languages(self) -> frozenset[str] | None:
        """The languages its model reads (None: any, for a model of the user's)."""
        return None if self.model else SHIPPED_LANGUAGES


@dataclass
class EntityEnricher(_ModelLanguages):
    """Named entities of each passage, with offsets in its document: by default the shipped model
    for English and natasha for Russian."""

    model: str = ""  # a model folder; "" for the shipped default
    task = "ner"

    @property
    def languages(self) -> frozenset[str] | None:
        return None if self.model else SHIPPED_LANGUAGES | RUSSIAN

    @cached_property
    def runner(self) -> EntityTagger:
        return EntityTagger(self.model or None)  # int8 on ONNX Runtime: docs/speed.md

    @cached_property
    def russian(self) -> RussianEntityTagger:
        return RussianEntityTagger()

    def run(self, texts: Sequence[str], starts: Sequence[int], languages: Sequence[str | None]) -> list[list[Entity]]:
        """Entities per text; offsets are shifted by ``starts`` (passage -> document offsets)."""
        russian = [not self.model and language in RUSSIAN for language in languages]
        found: list[list[Entity]] = [[] for _ in texts]
        for tagger, wanted in ((self.russian, True), (self.runner, False)):
            chosen = [i for i, r in enumerate(russian) if r == wanted]
            for i, entities in zip(chosen, tagger.tag([texts[i] for i in chosen]) if chosen else []):
                found[i] = [Entity(e.text, e.label, e.start + starts[i], e.end + starts[i], e.score) for e in entities]
        return found

    def save(self, conn: sqlite3.Connection, passage_ids: Sequence[int], document_ids: Sequence[int],
             results: list[list[Entity]]) -> None:
        conn.executemany(
            "INSERT INTO entities (passage_id, document_id, text, label, start_char, end_char, score, key)"
            " VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
            [(pid, did, e.text, e.label, e.start, e.end, e.score, entity_key(e.text))
             for pid, did, found in zip(passage_ids, document_ids, results) for e in found],
        )


@dataclass
class LabelEnricher(_ModelLanguages):
    """One label per passage from a text classifier: ``sentiment`` or a named classifier."""

    task: str = "sentiment"
    model: str = ""  # a model folder; "" for the shipped sentiment model

    @cached_property
    def runner(self) -> TextClassifier:
        """Classifiers read the first 128 tokens of a passage at index time."""
        return TextClassifier(self.model or None, max_length=128)

    def run(self, texts: Sequence[str], starts: Sequence[int], languages: Sequence[str | None]) -> list[Label]:
        return self.runner.classify(list(texts))

    def save(self, conn: sqlite3.Connection, passage_ids: Sequence[int], document_ids: Sequence[int],
             results: list[Label]) -> None:
        conn.executemany("INSERT OR REPLACE INTO labels VALUES (?, ?, ?, ?, ?)",
                         [(pid, did, self.task, r.label, r.score) for pid, did, r in zip(passage_ids, document_ids, results)])


Enricher = EntityEnricher | LabelEnricher


def make_enricher(task: str, model: str = "") -> Enricher:
    """The enricher of a task as recorded in an index's meta."""
    return EntityEnricher(model) if task == "ner" else LabelEnricher(task, model)


def run_readable(enricher: Enricher, texts: Sequence[str], starts: Sequence[int], languages: Sequence[str]) -> list:
    """What ``enricher`` finds in each passage, ``None`` for those in languages its model does not read."""
    readable = [i for i, language in enumerate(languages) if readable_by(enricher.languages, language)]
    found: list = [None] * len(texts)
    if readable:
        for i, result in zip(readable, enricher.run([texts[i] for i in readable], [starts[i] for i in readable],
                                                    [languages[i] for i in readable])):
            found[i] = result
    return found


def parse_enricher(spec: str) -> Enricher:
    """``ner``, ``sentiment``, ``ner:PATH``, ``sentiment:PATH`` or ``classify:PATH`` (named after
    the model folder, or its parent when that is ``best``)."""
    name, _, model = spec.strip().partition(":")
    if name in ("ner", "sentiment"):
        return make_enricher(name, model)
    if name == "classify" and model:
        folder = Path(model)
        return LabelEnricher((folder.parent.name if folder.name == "best" else folder.name) or "classify", model)
    raise ValueError(f"Unknown enrichment {spec!r}: use ner, sentiment or classify:MODEL_FOLDER (optionally ner:FOLDER)")


def parse_enrichers(specs) -> list[Enricher]:
    """Enrichers from ``"ner,sentiment"`` or a list of specs."""
    if isinstance(specs, str):
        specs = specs.split(",")
    return [parse_enricher(s) for s in specs if s.strip()]
