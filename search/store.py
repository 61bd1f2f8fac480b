"""The SQLite store: its schema, and every query of the read path.

Tables: ``documents``, ``passages`` (text, offsets, vector), ``passages_fts`` (FTS5 for BM25),
``meta``, and the enrichment tables ``entities``, ``labels`` and ``enriched``. SQLite is the
source of truth; the FAISS file is derived from the vectors kept here and can be rebuilt from
them. Writes belong to ``writer.IndexWriter``, which owns the transaction.

Every write transaction is a new *generation* (``meta.generation``); passages record the one that
added them and ``removed_passages`` the one that removed each id, so that vectors as of any
generation can be brought up to date from the changes since (``vector_changes``) instead of
rereading or rewriting the whole vector file at every commit.
"""

from __future__ import annotations

import json
import sqlite3
from contextlib import contextmanager
from functools import cached_property
from pathlib import Path
from typing import Iterable, NamedTuple

import numpy as np
import sqlite_utils

from .entity_keys import entity_key
from .errors import IndexCorrupt, SearchError
from .filters import Condition, where_clause
from .terms import fts_query

SCHEMA_VERSION = 1
#: Pages of 16 KiB rather than SQLite's 4: a passage row with its vector (about 1.7 KB) left most
#: of a 4 KiB page unused (docs/scale.md).
PAGE_SIZE = 16384
#: The form an entity ``e`` (a key and a label) is most often written in.
MOST_FREQUENT_FORM = ("(SELECT text FROM entities f WHERE f.key = e.key AND f.label = e.label"
                      " GROUP BY text ORDER BY count(*) DESC, text LIMIT 1)")
#: Bytes the write-ahead log keeps after a checkpoint (a large transaction would leave it large).
WAL_LIMIT = 64 * 2**20
#: How long a writer waits for another process's write transaction before giving up.
BUSY_TIMEOUT_MS = 5000


class StoredPassage(NamedTuple):
    """A passage as enrichment needs it."""

    id: int
    document_id: int
    start: int  # character offset in its document
    text: str
    language: str = ""  # ISO 639-1, "" when unknown (language.detect_language)


def damaged(path: Path, exc: Exception) -> str:
    return (f"The database {path} is damaged ({exc}). Its documents cannot be read back:"
            " index them again into a new index (`search index PATHS --index NEW_FOLDER`).")


#: Vectors are kept in SQLite as float16: half the bytes, and a relative rounding of 2^-11 that
#: moves no ranking measured (docs/scale.md). Indexes made before hold float32; both are read.
STORED_DTYPE = np.float16


def vector_blob(vector: np.ndarray) -> bytes:
    return np.asarray(vector, STORED_DTYPE).tobytes()


def as_stored(vectors: np.ndarray) -> np.ndarray:
    """``vectors`` as they will read back from SQLite, so that FAISS holds the same ones."""
    return np.asarray(vectors, STORED_DTYPE).astype(np.float32)


def vectors_from_blobs(blobs: list[bytes], dimension: int) -> np.ndarray:
    """A float32 matrix of stored vectors, each float16 or (in older indexes) float32."""
    if all(len(b) == 2 * dimension for b in blobs):
        return np.frombuffer(b"".join(blobs), STORED_DTYPE).reshape(len(blobs), dimension).astype(np.float32)
    return np.vstack([np.frombuffer(b, STORED_DTYPE if len(b) == 2 * dimension else np.float32) for b in blobs]
                     ).astype(np.float32).reshape(len(blobs), dimension)


def chunks(items: list, size: int = 500):
    """``items`` in lists of at most ``size`` (SQLite limits the parameters of one statement)."""
    for i in range(0, len(items), size):
        yield items[i : i + size]


def marks(items: list) -> str:
    return ",".join("?" * len(items))


class Store:
    def __init__(self, path: Path):
        self.path = Path(path)
        try:
            self.db = sqlite_utils.Database(str(self.path))
            self.db.execute(f"PRAGMA page_size={PAGE_SIZE}")  # takes effect for a new database only
            self.db.execute("PRAGMA journal_mode=WAL")
            self.db.execute(f"PRAGMA journal_size_limit={WAL_LIMIT}")
            self.db.execute("PRAGMA foreign_keys=ON")
            self.db.execute(f"PRAGMA busy_timeout={BUSY_TIMEOUT_MS}")
            self._ensure_schema()
        except sqlite3.OperationalError as exc:  # disk full, no permission...: the file may be fine
            raise SearchError(f"Cannot open the database {self.path}: {exc}.") from exc
        except sqlite3.DatabaseError as exc:
            raise IndexCorrupt(damaged(self.path, exc)) from exc

    @property
    def conn(self) -> sqlite3.Connection:
        return self.db.conn

    def close(self) -> None:
        self.conn.close()

    # --- schema ------------------------------------------------------------------------------

    def _ensure_schema(self) -> None:
        if "documents" in self.db.table_names():
            self._ensure_enrichment_tables()
            self._ensure_section_columns()
            self._ensure_generations()
            self._ensure_complete_column()
            self._ensure_language_column()
            self._ensure_entity_keys()
            return
        with self.conn:
            self.db["meta"].create({"key": str, "value": str}, pk="key")
            self.db["documents"].create(
                {"id": int, "path": str, "source": str, "title": str, "hash": str, "mtime": float,
                 "metadata": str, "pages": str, "text": str, "indexed_at": float, "complete": int},
                pk="id", not_null={"path", "text"}, defaults={"complete": 1},
            )
            self.db["documents"].create_index(["path"], unique=True)
            self.db["documents"].create_index(["source"])
            self.db["passages"].create(
                {"id": int, "document_id": int, "ord": int, "start_char": int, "end_char": int,
                 "page": int, "section": str, "code": int, "text": str, "vector": bytes, "generation": int,
                 "language": str},
                pk="id", foreign_keys=[("document_id", "documents", "id")], not_null={"text"},
            )
            self.db["passages"].create_index(["document_id"])
            self.db["passages"].create_index(["generation"])
            self.db["removed_passages"].create({"passage_id": int, "generation": int}, pk="passage_id")
            self.db["removed_passages"].create_index(["generation"])
            self.db["passages"].enable_fts(["text"], fts_version="FTS5", tokenize="porter", create_triggers=True)
            self.db["meta"].insert({"key": "schema_version", "value": str(SCHEMA_VERSION)})
        self._ensure_enrichment_tables()

    def _ensure_section_columns(self) -> None:
        """Indexes made before passages had sections get the two columns (empty for their passages)."""
        if "section" not in self.db["passages"].columns_dict:
            with self.conn:
                self.conn.execute("ALTER TABLE passages ADD COLUMN section TEXT")
                self.conn.execute("ALTER TABLE passages ADD COLUMN code INTEGER")

    def _ensure_generations(self) -> None:
        """Indexes made before generations: every passage they hold is of generation 0, as is their vector file."""
        if "removed_passages" not in self.db.table_names():
            with self.conn:
                self.conn.execute("ALTER TABLE passages ADD COLUMN generation INTEGER NOT NULL DEFAULT 0")
                self.db["passages"].create_index(["generation"])
                self.db["removed_passages"].create({"passage_id": int, "generation": int}, pk="passage_id")
                self.db["removed_passages"].create_index(["generation"])

    def _ensure_complete_column(self) -> None:
        """Indexes made before runs committed within a file: every document they hold is complete."""
        if "complete" not in self.db["documents"].columns_dict:
            with self.conn:
                self.conn.execute("ALTER TABLE documents ADD COLUMN complete INTEGER NOT NULL DEFAULT 1")

    def _ensure_language_column(self) -> None:
        """Indexes made before passages had a language: theirs is unknown (NULL), so every model reads them."""
        if "language" not in self.db["passages"].columns_dict:
            with self.conn:
                self.conn.execute("ALTER TABLE passages ADD COLUMN language TEXT")

    def _ensure_entity_keys(self) -> None:
        """Indexes made before entities had keys (``entity_keys``) get them, from the entities' texts."""
        if "key" not in self.db["entities"].columns_dict:
            self.conn.create_function("entity_key", 1, entity_key, deterministic=True)
            with self.conn:
                self.conn.execute("ALTER TABLE entities ADD COLUMN key TEXT")
                self.conn.execute("UPDATE entities SET key = entity_key(text)")
                self.db["entities"].create_index(["key", "label"])

    def _ensure_enrichment_tables(self) -> None:
        """Entities, per-passage labels (sentiment, classifiers) and which passages each task has seen."""
        if "entities" in self.db.table_names():
            return
        with self.conn:
            self.db["entities"].create(
                {"id": int, "passage_id": int, "document_id": int, "text": str, "label": str,
                 "start_char": int, "end_char": int, "score": float, "key": str},
                pk="id", foreign_keys=[("passage_id", "passages", "id"), ("document_id", "documents", "id")],
            )
            self.db["entities"].create_index(["label", "text"])
            self.db["entities"].create_index(["key", "label"])
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

    @contextmanager
    def reading(self):
        """One read transaction: every query inside sees the same committed state, whatever other
        processes commit meanwhile (inside a write transaction, that transaction's state)."""
        if self.conn.in_transaction:
            yield
            return
        self.conn.execute("BEGIN")
        try:
            yield
        finally:
            self.conn.rollback()

    # --- reads -------------------------------------------------------------------------------

    @cached_property
    def dimension(self) -> int:
        return self.meta_int("dimension")

    def generation(self) -> int:
        """The number of the last committed write transaction (0 for a new index)."""
        return self.meta_int("generation")

    def meta_int(self, key: str) -> int:
        row = self.conn.execute("SELECT value FROM meta WHERE key = ?", (key,)).fetchone()
        return int(row[0]) if row else 0

    def removed_since(self, since: int) -> list[int]:
        return [r[0] for r in self.conn.execute("SELECT passage_id FROM removed_passages WHERE generation > ?", (since,))]

    def vector_changes(self, since: int) -> tuple[list[int], list[int], np.ndarray]:
        """What changed after generation ``since``: ids removed, and ids added with their vectors
        (an id removed and added again is in both: remove first, then add)."""
        # no ORDER BY: with one, SQLite scans the whole table (a million rows: 0.4 s) instead of the generation index
        rows = list(self.conn.execute("SELECT id, vector FROM passages WHERE generation > ? AND vector IS NOT NULL",
                                      (since,)))
        return self.removed_since(since), [r[0] for r in rows], vectors_from_blobs([r[1] for r in rows], self.dimension)

    def texts_since(self, since: int) -> sqlite3.Cursor:
        """(id, text) of the passages added after generation ``since`` (all: -1), as a cursor."""
        return self.conn.execute("SELECT id, text FROM passages WHERE generation > ?", (since,))  # no ORDER BY (above)

    def changes_since(self, since: int) -> int:
        """How many passages were added or removed after generation ``since``."""
        return sum(self.conn.execute(f"SELECT count(*) FROM {table} WHERE generation > ?", (since,)).fetchone()[0]
                   for table in ("passages", "removed_passages"))

    def meta(self) -> dict[str, str]:
        return {row["key"]: row["value"] for row in self.db["meta"].rows}

    def documents_by_key(self, column: str, keys: Iterable[str]) -> dict[str, tuple[int, str, bool]]:
        """``{path or source: (a document id, hash, complete)}`` for those of ``keys`` that are
        indexed: complete when every document of that path or source has all its passages (a run
        interrupted within a file leaves it not)."""
        out = {}
        for chunk in chunks(list(keys)):
            out.update((row[0], (row[1], row[2], bool(row[3]))) for row in self.conn.execute(
                f"SELECT {column}, min(id), hash, min(complete) FROM documents WHERE {column} IN ({marks(chunk)})"
                f" GROUP BY {column}", chunk))
        return out

    def stored_progress(self, column: str, key: str) -> dict[str, tuple[int, int, int]]:
        """``{document path: (id, passages stored, end offset of the last)}`` for the documents of
        one path or source, to resume what an interrupted run began."""
        return {row[0]: (row[1], row[2], row[3] or 0) for row in self.conn.execute(
            "SELECT d.path, d.id, count(p.id), max(p.end_char) FROM documents d"
            f" LEFT JOIN passages p ON p.document_id = d.id WHERE d.{column} = ? GROUP BY d.id", (key,))}

    def documents_of_sources(self, sources: Iterable[str]) -> list[int]:
        out: list[int] = []
        for chunk in chunks(list(sources)):
            out += [r[0] for r in self.conn.execute(f"SELECT id FROM documents WHERE source IN ({marks(chunk)})", chunk)]
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

    def vectors(self) -> tuple[np.ndarray, list[int]]:
        """The stored vectors of all passages that have one, and their ids."""
        rows = list(self.conn.execute("SELECT id, vector FROM passages WHERE vector IS NOT NULL ORDER BY id"))
        return vectors_from_blobs([r[1] for r in rows], self.dimension), [r[0] for r in rows]

    def vectors_of(self, ids: list[int]) -> tuple[list[int], np.ndarray]:
        """The stored vectors of those of passages ``ids`` that exist, and their ids, in that order."""
        found: dict[int, bytes] = {}
        for chunk in chunks(ids):
            found.update(self.conn.execute(f"SELECT id, vector FROM passages WHERE id IN ({marks(chunk)})"
                                           " AND vector IS NOT NULL", chunk))
        present = [i for i in ids if i in found]
        return present, vectors_from_blobs([found[i] for i in present], self.dimension)

    def text_starts(self, ids: list[int], chars: int) -> dict[int, str]:
        """The first ``chars`` characters of the text of those of passages ``ids`` that exist."""
        found: dict[int, str] = {}
        for chunk in chunks(ids):
            found.update(self.conn.execute(f"SELECT id, substr(text, 1, ?) FROM passages WHERE id IN ({marks(chunk)})",
                                           [chars, *chunk]))
        return found

    def passages_without_vectors(self) -> list[tuple[int, str, str | None, str]]:
        """(id, document title, section, text) of passages that have no vector."""
        return list(self.conn.execute("SELECT p.id, d.title, p.section, p.text FROM passages p"
                                      " JOIN documents d ON d.id = p.document_id WHERE p.vector IS NULL"))

    def passages_to_enrich(self, task: str) -> list[StoredPassage]:
        """Passages that ``task`` has not seen."""
        return [StoredPassage(*row) for row in self.conn.execute(
            "SELECT id, document_id, start_char, text, coalesce(language, '') FROM passages WHERE id NOT IN"
            " (SELECT passage_id FROM enriched WHERE task = ?) ORDER BY id", (task,))]

    def entity_counts(self, label: str | None = None, top: int = 20) -> list[dict]:
        """The most frequent entities (all forms of one ``entity_key`` together, shown in their
        most frequent form): text, label, mentions and documents."""
        where, params = ("WHERE label = ?", [label]) if label else ("", [])
        return list(self.db.query(
            f"SELECT {MOST_FREQUENT_FORM} AS text, label, mentions, documents FROM"
            " (SELECT key, label, count(*) AS mentions, count(DISTINCT document_id) AS documents"
            f" FROM entities {where} GROUP BY key, label ORDER BY mentions DESC, key LIMIT ?) e",
            params + [top],
        ))

    def allowed_passages(self, filters: list[Condition]) -> list[int]:
        where, params = where_clause(filters)
        return [r[0] for r in self.conn.execute(
            f"SELECT p.id FROM passages p JOIN documents d ON d.id = p.document_id WHERE {where}", params
        )]

    def lexical(self, query: str, n: int, filters: list[Condition] = ()) -> list[tuple[int, float]]:
        """Top ``n`` passages by BM25 (FTS5), as (id, score) with higher = better."""
        match = fts_query(query)
        if not match or n <= 0:
            return []
        sql = "SELECT rowid, -bm25(passages_fts) FROM passages_fts WHERE passages_fts MATCH ?"
        params: list = [match]
        if filters:
            where, extra = where_clause(filters)
            sql += f" AND rowid IN (SELECT p.id FROM passages p JOIN documents d ON d.id = p.document_id WHERE {where})"
            params += extra
        sql += " ORDER BY rank LIMIT ?"
        return [(int(r[0]), float(r[1])) for r in self.conn.execute(sql, params + [n])]

    def passages(self, ids: list[int]) -> dict[int, dict]:
        """Passage rows joined with their document, keyed by passage id."""
        out: dict[int, dict] = {}
        for chunk in chunks(ids):
            for row in self.db.query(
                "SELECT p.id, p.document_id, p.ord, p.start_char, p.end_char, p.page, p.section, p.code, p.language, p.text,"
                " d.path, d.source, d.title, d.metadata FROM passages p JOIN documents d ON d.id = p.document_id"
                f" WHERE p.id IN ({marks(chunk)})", chunk,
            ):
                row["metadata"] = json.loads(row["metadata"] or "{}")
                out[row["id"]] = row
        return out

    def document(self, document_id: int) -> dict | None:
        """A document's row (text and metadata included), or None."""
        row = self.conn.execute(
            "SELECT id, path, source, title, metadata, pages, text, indexed_at, complete FROM documents WHERE id = ?",
            (document_id,)).fetchone()
        if row is None:
            return None
        keys = ("id", "path", "source", "title", "metadata", "pages", "text", "indexed_at", "complete")
        document = dict(zip(keys, row))
        document["metadata"] = json.loads(document["metadata"] or "{}")
        document["pages"] = json.loads(document["pages"]) if document["pages"] else None
        document["complete"] = bool(document["complete"])
        return document

    def passage_span(self, passage_id: int, document_id: int) -> tuple[int, int] | None:
        """Where a passage of this document lies in its text."""
        return self.conn.execute("SELECT start_char, end_char FROM passages WHERE id = ? AND document_id = ?",
                                 (passage_id, document_id)).fetchone()

    def facets(self, top: int = 10, most_values: int = 30) -> dict:
        """What results can be filtered by, with counts: metadata fields whose values repeat (at
        most ``most_values`` of them; documents each), passage languages, labels per task and the
        ``top`` entities per label (passages each)."""
        fields: dict[str, list[dict]] = {}
        for key, values, documents in self.conn.execute(
            "SELECT j.key, count(DISTINCT CAST(j.value AS TEXT)), count(*) FROM documents d, json_each(d.metadata) j"
            " WHERE j.type IN ('text', 'integer', 'real', 'true', 'false') GROUP BY j.key ORDER BY j.key"
        ).fetchall():
            if values <= most_values and values < documents:
                fields[key] = [{"value": v, "count": n} for v, n in self.conn.execute(
                    "SELECT CAST(j.value AS TEXT) AS v, count(*) FROM documents d, json_each(d.metadata) j"
                    " WHERE j.key = ? GROUP BY v ORDER BY count(*) DESC, v", (key,))]
        labels: dict[str, list[dict]] = {}
        for task, label, n in self.conn.execute(
                "SELECT task, label, count(*) FROM labels GROUP BY task, label ORDER BY task, count(*) DESC"):
            labels.setdefault(task, []).append({"value": label, "count": n})
        entities: dict[str, list[dict]] = {}
        for (label,) in self.conn.execute("SELECT DISTINCT label FROM entities ORDER BY label").fetchall():
            entities[label] = [{"value": text, "count": n} for text, n in self.conn.execute(
                f"SELECT {MOST_FREQUENT_FORM}, n FROM (SELECT key, label, count(DISTINCT passage_id) AS n"
                " FROM entities WHERE label = ? GROUP BY key ORDER BY n DESC, key LIMIT ?) e", (label, top))]
        languages = [{"value": v, "count": n} for v, n in self.conn.execute(
            "SELECT language, count(*) FROM passages WHERE coalesce(language, '') != ''"
            " GROUP BY language ORDER BY count(*) DESC")]
        return {"metadata": fields, "language": languages, "labels": labels, "entities": entities}

    def counts(self) -> dict[str, int]:
        return {
            "documents": self.db["documents"].count,
            "incomplete": self.conn.execute("SELECT count(*) FROM documents WHERE complete = 0").fetchone()[0],
            "passages": self.db["passages"].count,
            "files": self.conn.execute("SELECT count(DISTINCT source) FROM documents WHERE source != ''").fetchone()[0],
        }
