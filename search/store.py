"""The SQLite store: documents, passages (text, offsets, vectors), an FTS5 table for BM25, meta.

SQLite is the source of truth; the FAISS file is derived from the vectors kept here and can be
rebuilt from them. Writes happen inside one transaction that the caller commits (see Index).
"""

from __future__ import annotations

import json
import re
import sqlite3
import time
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Iterable, Mapping

import numpy as np
import sqlite_utils

from .errors import IndexCorrupt, SearchError
from .ingest import Document
from .passages import Passage

SCHEMA_VERSION = 1
#: How long a writer waits for another process's write transaction before giving up.
BUSY_TIMEOUT_MS = 5000
DOCUMENT_COLUMNS = ("path", "title", "source")

_TERM = re.compile(r"\w+", re.UNICODE)


@dataclass
class Filter:
    """Restricts results to documents whose ``field`` matches ``value``.

    ``path``, ``title`` and ``source`` match as globs (``*.md``, ``notes/*``); any other field is
    looked up in the document's metadata and compared as text.
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
        if self.field in DOCUMENT_COLUMNS:
            pattern = self.value
            if self.field != "title" and not pattern.startswith(("/", "*")):
                pattern = "*" + pattern
            return f"d.{self.field} GLOB ?", [pattern]
        return "CAST(json_extract(d.metadata, ?) AS TEXT) = ?", [f'$."{self.field}"', self.value]


#: English function words dropped from lexical queries (unless a query has nothing else).
STOPWORDS = frozenset("""
a about above after again against all am an and any are as at be because been before being below between
both but by can could did do does doing down during each few for from further had has have having he her
here hers herself him himself his how i if in into is it its itself just me more most my myself no nor not
now of off on once only or other our ours ourselves out over own same she should so some such than that the
their theirs them themselves then there these they this those through to too under until up very was we
were what when where which while who whom why will with would you your yours yourself yourselves
""".split())


@dataclass
class EntityFilter:
    """Passages that mention an entity: ``label`` (PER, ORG...) and/or its ``text`` (any case)."""

    label: str | None = None
    text: str | None = None

    @classmethod
    def parse(cls, text: str) -> "EntityFilter":
        """``LABEL=TEXT`` or ``TEXT``."""
        label, sep, value = text.partition("=")
        return cls(label.strip().upper(), value.strip()) if sep else cls(None, text.strip())

    def sql(self) -> tuple[str, list]:
        conditions = [c for c, v in (("label = ?", self.label), ("text = ? COLLATE NOCASE", self.text)) if v]
        if not conditions:
            raise ValueError("An entity filter needs a label or a text")
        values = [v for v in (self.label, self.text) if v]
        return f"p.id IN (SELECT passage_id FROM entities WHERE {' AND '.join(conditions)})", values


@dataclass
class LabelFilter:
    """Passages that a classification task (``sentiment``, or a classifier's name) gave ``label``."""

    task: str
    label: str

    def sql(self) -> tuple[str, list]:
        return "p.id IN (SELECT passage_id FROM labels WHERE task = ? AND label = ?)", [self.task, self.label]


def fts_query(text: str) -> str:
    """An FTS5 query that ORs the words of ``text`` (no FTS syntax errors on user input)."""
    terms = list(dict.fromkeys(t.lower() for t in _TERM.findall(text)))
    content = [t for t in terms if t not in STOPWORDS]
    return " OR ".join(f'"{t}"' for t in (content or terms))


class Store:
    def __init__(self, path: Path):
        self.path = Path(path)
        try:
            self.db = sqlite_utils.Database(str(self.path))
            self.db.execute("PRAGMA journal_mode=WAL")
            self.db.execute("PRAGMA foreign_keys=ON")
            self.db.execute(f"PRAGMA busy_timeout={BUSY_TIMEOUT_MS}")
            self._ensure_schema()
        except sqlite3.DatabaseError as exc:
            raise IndexCorrupt(f"The database {self.path} is damaged ({exc}); re-create the index.") from exc

    @property
    def conn(self) -> sqlite3.Connection:
        return self.db.conn

    def _ensure_schema(self) -> None:
        if "documents" in self.db.table_names():
            self._ensure_enrichment_tables()
            return
        with self.conn:
            self.db["meta"].create({"key": str, "value": str}, pk="key")
            self.db["documents"].create(
                {"id": int, "path": str, "source": str, "title": str, "hash": str, "mtime": float,
                 "metadata": str, "pages": str, "text": str, "indexed_at": float},
                pk="id", not_null={"path", "text"},
            )
            self.db["documents"].create_index(["path"], unique=True)
            self.db["documents"].create_index(["source"])
            self.db["passages"].create(
                {"id": int, "document_id": int, "ord": int, "start_char": int, "end_char": int,
                 "page": int, "text": str, "vector": bytes},
                pk="id", foreign_keys=[("document_id", "documents", "id")], not_null={"text"},
            )
            self.db["passages"].create_index(["document_id"])
            self.db["passages"].enable_fts(["text"], fts_version="FTS5", tokenize="porter", create_triggers=True)
            self.db["meta"].insert({"key": "schema_version", "value": str(SCHEMA_VERSION)})
        self._ensure_enrichment_tables()

    def _ensure_enrichment_tables(self) -> None:
        """Entities, per-passage labels (sentiment, classifiers) and which passages each task has seen."""
        if "entities" in self.db.table_names():
            return
        with self.conn:
            self.db["entities"].create(
                {"id": int, "passage_id": int, "document_id": int, "text": str, "label": str,
                 "start_char": int, "end_char": int, "score": float},
                pk="id", foreign_keys=[("passage_id", "passages", "id"), ("document_id", "documents", "id")],
            )
            self.db["entities"].create_index(["label", "text"])
            self.db["entities"].create_index(["passage_id"])
            self.db["labels"].create(
                {"passage_id": int, "document_id": int, "task": str, "label": str, "score": float},
                pk=("passage_id", "task"), foreign_keys=[("passage_id", "passages", "id"), ("document_id", "documents", "id")],
            )
            self.db["labels"].create_index(["task", "label"])
            self.db["enriched"].create({"passage_id": int, "task": str}, pk=("passage_id", "task"))
            self.db.create_view(
                "document_labels",
                "SELECT document_id, task, label, count(*) AS passages, avg(score) AS mean_score"
                " FROM labels GROUP BY document_id, task, label",
            )

    # --- meta ------------------------------------------------------------------------------

    def meta(self) -> dict[str, str]:
        return {row["key"]: row["value"] for row in self.db["meta"].rows}

    def set_meta(self, values: Mapping[str, object]) -> None:
        self.conn.executemany(
            "INSERT OR REPLACE INTO meta (key, value) VALUES (?, ?)", [(k, str(v)) for k, v in values.items()]
        )

    # --- writes (inside the caller's transaction) -----------------------------------------------

    def add_document(self, doc: Document, passages: list[Passage], vectors: np.ndarray) -> tuple[int, list[int]]:
        """Insert a document and its passages; return the new document id and passage ids."""
        cur = self.conn.execute(
            "INSERT INTO documents (path, source, title, hash, mtime, metadata, pages, text, indexed_at)"
            " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
            (doc.path, doc.source, doc.title, doc.hash, doc.mtime, json.dumps(doc.metadata),
             json.dumps(doc.pages), doc.text, time.time()),
        )
        doc_id = cur.lastrowid
        ids = []
        for order, (p, vec) in enumerate(zip(passages, vectors)):
            cur = self.conn.execute(
                "INSERT INTO passages (document_id, ord, start_char, end_char, page, text, vector)"
                " VALUES (?, ?, ?, ?, ?, ?, ?)",
                (doc_id, order, p.start, p.end, p.page, p.text, np.asarray(vec, np.float32).tobytes()),
            )
            ids.append(cur.lastrowid)
        return doc_id, ids

    def delete_documents(self, doc_ids: Iterable[int]) -> list[int]:
        """Delete documents and their passages; return the deleted passage ids."""
        doc_ids = list(doc_ids)
        removed: list[int] = []
        for chunk in _chunks(doc_ids, 500):
            marks = ",".join("?" * len(chunk))
            removed += [r[0] for r in self.conn.execute(f"SELECT id FROM passages WHERE document_id IN ({marks})", chunk)]
            for table in ("entities", "labels"):
                self.conn.execute(f"DELETE FROM {table} WHERE document_id IN ({marks})", chunk)
            self.conn.execute(f"DELETE FROM enriched WHERE passage_id IN"
                              f" (SELECT id FROM passages WHERE document_id IN ({marks}))", chunk)
            self.conn.execute(f"DELETE FROM passages WHERE document_id IN ({marks})", chunk)
            self.conn.execute(f"DELETE FROM documents WHERE id IN ({marks})", chunk)
        return removed

    def begin_write(self) -> None:
        """Take SQLite's write lock now, so that a second writer fails early with a clear message."""
        if self.conn.in_transaction:
            return
        try:
            self.conn.execute("BEGIN IMMEDIATE")
        except sqlite3.OperationalError as exc:
            raise SearchError(f"Another process is writing to the index at {self.path.parent}; try again when it is done.") from exc

    @contextmanager
    def write_lock_if_free(self):
        """Yield True while holding the write lock, or False at once when another process holds it."""
        self.conn.execute("PRAGMA busy_timeout=0")
        try:
            self.conn.execute("BEGIN IMMEDIATE")
            locked = True
        except sqlite3.OperationalError:
            locked = False
        finally:
            self.conn.execute(f"PRAGMA busy_timeout={BUSY_TIMEOUT_MS}")
        try:
            yield locked
        finally:
            if locked:
                self.conn.rollback()

    def add_enrichment(self, task: str, passage_ids: list[int], document_ids: list[int], results: list) -> None:
        """Store one task's results for passages: a list of Entity lists (``ner``, offsets already in
        document coordinates) or of Labels (any classification task)."""
        for pid, did, result in zip(passage_ids, document_ids, results):
            if task == "ner":
                self.conn.executemany(
                    "INSERT INTO entities (passage_id, document_id, text, label, start_char, end_char, score)"
                    " VALUES (?, ?, ?, ?, ?, ?, ?)",
                    [(pid, did, e.text, e.label, e.start, e.end, e.score) for e in result],
                )
            else:
                self.conn.execute("INSERT OR REPLACE INTO labels VALUES (?, ?, ?, ?, ?)",
                                  (pid, did, task, result.label, result.score))
        self.conn.executemany("INSERT OR IGNORE INTO enriched VALUES (?, ?)", [(pid, task) for pid in passage_ids])

    def passages_to_enrich(self, task: str) -> list[tuple[int, int, int, str]]:
        """(passage id, document id, start offset, text) of passages that ``task`` has not seen."""
        return list(self.conn.execute(
            "SELECT id, document_id, start_char, text FROM passages WHERE id NOT IN"
            " (SELECT passage_id FROM enriched WHERE task = ?) ORDER BY id", (task,)))

    def entity_counts(self, label: str | None = None, top: int = 20) -> list[dict]:
        """The most frequent entities: text, label, mentions and documents."""
        where, params = ("WHERE label = ?", [label]) if label else ("", [])
        return list(self.db.query(
            "SELECT min(text) AS text, label, count(*) AS mentions, count(DISTINCT document_id) AS documents"
            f" FROM entities {where} GROUP BY lower(text), label ORDER BY mentions DESC, text LIMIT ?",
            params + [top],
        ))

    def commit(self) -> None:
        self.conn.commit()

    def rollback(self) -> None:
        self.conn.rollback()

    # --- reads -------------------------------------------------------------------------------

    def documents_by_key(self, column: str) -> dict[str, tuple[int, str]]:
        """``{path or source: (document id, hash)}`` for every document."""
        return {row[0]: (row[1], row[2]) for row in self.conn.execute(f"SELECT {column}, id, hash FROM documents")}

    def documents_of_sources(self, sources: Iterable[str]) -> list[int]:
        out: list[int] = []
        for chunk in _chunks(list(sources), 500):
            marks = ",".join("?" * len(chunk))
            out += [r[0] for r in self.conn.execute(f"SELECT id FROM documents WHERE source IN ({marks})", chunk)]
        return out

    def find_documents(self, target: str) -> list[int]:
        """Documents whose path or source is ``target``, lies under the folder ``target``, or matches it as a glob."""
        folder = target.rstrip("/") + "/"
        return [r[0] for r in self.conn.execute(
            "SELECT id FROM documents WHERE path = :t OR source = :t OR path GLOB :g OR substr(path, 1, length(:f)) = :f",
            {"t": target, "g": target, "f": folder},
        )]

    def file_sources(self) -> list[str]:
        return [r[0] for r in self.conn.execute("SELECT DISTINCT source FROM documents WHERE source != ''")]

    def passage_ids(self) -> np.ndarray:
        return np.fromiter((r[0] for r in self.conn.execute("SELECT id FROM passages ORDER BY id")), dtype=np.int64)

    def vectors(self, ids: Iterable[int] | None = None) -> tuple[np.ndarray, list[int]]:
        """Stored vectors (and their ids) of all passages, or of ``ids``."""
        if ids is None:
            rows = list(self.conn.execute("SELECT id, vector FROM passages WHERE vector IS NOT NULL ORDER BY id"))
        else:
            rows = []
            for chunk in _chunks(list(ids), 500):
                marks = ",".join("?" * len(chunk))
                rows += list(self.conn.execute(f"SELECT id, vector FROM passages WHERE id IN ({marks})", chunk))
        matrix = np.vstack([np.frombuffer(r[1], dtype=np.float32) for r in rows]) if rows else np.zeros((0, 0), np.float32)
        return matrix, [r[0] for r in rows]

    def passages_without_vectors(self) -> list[tuple[int, str]]:
        return list(self.conn.execute("SELECT id, text FROM passages WHERE vector IS NULL"))

    def set_vectors(self, ids: list[int], vectors: np.ndarray) -> None:
        self.conn.executemany(
            "UPDATE passages SET vector = ? WHERE id = ?",
            [(np.asarray(v, np.float32).tobytes(), i) for i, v in zip(ids, vectors)],
        )

    def allowed_passages(self, filters: list) -> list[int]:
        where, params = _where(filters)
        return [r[0] for r in self.conn.execute(
            f"SELECT p.id FROM passages p JOIN documents d ON d.id = p.document_id WHERE {where}", params
        )]

    def lexical(self, query: str, n: int, filters: list = ()) -> list[tuple[int, float]]:
        """Top ``n`` passages by BM25 (FTS5), as (id, score) with higher = better."""
        match = fts_query(query)
        if not match or n <= 0:
            return []
        sql = "SELECT rowid, -bm25(passages_fts) FROM passages_fts WHERE passages_fts MATCH ?"
        params: list = [match]
        if filters:
            where, extra = _where(filters)
            sql += f" AND rowid IN (SELECT p.id FROM passages p JOIN documents d ON d.id = p.document_id WHERE {where})"
            params += extra
        sql += " ORDER BY rank LIMIT ?"
        return [(int(r[0]), float(r[1])) for r in self.conn.execute(sql, params + [n])]

    def passages(self, ids: list[int]) -> dict[int, dict]:
        """Passage rows joined with their document, keyed by passage id."""
        out: dict[int, dict] = {}
        for chunk in _chunks(ids, 500):
            marks = ",".join("?" * len(chunk))
            for row in self.db.query(
                "SELECT p.id, p.document_id, p.ord, p.start_char, p.end_char, p.page, p.text,"
                " d.path, d.source, d.title, d.metadata FROM passages p JOIN documents d ON d.id = p.document_id"
                f" WHERE p.id IN ({marks})", chunk,
            ):
                row["metadata"] = json.loads(row["metadata"] or "{}")
                out[row["id"]] = row
        return out

    def counts(self) -> dict[str, int]:
        return {
            "documents": self.db["documents"].count,
            "passages": self.db["passages"].count,
            "files": self.conn.execute("SELECT count(DISTINCT source) FROM documents WHERE source != ''").fetchone()[0],
        }

    def close(self) -> None:
        self.conn.close()


def _where(filters: Iterable) -> tuple[str, list]:
    parts, params = [], []
    for f in filters:
        sql, values = f.sql()
        parts.append(sql)
        params += values
    return (" AND ".join(parts) or "1"), params


def _chunks(items: list, size: int):
    for i in range(0, len(items), size):
        yield items[i : i + size]
