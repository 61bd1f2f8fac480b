"""Filters on search results: document fields and metadata, entities, classification labels.

Each filter is a SQL condition over ``passages p JOIN documents d``, with its values as bound
parameters (never pasted into the SQL).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar, Iterable, Protocol

from .entity_keys import entity_key

DOCUMENT_COLUMNS = ("path", "title", "source")


class Condition(Protocol):
    def sql(self) -> tuple[str, list]: ...


@dataclass
class Filter:
    """Restricts results to documents whose ``field`` matches ``value``.

    ``path``, ``title`` and ``source`` match as globs (``*.md``, ``notes/*``); ``language`` is the
    passage's (``ru``, ``en``; ``language=`` for unknown); any other field is looked up in the
    document's metadata and compared as text.
    """

    field: str
    value: str

    @classmethod
    def parse(cls, text: str) -> "Filter":
        field, sep, value = text.partition("=")
        if not sep or not field.strip():
            raise ValueError(f"A filter looks like FIELD=VALUE, not {text!r}")
        return cls(field.strip(), value.strip())

    def sql(self) -> tuple[str, list]:
        if self.field == "language":
            return "coalesce(p.language, '') = ?", [self.value.lower()]
        if self.field in DOCUMENT_COLUMNS:
            pattern = self.value
            if self.field != "title" and not pattern.startswith(("/", "*")):
                pattern = "*" + pattern
            return f"d.{self.field} GLOB ?", [pattern]
        return "CAST(json_extract(d.metadata, ?) AS TEXT) = ?", [f'$."{self.field}"', self.value]


@dataclass
class EntityFilter:
    """Passages that mention an entity: ``label`` (PER, ORG...) and/or its ``text`` (any case; any
    form of a Russian name: see ``entity_keys``)."""

    label: str | None = None
    text: str | None = None
    task: ClassVar[str] = "ner"  # the enrichment it needs

    @classmethod
    def parse(cls, text: str) -> "EntityFilter":
        """``LABEL=TEXT`` or ``TEXT``."""
        label, sep, value = text.partition("=")
        return cls(label.strip().upper(), value.strip()) if sep else cls(None, text.strip())

    def sql(self) -> tuple[str, list]:
        conditions = [c for c, v in (("label = ?", self.label), ("key = ?", self.text)) if v]
        if not conditions:
            raise ValueError("An entity filter needs a label or a text")
        values = [v for v in (self.label, self.text and entity_key(self.text)) if v]
        return f"p.id IN (SELECT passage_id FROM entities WHERE {' AND '.join(conditions)})", values


@dataclass
class LabelFilter:
    """Passages that a classification task (``sentiment``, or a classifier's name) gave ``label``."""

    task: str  # the enrichment it needs
    label: str

    def sql(self) -> tuple[str, list]:
        return "p.id IN (SELECT passage_id FROM labels WHERE task = ? AND label = ?)", [self.task, self.label]


def from_options(filters: Iterable[str] = (), entities: Iterable[str] = (), entity_labels: Iterable[str] = (),
                 sentiment: str | None = None, labels: Iterable[str] = ()) -> list[Condition]:
    """Filters as the CLI and the HTTP API take them: ``FIELD=VALUE``, ``[LABEL=]TEXT`` entities,
    entity labels, a sentiment and ``TASK=LABEL`` classifier labels."""
    out: list[Condition] = [Filter.parse(f) for f in filters] + [EntityFilter.parse(e) for e in entities]
    out += [EntityFilter(label.upper(), None) for label in entity_labels]
    if sentiment:
        out.append(LabelFilter("sentiment", sentiment))
    for spec in labels:
        task, sep, value = spec.partition("=")
        if not sep or not task.strip():
            raise ValueError(f"A label filter looks like TASK=LABEL, not {spec!r}")
        out.append(LabelFilter(task.strip(), value.strip()))
    return out


def parse_filters(filters) -> list[Condition]:
    """Filters from ``Filter``-like objects, ``"field=value"`` strings or a ``{field: value}`` dict."""
    if isinstance(filters, dict):
        return [Filter(k, str(v)) for k, v in filters.items()]
    return [Filter.parse(f) if isinstance(f, str) else f for f in filters]


def where_clause(filters: Iterable[Condition]) -> tuple[str, list]:
    """The filters ANDed into one SQL condition, and its parameters."""
    parts, params = [], []
    for f in filters:
        sql, values = f.sql()
        parts.append(sql)
        params += values
    return (" AND ".join(parts) or "1"), params
