"""The write path of an index: files and texts -> documents -> passages -> vectors -> one transaction.

``IndexWriter`` owns the SQLite write transaction; each one is a new generation of the store. A
commit writes only SQLite (the passages carry their vectors); the vector file is rewritten only when
the changes since its generation have grown large (``compact_min``, ``compact_fraction``), so that a
commit costs in proportion to the change, not to the index. That rewrite is two-phase: write
``vectors.faiss.pending``, commit SQLite, rename the pending file over the live one
(``vectors.VectorIndex.recover`` finishes or undoes a run killed in between). Long runs commit every
``checkpoint_seconds``, only where a file is complete.
"""

from __future__ import annotations

import errno
import functools
import hashlib
import json
import os
import sqlite3
import time
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Iterable, Mapping, Sequence

import numpy as np
from filelock import FileLock, Timeout
from tqdm.auto import tqdm

from .enrich import Enricher, parse_enrichers
from .errors import IndexWriteError, SearchError, UnreadableFile
from .ingest import BadRow, Document, RowOptions, file_hash, find_files, first_line_title, load_file
from .markup import PATH_SEPARATOR
from .passages import Passage, split_passages
from .store import StoredPassage, chunks, marks
from .vectors import VectorIndex

if TYPE_CHECKING:
    from .index import Index


@dataclass
class IndexReport:
    """What one indexing run did."""

    files: int = 0
    added: int = 0
    updated: int = 0
    unchanged: int = 0
    removed: int = 0
    passages: int = 0
    skipped: list[tuple[str, str]] = field(default_factory=list)
    ignored: list[str] = field(default_factory=list)  # files in the folders of no supported type (.svg, .js...)
    bad_rows: list[BadRow] = field(default_factory=list)  # rows of .jsonl/.csv files left out; their files' other rows are in
    seconds: float = 0.0

    def to_dict(self) -> dict:
        return {**self.__dict__, "skipped": [{"path": p, "reason": r} for p, r in self.skipped],
                "bad_rows": [asdict(b) for b in self.bad_rows]}


def write_meta(conn: sqlite3.Connection, values: Mapping[str, object]) -> None:
    """Set keys of the index's ``meta`` table (in the caller's transaction)."""
    conn.executemany("INSERT OR REPLACE INTO meta (key, value) VALUES (?, ?)", [(k, str(v)) for k, v in values.items()])


#: The file whose lock a writer holds for a whole run (the OS releases it if the process dies).
LOCK_NAME = "writer.lock"


def holding_writer_lock(method):
    """Run a writer method holding the index's writer lock (see ``IndexWriter.exclusive``); on any
    failure or interrupt, undo what it did not commit, and say in one line why a write failed."""

    @functools.wraps(method)
    def locked(self, *args, **kwargs):
        with self.exclusive():
            try:
                return method(self, *args, **kwargs)
            except BaseException as exc:
                if self.conn.in_transaction:
                    self.rollback()
                if isinstance(exc, (sqlite3.Error, OSError)):
                    raise IndexWriteError(f"Could not write to the index at {self.index.path}: {_reason(exc)}."
                                          " It keeps its last committed state.") from exc
                raise

    return locked


def _reason(exc: BaseException) -> str:
    if isinstance(exc, OSError) and exc.errno == errno.ENOSPC or "disk is full" in str(exc):
        return "the disk is full"
    return str(exc)


#: A document and its passages, ready to encode and store.
Split = tuple[Document, list[Passage]]


class IndexWriter:
    """Adds, replaces, deletes, enriches and repairs the documents of one ``Index``."""

    #: Seconds between commits during a long indexing run (an interrupt loses at most this much).
    checkpoint_seconds = 30.0
    #: Passages encoded per step.
    batch_passages = 256
    #: The vector file is rewritten when more passages than this, plus this fraction of the index,
    #: were added or removed since it was (until then readers apply those changes from SQLite).
    compact_min = 2000
    compact_fraction = 0.1

    def __init__(self, index: "Index"):
        self.index = index
        self.generation = 0  # of the open write transaction
        self.wait = False  # for another process's run to end, instead of failing
        self.on_wait = lambda: None  # called once when this writer starts waiting
        self._lock = FileLock(index.path / LOCK_NAME)

    @contextmanager
    def exclusive(self):
        """Hold the writer lock: one run at a time, from reading what is indexed to its last commit
        (SQLite's own lock covers one transaction; a run commits many)."""
        try:
            self._lock.acquire(timeout=0)
        except Timeout:
            if not self.wait:
                raise SearchError(f"Another process is writing to the index at {self.index.path}:"
                                  " try again when it is done, or run with --wait.") from None
            self.on_wait()
            self._lock.acquire()
        try:
            yield
        finally:
            self._lock.release()

    @property
    def conn(self) -> sqlite3.Connection:
        return self.index.store.conn

    # --- transactions ---------------------------------------------------------------------------

    def begin(self, catch_up: bool = True) -> None:
        """Take SQLite's write lock now (a second writer fails early, with a clear message) and start
        the next generation, with the vectors brought up to the last commit of any process."""
        if self.conn.in_transaction:
            return
        try:
            self.conn.execute("BEGIN IMMEDIATE")
        except sqlite3.OperationalError as exc:
            raise SearchError(f"Another process is writing to the index at {self.index.path};"
                              " try again when it is done.") from exc
        if catch_up:
            self.index.vectors = self.index.catch_up(self.index.vectors)
        self.generation = self.index.store.generation() + 1
        write_meta(self.conn, {"generation": self.generation})
        self.index.vectors.generation = self.generation

    def commit(self, rewrite_vectors: bool = False) -> None:
        """Commit the transaction; rewrite the vector file with it when the changes since it was
        written have grown large, or when asked (two phases, see the module's docstring)."""
        store, vectors = self.index.store, self.index.vectors
        written = store.meta_int("vectors_generation")
        if rewrite_vectors or store.changes_since(written) > self.compact_min + self.compact_fraction * len(vectors):
            # Readers of the file being replaced still find the changes since it; older ones go.
            self.conn.execute("DELETE FROM removed_passages WHERE generation <= ?", (written,))
            write_meta(self.conn, {"vectors_generation": self.generation, "purged_through": written})
            vectors.write_pending(self.index.vectors_path)
            self.conn.commit()
            vectors.promote(self.index.vectors_path)
        else:
            self.conn.commit()

    def rollback(self) -> None:
        """Forget uncommitted work: roll SQLite back and reload the last committed vectors."""
        self.conn.rollback()
        VectorIndex.pending_path(self.index.vectors_path).unlink(missing_ok=True)
        self.index.vectors = self.index.load_vectors()

    def set_meta(self, values: Mapping[str, object]) -> None:
        write_meta(self.conn, values)

    # --- documents ----------------------------------------------------------------------------

    @holding_writer_lock
    def add_paths(
        self, paths: Iterable[str | os.PathLike], include: Sequence[str] = (), exclude: Sequence[str] = (),
        rows: RowOptions | None = None, prune: bool = False, progress: bool = False, enrich=None,
    ) -> IndexReport:
        started = time.perf_counter()
        if enrich:
            self.set_enrichers(enrich)
        report = IndexReport()
        ignored: list[Path] = []
        files = list(find_files(paths, include, exclude, ignored))
        report.ignored = [str(p) for p in ignored]
        report.files = len(files)
        store = self.index.store
        known = store.documents_by_key("source")
        split: list[Split] = []
        replaced_sources: list[str] = []
        for path in tqdm(files, desc="Reading", unit="file", disable=not progress):
            source = str(path)
            try:
                data = path.read_bytes()
            except OSError as exc:
                report.skipped.append((source, f"cannot read: {exc.strerror or exc}"))
                continue
            if source in known and known[source][1] == file_hash(data):
                report.unchanged += 1
                continue
            try:
                loaded = load_file(path, rows, data, report.bad_rows)
            except UnreadableFile as exc:
                report.skipped.append((source, str(exc)))
                continue
            if source in known:
                replaced_sources.append(source)
                report.updated += 1
            else:
                report.added += 1
            split.extend((doc, self._passages_of(doc)) for doc in loaded)
        stale = set(store.documents_of_sources(replaced_sources))
        if prune:
            gone = [s for s in store.file_sources() if not Path(s).exists()]
            pruned = store.documents_of_sources(gone)
            report.removed = len(pruned)
            stale |= set(pruned)
        report.passages = self._write(split, sorted(stale), progress)
        report.seconds = time.perf_counter() - started
        return report

    @holding_writer_lock
    def add_texts(self, texts: Sequence[str], metadata: Sequence[dict] | None = None,
                  ids: Sequence[str] | None = None, progress: bool = False) -> IndexReport:
        started = time.perf_counter()
        report = IndexReport(files=0)
        known = self.index.store.documents_by_key("path")
        split, stale, batch = [], [], {}  # batch: key -> its place in split, for keys repeated in this call
        for i, text in enumerate(texts):
            digest = hashlib.sha256(text.encode()).hexdigest()
            key = str(ids[i]) if ids is not None else f"text:{digest[:16]}"
            previous = split[batch[key]][0].hash if key in batch else known.get(key, (None, None))[1]
            if previous == digest:
                report.unchanged += 1  # also when the same text comes twice in this call
                continue
            if key in batch or key in known:
                report.updated += 1
                if key not in batch:
                    stale.append(known[key][0])
            else:
                report.added += 1
            meta = dict(metadata[i]) if metadata is not None else {}
            doc = Document(path=key, text=text, title=str(meta.get("title") or first_line_title(text, key)),
                           metadata=meta, hash=digest)
            entry = (doc, self._passages_of(doc))
            if key in batch:
                split[batch[key]] = entry  # the later text of an id wins, as in a later call
            else:
                batch[key] = len(split)
                split.append(entry)
        report.passages = self._write(split, stale, progress)
        report.seconds = time.perf_counter() - started
        return report

    @holding_writer_lock
    def delete(self, targets: Iterable[str]) -> int:
        doc_ids: set[int] = set()
        for target in targets:
            doc_ids |= set(self.index.store.find_documents(target))
            doc_ids |= set(self.index.store.find_documents(str(Path(target).expanduser().resolve())))
        self._write([], sorted(doc_ids), progress=False)
        return len(doc_ids)

    def _passages_of(self, doc: Document) -> list[Passage]:
        """Split a document part by part (PDF pages, sections, code blocks), so that a passage never
        spans two pages or leaves its section. The window leaves room for the context each passage
        is encoded with (``encoding_text``)."""
        overlap = int(self.index.meta.get("overlap", 32))
        tokenizer = self.index.encoder.tokenizer
        out = []
        for part in document_parts(doc):
            section = part.section if doc.sections else None
            context = context_of(doc.title, section)
            room = len(tokenizer(context, add_special_tokens=False)["input_ids"]) + 1 if context else 0
            window = max(self.index.max_tokens - 2 - min(room, MAX_CONTEXT_TOKENS), 16)
            for p in split_passages(doc.text[part.start : part.end], tokenizer, window, overlap):
                out.append(Passage(p.text, p.start + part.start, p.end + part.start, part.page, section, part.code))
        return out

    def _write(self, split: list[Split], stale_doc_ids: list[int], progress: bool) -> int:
        """Replace ``stale_doc_ids`` by the split documents in one or more checkpointed transactions."""
        if not split and not stale_doc_ids:
            return 0
        self.begin()
        self.index.vectors.remove(self.delete_documents(stale_doc_ids))
        total = sum(len(p) for _, p in split)
        last_checkpoint = time.monotonic()
        with tqdm(total=total, desc="Encoding", unit="passage", disable=not progress or not total) as bar:
            for batch, complete in _batches(split, self.batch_passages):
                texts = [encoding_text(doc.title, p.section, p.text) for doc, passages in batch for p in passages]
                vectors = self.index.encoder.encode(texts, on_batch=bar.update) if texts else \
                    np.zeros((0, self.index.vectors.dimension))  # the bar moves with every batch of 32
                at, added = 0, []
                for doc, passages in batch:
                    doc_id, ids = self.add_document(doc, passages, vectors[at : at + len(passages)])
                    self.index.vectors.add(ids, vectors[at : at + len(passages)])
                    at += len(passages)
                    added += [StoredPassage(pid, doc_id, p.start, p.text) for pid, p in zip(ids, passages)]
                self._enrich_passages(added, self.index.enrichers)
                if complete and time.monotonic() - last_checkpoint > self.checkpoint_seconds:
                    self.commit()
                    self.begin()
                    last_checkpoint = time.monotonic()
        self.commit()
        return total

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
                "INSERT INTO passages (document_id, ord, start_char, end_char, page, section, code, text, vector,"
                " generation) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                (doc_id, order, p.start, p.end, p.page, p.section, int(p.code), p.text,
                 np.asarray(vec, np.float32).tobytes(), self.generation),
            )
            ids.append(cur.lastrowid)
        return doc_id, ids

    def delete_documents(self, doc_ids: list[int]) -> list[int]:
        """Delete documents, their passages and enrichment; return the deleted passage ids."""
        removed: list[int] = []
        for chunk in chunks(doc_ids):
            m = marks(chunk)
            removed += [r[0] for r in self.conn.execute(f"SELECT id FROM passages WHERE document_id IN ({m})", chunk)]
            self.conn.execute(f"INSERT OR REPLACE INTO removed_passages (passage_id, generation)"
                              f" SELECT id, {self.generation} FROM passages WHERE document_id IN ({m})", chunk)
            for table in ("entities", "labels"):
                self.conn.execute(f"DELETE FROM {table} WHERE document_id IN ({m})", chunk)
            self.conn.execute(f"DELETE FROM enriched WHERE passage_id IN"
                              f" (SELECT id FROM passages WHERE document_id IN ({m}))", chunk)
            self.conn.execute(f"DELETE FROM passages WHERE document_id IN ({m})", chunk)
            self.conn.execute(f"DELETE FROM documents WHERE id IN ({m})", chunk)
        return removed

    # --- enrichment -----------------------------------------------------------------------------

    @holding_writer_lock
    def set_enrichers(self, specs) -> None:
        """Add enrichment tasks (``"ner,sentiment"``, ``classify:FOLDER``...) to the index for good."""
        current = {e.task: e for e in self.index.enrichers}
        for e in parse_enrichers(specs):
            current[e.task] = e
        self.index.meta["enrich"] = json.dumps({e.task: e.model for e in current.values()})
        self.index.__dict__["enrichers"] = list(current.values())
        self.begin()
        self.set_meta({"enrich": self.index.meta["enrich"]})
        self.conn.commit()

    def _enrich_passages(self, passages: list[StoredPassage], enrichers: Sequence[Enricher]) -> None:
        """Run enrichment tasks on passages and store the results, in the open transaction."""
        if not passages:
            return
        ids, doc_ids = [p.id for p in passages], [p.document_id for p in passages]
        for enricher in enrichers:
            results = enricher.run([p.text for p in passages], [p.start for p in passages])
            enricher.save(self.conn, ids, doc_ids, results)

    @holding_writer_lock
    def enrich(self, specs=None, progress: bool = False) -> int:
        """Run enrichment tasks (given ones are added to the index's) on passages that lack them.

        Returns how many (passage, task) pairs were processed.
        """
        if specs:
            self.set_enrichers(specs)
        done = 0
        self.begin()
        for enricher in self.index.enrichers:
            todo = self.index.store.passages_to_enrich(enricher.task)
            for b in tqdm(range(0, len(todo), self.batch_passages), desc=f"Enriching ({enricher.task})",
                          disable=not progress or not todo):
                self._enrich_passages(todo[b : b + self.batch_passages], [enricher])
                done += len(todo[b : b + self.batch_passages])
        self.conn.commit()
        return done

    # --- repair -----------------------------------------------------------------------------------

    @holding_writer_lock
    def repair(self) -> int:
        """Rebuild the FAISS file from the vectors kept in SQLite (re-encoding any passage without one).

        Returns the number of vectors in the rebuilt index.
        """
        store = self.index.store
        self.begin(catch_up=False)  # the vector file may be what is broken
        missing = store.passages_without_vectors()
        if missing:
            vectors = self.index.encoder.encode([encoding_text(title, section, text) for _, title, section, text in missing])
            self.conn.executemany("UPDATE passages SET vector = ?, generation = ? WHERE id = ?",
                                  [(np.asarray(v, np.float32).tobytes(), self.generation, m[0])
                                   for m, v in zip(missing, vectors)])
        matrix, ids = store.vectors()
        vectors = VectorIndex(int(self.index.meta["dimension"]), generation=self.generation)
        vectors.add(ids, matrix)
        self.index.vectors = vectors
        self.commit(rewrite_vectors=True)
        return len(vectors)


#: At most this many tokens of a passage's window go to its context (title and section path).
MAX_CONTEXT_TOKENS = 32


@dataclass(frozen=True)
class Part:
    start: int
    end: int
    page: int | None = None
    section: str = ""
    code: bool = False


def document_parts(doc: Document) -> list[Part]:
    """The spans a document is split in: its pages cut by its sections (or the whole text)."""
    pages = list(zip(doc.pages, doc.pages[1:] + [len(doc.text)])) if doc.pages else [(0, len(doc.text))]
    sections = doc.sections or [None]
    parts = []
    for number, (lo, hi) in enumerate(pages, 1):
        for s in sections:
            start, end = (lo, hi) if s is None else (max(lo, s.start), min(hi, s.end))
            if start < end:
                parts.append(Part(start, end, number if doc.pages else None, s.path if s else "", bool(s and s.code)))
    return parts


def context_of(title: str, section: str | None) -> str:
    """Where a passage of a document with sections stands: the title and the section path ("" for
    passages of documents without sections, whose ``section`` is None)."""
    return "" if section is None else PATH_SEPARATOR.join(x for x in (title, section) if x)


def encoding_text(title: str, section: str | None, text: str) -> str:
    """The text whose vector stands for a passage: its text after its context (a code block alone
    says little of what it is for)."""
    context = context_of(title, section)
    return f"{context}\n{text}" if context else text


def _batches(split: list[Split], size: int):
    """Group whole documents into batches of about ``size`` passages.

    Yields ``(batch, complete)``: ``complete`` is True when the batch ends with the last document of
    its file, the only places where a checkpoint may commit (a file is indexed all or nothing, so
    that its content hash can say it is done).
    """
    batch, count = [], 0
    for i, (doc, passages) in enumerate(split):
        batch.append((doc, passages))
        count += len(passages)
        if count >= size or i == len(split) - 1:
            following = split[i + 1][0] if i + 1 < len(split) else None
            complete = following is None or not doc.source or following.source != doc.source
            yield batch, complete
            batch, count = [], 0
