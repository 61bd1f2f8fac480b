"""The write path of an index: files and texts -> documents -> passages -> vectors -> one transaction.

``IndexWriter`` owns the SQLite write transaction; each one is a new generation of the store. A
commit writes SQLite (the passages carry their vectors) and applies its changes to the tantivy index,
if there is one, so that it costs in proportion to the change, not to the index. What costs in
proportion to the index is done beside the commits, in a thread (``background``): rewriting the
vector file when the changes since its generation have grown large (``compact_min``,
``compact_fraction``; until then readers apply them from SQLite), building it anew with another
structure when the index has grown to want one, building the tantivy index. Long runs commit every
``checkpoint_seconds``, even inside a file: its documents stay marked incomplete until its last
passage is in, and the next run goes on from the passages stored (``IndexWriter._resume``).
"""

from __future__ import annotations

import collections
import errno
import functools
import hashlib
import json
import os
import sqlite3
import time
import warnings
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Iterable, Iterator, Mapping, Sequence

import numpy as np
from filelock import FileLock, Timeout

from .background import LEXICAL, VECTORS, Rebuild
from .enrich import Enricher, mark_enriched, parse_enrichers, run_readable
from .exported import sustained_backend
from .errors import IndexWriteError, SearchError, UnreadableFile
from .ingest import BadRow, Document, RowOptions, file_hash, find_files, first_line_title, load_file
from .language import detect_languages
from .lexical import TANTIVY_FROM, LexicalIndex
from .markup import PATH_SEPARATOR
from .passages import Passage, split_passages, token_offsets
from .progress import progress_bar
from .store import StoredPassage, as_stored, chunks, marks, vector_blob
from .vectors import VectorIndex, plan

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
    resumed: int = 0  # files an interrupted run began, finished now
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


class IndexWriter:
    """Adds, replaces, deletes, enriches and repairs the documents of one ``Index``."""

    #: Seconds between commits during a long indexing run (an interrupt loses at most this much).
    checkpoint_seconds = 5.0
    #: Passages encoded per step.
    batch_passages = 256
    #: The vector file is rewritten (in the background) when more passages than this, plus this
    #: fraction of the index, were added or removed since it was (until then readers apply those
    #: changes from SQLite, about 30 µs each when they open: 0.7 s at a million passages).
    compact_min = 2000
    compact_fraction = 0.02
    #: Seconds a run waits for the writer lock before saying another process writes (a reader
    #: opening the index holds it for a moment to tidy up after a killed run).
    lock_grace = 2.0

    def __init__(self, index: "Index"):
        self.index = index
        self.generation = 0  # of the open write transaction
        self.wait = False  # for another process's run to end, instead of failing
        self.on_wait = lambda: None  # called once when this writer starts waiting
        # not bound to a thread: a rebuild (``background``) holds it from its own, and lets go of it there
        self._lock = FileLock(index.path / LOCK_NAME, thread_local=False)
        self.remote = None  # a distributed.RayEncoding, for a run that encodes on Ray
        self.rebuild: Rebuild | None = None  # running in the background, or done and not yet adopted

    @contextmanager
    def exclusive(self):
        """Hold the writer lock: one run at a time, from reading what is indexed to its last commit
        (SQLite's own lock covers one transaction; a run commits many)."""
        try:
            self._lock.acquire(timeout=self.lock_grace)
        except Timeout:
            if not self.wait:
                raise SearchError(f"Another process is writing to the index at {self.index.path}:"
                                  " try again when it is done, or run with --wait.") from None
            self.on_wait()
            self._lock.acquire()
        try:
            if self.rebuild is None:  # else a pending vector file may be its, being written
                VectorIndex.recover(self.index.vectors_path, self.index.store.generation())
            yield
        finally:
            if self.index.lexical is not None:
                self.index.lexical.close()  # tantivy's own writer lock, for the next run of any process
            self._lock.release()

    def recover_if_idle(self) -> None:
        """Finish or undo a vector save left by a killed run, unless a run is in progress (then the
        pending file is its own) or the folder is read-only."""
        try:
            self._lock.acquire(timeout=0)
        except (Timeout, OSError):
            return
        try:
            VectorIndex.recover(self.index.vectors_path, self.index.store.generation())
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
        self._record_vector_file(VectorIndex.file_generation(self.index.vectors_path))

    def _record_vector_file(self, generation: int | None) -> None:
        """Note that the vector file is now of ``generation`` (a rebuild may have written it since
        the last transaction). The removals before the file it replaced go: readers of that one
        still find the changes since it."""
        written = self.index.store.meta_int("vectors_generation")
        if generation is not None and generation > written:
            self.conn.execute("DELETE FROM removed_passages WHERE generation <= ?", (written,))
            write_meta(self.conn, {"vectors_generation": generation, "purged_through": written})

    def commit(self, rewrite_vectors: bool = False) -> None:
        """Commit the transaction and bring the tantivy index to it; then start rebuilds that have
        become due (``background``). ``rewrite_vectors`` writes the vector file with the commit
        instead, in two phases: ``vectors.faiss.pending``, the commit, a rename over the live file
        (``vectors.VectorIndex.recover`` finishes or undoes a run killed in between)."""
        if rewrite_vectors:
            self.wait_for_rebuilds()
            self._record_vector_file(self.generation)
            self.index.vectors.write_pending(self.index.vectors_path)
            self.conn.commit()
            self.index.vectors.promote(self.index.vectors_path)
        else:
            self.conn.commit()
        if self.rebuild is not None and self.rebuild.done:
            self.adopt()
        self.update_lexical()
        self._rebuild_vectors_if_due()

    def _rebuild_vectors_if_due(self) -> None:
        """Rewrite the vector file in the background when the changes since it have grown large, or
        build it anew when the index wants another structure (``VectorIndex.due_for_rebuild``)."""
        if self.rebuild is not None:
            return  # one at a time; this one's turn comes at a later commit
        vectors = self.index.vectors
        restructure = vectors.due_for_rebuild(self.index.ann)
        written = VectorIndex.file_generation(self.index.vectors_path) or 0
        if restructure or self.index.store.changes_since(written) > self.compact_min + self.compact_fraction * len(vectors):
            self._start(VECTORS, self.index.vectors_path, restructure)

    def _start(self, kind: str, target: Path, restructure: bool = False) -> None:
        """Start a rebuild; it holds the writer lock until it is done (``background``)."""
        self._lock.acquire()
        self.rebuild = Rebuild(kind, target, self.index.store.path, self.index.vectors.dimension, self.index.ann,
                               restructure, self._lock.release)
        if restructure:  # what the index gets meanwhile, for the rebuilt one to get too (``adopt``)
            self.index.vectors.journal = self.rebuild.journal
        try:
            self.rebuild.start()
        except BaseException:
            self.rebuild, self.index.vectors.journal = None, None
            self._lock.release()
            raise

    def adopt(self) -> None:
        """Wait for the rebuild and take what it made: the tantivy index, or vectors of a new
        structure (given what the index got since it started). A rebuild that failed lost
        nothing (the last file stays, and readers apply the changes since it); it is said in a
        warning, and tried again when due at a later commit."""
        rebuild, self.rebuild = self.rebuild, None
        rebuild.wait()
        journal, self.index.vectors.journal = self.index.vectors.journal, None
        if rebuild.error is not None:
            what = "vector file" if rebuild.kind == VECTORS else "tantivy index"
            warnings.warn(f"Could not rebuild the {what} of the index at {self.index.path}: {_reason(rebuild.error)}."
                          " Nothing is lost; it is tried again later.", stacklevel=2)
        elif rebuild.kind == LEXICAL:
            self.index.lexical = rebuild.result
        elif rebuild.restructure and journal is rebuild.journal:  # (a rollback reloads the vectors instead)
            vectors = rebuild.result
            vectors.replay(journal[rebuild.replayed :])
            vectors.generation = self.index.vectors.generation
            self.index.vectors = vectors

    def wait_for_rebuilds(self) -> None:
        """Let a background rebuild finish (``background``), and take what it made."""
        if self.rebuild is not None:
            self.adopt()

    def update_lexical(self, rebuild: bool = False) -> None:
        """Bring the tantivy index (``lexical``) to the state just committed, from the changes since
        the one it matches. It is built in the background (``background``) once the index has
        ``TANTIVY_FROM`` passages, or when it cannot follow (asked, or too far behind)."""
        store, lexical = self.index.store, self.index.lexical
        if self.rebuild is not None and self.rebuild.kind == LEXICAL:
            return  # being built; the changes since its snapshot come at the next commit after
        if lexical is None and len(self.index.vectors) < TANTIVY_FROM:
            return
        since = -1 if lexical is None else lexical.generation
        if rebuild or since < 0 or since < store.meta_int("purged_through"):
            if self.rebuild is None:  # else at a later commit
                if lexical is not None:
                    lexical.close()
                    self.index.lexical = None
                self._start(LEXICAL, LexicalIndex.path(self.index.path))
            return
        lexical.apply(store.removed_since(since), store.texts_since(since), store.generation())

    def rollback(self) -> None:
        """Forget uncommitted work: roll SQLite back and reload the last committed vectors."""
        self.conn.rollback()
        self.wait_for_rebuilds()
        VectorIndex.pending_path(self.index.vectors_path).unlink(missing_ok=True)
        self.index.vectors = self.index.load_vectors()

    def set_meta(self, values: Mapping[str, object]) -> None:
        write_meta(self.conn, values)

    @holding_writer_lock
    def set_ann(self, ann: str) -> None:
        """Choose the vector index's structure (``vectors.ANN``); the index is rebuilt now if that
        asks for another one than it has."""
        plan(0, ann)  # a clear error for an unknown value
        if ann == self.index.ann:
            return
        self.wait_for_rebuilds()
        self.begin()
        self.set_meta({"ann": ann})
        self.index.meta["ann"] = ann
        rewrite = self.index.vectors.due_for_rebuild(ann)
        if rewrite:
            self.index.vectors = self.rebuilt_vectors()
        self.commit(rewrite_vectors=rewrite)

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
        files = list(find_files(paths, include, exclude, ignored, report.skipped))
        report.ignored = [str(p) for p in ignored]
        report.files = len(files)
        store = self.index.store
        known = store.documents_by_key("source", map(str, files))
        pending: list[Pending] = []
        replaced_sources: list[str] = []
        redo: list[int] = []  # begun documents to do again
        for path in progress_bar(files, desc="Reading", unit="file", enabled=progress):
            source = str(path)
            try:
                data = path.read_bytes()
            except OSError as exc:
                report.skipped.append((source, f"cannot read: {exc.strerror or exc}"))
                continue
            same = source in known and known[source][1] == file_hash(data)
            if same and known[source][2]:
                report.unchanged += 1
                continue
            try:
                loaded = load_file(path, rows, data, report.bad_rows)
            except UnreadableFile as exc:
                report.skipped.append((source, str(exc)))
                continue
            if same:  # an interrupted run began this file: go on where it stopped
                report.resumed += 1
                pending += self._resume(loaded, store.stored_progress("source", source), redo)
                continue
            if source in known:
                replaced_sources.append(source)
                report.updated += 1
            else:
                report.added += 1
            pending += [Pending(doc, self._passages_of(doc)) for doc in loaded]
        stale = set(store.documents_of_sources(replaced_sources)) | set(redo)
        if prune:
            gone = [s for s in store.file_sources() if not Path(s).exists()]
            pruned = store.documents_of_sources(gone)
            report.removed = len(pruned)
            stale |= set(pruned)
        report.passages = self._write(pending, sorted(stale), progress)
        report.seconds = time.perf_counter() - started
        return report

    @contextmanager
    def encoding_on_ray(self, address: str, workers: int | None = None):
        """Encode and enrich on a pool of Ray workers (``distributed``) while inside."""
        from .distributed import RayEncoding, connect
        from .precision import resolve_precision

        connect(address)
        precision = resolve_precision(self.index.precision)
        self.remote = RayEncoding(self.index.meta["model"], self.index.meta["encoder"], precision,
                                  sustained_backend(self.index.backend, precision), workers,
                                  [(e.task, e.model) for e in self.index.enrichers])
        try:
            yield self.remote
        finally:
            self.remote.close()
            self.remote = None

    @holding_writer_lock
    def add_texts(self, texts: Sequence[str], metadata: Sequence[dict] | None = None,
                  ids: Sequence[str] | None = None, progress: bool = False, vectors=None) -> IndexReport:
        started = time.perf_counter()
        report = IndexReport(files=0)
        given = None if vectors is None else self._given_vectors(vectors, len(texts))
        digests = [hashlib.sha256(text.encode()).hexdigest() for text in texts]
        keys = [str(i) for i in ids] if ids is not None else [f"text:{digest[:16]}" for digest in digests]
        known = self.index.store.documents_by_key("path", keys)
        pending: list[Pending] = []
        stale, batch = [], {}  # batch: key -> its place in pending, for keys repeated in this call
        for i, (text, digest, key) in enumerate(zip(texts, digests, keys)):
            previous, complete = (pending[batch[key]].doc.hash, True) if key in batch else known.get(key, (None, None, True))[1:]
            meta = dict(metadata[i]) if metadata is not None else {}
            doc = Document(path=key, text=text, title=str(meta.get("title") or first_line_title(text, key)),
                           metadata=meta, hash=digest)
            if previous == digest and complete:
                report.unchanged += 1  # also when the same text comes twice in this call
                continue
            if previous == digest and given is None:  # an interrupted run began it
                report.resumed += 1
                batch[key] = len(pending)
                pending += self._resume([doc], self.index.store.stored_progress("path", key), stale)
                continue
            if previous == digest:  # begun, with given vectors: one passage, done again
                report.resumed += 1
            elif key in batch or key in known:
                report.updated += 1
            else:
                report.added += 1
            if key in known and key not in batch:
                stale.append(known[key][0])
            entry = Pending(doc, self._passages_of(doc)) if given is None else \
                Pending(doc, [Passage(text, 0, len(text))], vectors=given[i : i + 1])
            if key in batch:
                if pending[batch[key]].doc_id is not None:  # a resumed text, stored in part: it goes
                    stale.append(pending[batch[key]].doc_id)
                pending[batch[key]] = entry  # the later text of an id wins, as in a later call
            else:
                batch[key] = len(pending)
                pending.append(entry)
        report.passages = self._write(pending, stale, progress)
        report.seconds = time.perf_counter() - started
        return report

    def _given_vectors(self, vectors, count: int) -> np.ndarray:
        """Vectors a caller brings for its texts, checked and normalized (the index's metric is cosine)."""
        matrix = np.asarray(vectors, dtype=np.float32)
        dimension = self.index.vectors.dimension
        if matrix.ndim != 2 or matrix.shape != (count, dimension):
            raise ValueError(f"vectors must be one row of {dimension} numbers per text ({count} texts);"
                             f" got shape {matrix.shape}")
        norms = np.linalg.norm(matrix, axis=1, keepdims=True)
        if not np.all(np.isfinite(norms)) or np.any(norms == 0):
            raise ValueError("vectors must be finite and not zero")
        return matrix / norms

    @holding_writer_lock
    def delete(self, targets: Iterable[str]) -> int:
        doc_ids: set[int] = set()
        for target in targets:
            doc_ids |= set(self.index.store.find_documents(target))
            doc_ids |= set(self.index.store.find_documents(str(Path(target).expanduser().resolve())))
        self._write([], sorted(doc_ids), show_progress=False)
        return len(doc_ids)

    def _passages_of(self, doc: Document) -> list[Passage]:
        """Split a document part by part (PDF pages, sections, code blocks), so that a passage never
        spans two pages or leaves its section. The window leaves room for the context each passage
        is encoded with (``encoding_text``)."""
        overlap = int(self.index.meta.get("overlap", 32))
        tokenizer = self.index.encoder.splitting_tokenizer
        out = []
        for part in document_parts(doc):
            section = part.section if doc.sections else None
            context = context_of(doc.title, section)
            room = len(token_offsets(tokenizer, context)) + 1 if context else 0
            window = max(self.index.max_tokens - 2 - min(room, MAX_CONTEXT_TOKENS), 16)
            for p in split_passages(doc.text[part.start : part.end], tokenizer, window, overlap):
                out.append(Passage(p.text, p.start + part.start, p.end + part.start, part.page, section, part.code))
        return out

    def _resume(self, docs: list[Document], stored: dict[str, tuple[int, int, int]], stale: list[int]) -> list[Pending]:
        """The documents of a file (or a text) that an interrupted run began, each to go on after the
        passages it has. Splitting is deterministic, so those are the first of its passages; a
        document whose stored passages do not end where they should is done again (its id goes to
        ``stale``)."""
        out = []
        for doc in docs:
            item = Pending(doc, self._passages_of(doc))
            doc_id, count, last_end = stored.get(doc.path, (None, 0, 0))
            if doc_id is not None and count <= len(item.passages) and (count == 0 or item.passages[count - 1].end == last_end):
                item.doc_id, item.done = doc_id, count
            elif doc_id is not None:
                stale.append(doc_id)
            out.append(item)
        return out

    def _write(self, pending: list[Pending], stale_doc_ids: list[int], show_progress: bool) -> int:
        """Replace ``stale_doc_ids`` by the pending documents, committing every ``checkpoint_seconds``.

        A checkpoint may fall anywhere, even within a document: documents are stored incomplete and
        marked complete when the last of their file's (or text's) passages is in, so that the next run
        knows to go on with them. Returns the number of passages encoded.
        """
        if not pending and not stale_doc_ids:
            return 0
        self.begin()
        self.index.vectors.remove(self.delete_documents(stale_doc_ids))
        total = sum(len(item.passages) - item.done for item in pending)
        unfinished = collections.Counter(item.unit for item in pending)  # documents of each file still to finish
        finished: dict[str, list[int]] = collections.defaultdict(list)
        last_checkpoint = time.monotonic()
        with progress_bar(total=total, desc="Encoding", unit="passage", enabled=show_progress and total > 0) as bar:
            batches = list(_slices(pending, self.batch_passages))
            for batch, (vectors, remote) in zip(batches, self._encoded(batches, bar)):
                vectors = as_stored(vectors)
                detected, found = remote or (None, None)  # what Ray workers did beside encoding
                if detected is None:
                    detected = detect_languages([p.text for item, lo, hi in batch for p in item.passages[lo:hi]])
                at, added = 0, []
                for item, lo, hi in batch:
                    if item.doc_id is None:
                        item.doc_id = self.add_document(item.doc)
                    languages = detected[at : at + hi - lo]
                    ids = self.add_passages(item.doc_id, item.passages[lo:hi], lo, vectors[at : at + hi - lo], languages)
                    added += [StoredPassage(pid, item.doc_id, p.start, p.text, language)
                              for pid, p, language in zip(ids, item.passages[lo:hi], languages)]
                    at += hi - lo
                    if hi == len(item.passages):
                        finished[item.unit].append(item.doc_id)
                        unfinished[item.unit] -= 1
                        if not unfinished[item.unit]:
                            self.mark_complete(finished.pop(item.unit))
                self.index.vectors.add([p.id for p in added], vectors[:at])  # once a batch: FAISS has a cost per call
                self._enrich_passages(added, self.index.enrichers, found)
                if time.monotonic() - last_checkpoint > self.checkpoint_seconds:
                    self.commit()
                    self.begin()
                    last_checkpoint = time.monotonic()
        self.commit()
        return total

    def _encoded(self, batches: list[list[tuple[Pending, int, int]]], bar) -> Iterator[tuple[np.ndarray, tuple | None]]:
        """The vectors of each batch's passages, in order: the ones given with them, else encoded
        here or, when this run has one, by a pool of Ray workers (``distributed``), which also
        detect the passages' languages and run the enrichers (``EncoderWorker.process``: then the
        second of each pair; else None). The bar moves as they come."""
        texts = ([encoding_text(item.doc.title, p.section, p.text) for item, lo, hi in batch
                  for p in item.passages[lo:hi]] for batch in batches)
        if self.remote is not None:  # a run of files (add_paths): nothing comes with vectors
            passages = ([(p.text, p.start) for item, lo, hi in batch for p in item.passages[lo:hi]] for batch in batches)
            for vectors, extras in self.remote.process_batches(zip(texts, passages)):
                bar.update(len(vectors))
                yield vectors, extras
            return
        for batch, batch_texts in zip(batches, texts):
            if all(item.vectors is not None for item, _, _ in batch):
                bar.update(len(batch_texts))
                yield np.vstack([item.vectors[lo:hi] for item, lo, hi in batch]), None
            else:
                yield self.index.encoder.encode(batch_texts, on_batch=bar.update) if batch_texts else \
                    np.zeros((0, self.index.vectors.dimension), np.float32), None  # the bar moves with every batch of 32

    def add_document(self, doc: Document) -> int:
        """Insert a document, not yet complete; return its id."""
        return self.conn.execute(
            "INSERT INTO documents (path, source, title, hash, mtime, metadata, pages, text, indexed_at, complete)"
            " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, 0)",
            (doc.path, doc.source, doc.title, doc.hash, doc.mtime, json.dumps(doc.metadata),
             json.dumps(doc.pages), doc.text, time.time()),
        ).lastrowid

    def add_passages(self, doc_id: int, passages: list[Passage], first: int, vectors: np.ndarray,
                     languages: list[str]) -> list[int]:
        """Insert passages of a document, numbered from ``first``; return their ids."""
        ids = []
        for order, (p, vec, language) in enumerate(zip(passages, vectors, languages), first):
            ids.append(self.conn.execute(
                "INSERT INTO passages (document_id, ord, start_char, end_char, page, section, code, text, vector,"
                " generation, language) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                (doc_id, order, p.start, p.end, p.page, p.section, int(p.code), p.text,
                 vector_blob(vec), self.generation, language),
            ).lastrowid)
        return ids

    def mark_complete(self, doc_ids: list[int]) -> None:
        for chunk in chunks(doc_ids):
            self.conn.execute(f"UPDATE documents SET complete = 1 WHERE id IN ({marks(chunk)})", chunk)

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

    def _enrich_passages(self, passages: list[StoredPassage], enrichers: Sequence[Enricher],
                         found: dict[str, list] | None = None) -> None:
        """Run enrichment tasks on the passages in their models' languages (or take what Ray
        workers ``found``) and store the results, in the open transaction; passages in other
        languages are marked seen, with nothing found."""
        for enricher in enrichers:
            results = found[enricher.task] if found is not None else run_readable(
                enricher, [p.text for p in passages], [p.start for p in passages], [p.language for p in passages])
            kept = [(p, r) for p, r in zip(passages, results) if r is not None]
            if kept:
                enricher.save(self.conn, [p.id for p, _ in kept], [p.document_id for p, _ in kept], [r for _, r in kept])
            mark_enriched(self.conn, enricher.task, [p.id for p in passages])

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
            for b in progress_bar(range(0, len(todo), self.batch_passages), desc=f"Enriching ({enricher.task})",
                                  unit="batch", enabled=progress and bool(todo)):
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
        self.wait_for_rebuilds()
        self.begin(catch_up=False)  # the vector file may be what is broken
        missing = store.passages_without_vectors()
        if missing:
            vectors = self.index.encoder.encode([encoding_text(title, section, text) for _, title, section, text in missing])
            self.conn.executemany("UPDATE passages SET vector = ?, generation = ? WHERE id = ?",
                                  [(vector_blob(v), self.generation, m[0])
                                   for m, v in zip(missing, vectors)])
        self.index.vectors = self.rebuilt_vectors()
        self.commit(rewrite_vectors=True)
        if self.index.lexical is not None:
            self.update_lexical(rebuild=True)
            self.wait_for_rebuilds()
        return len(self.index.vectors)

    def rebuilt_vectors(self) -> VectorIndex:
        """The vector index built anew from the vectors in SQLite (as this transaction sees them), with
        the structure the index's ``ann`` setting wants for their number."""
        matrix, ids = self.index.store.vectors()
        return VectorIndex.build(self.index.store.dimension, ids, matrix, self.index.ann, self.generation)


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


@dataclass
class Pending:
    """A document to store: its passages, and how far an earlier, interrupted run got."""

    doc: Document
    passages: list[Passage]
    doc_id: int | None = None  # once stored
    done: int = 0  # passages already stored
    vectors: np.ndarray | None = None  # of the passages, when the caller brings them

    @property
    def unit(self) -> str:
        """What is complete or not as a whole: the document's file (all its rows), or the text."""
        return self.doc.source or self.doc.path


def _slices(pending: list[Pending], size: int):
    """Batches of ``(item, lo, hi)``, about ``size`` passages each, cutting long documents in parts:
    the passages ``lo:hi`` of each item still to store (an item with none left comes once, empty,
    so that it is stored and counted finished)."""
    batch, count = [], 0
    for item in pending:
        lo = item.done
        while True:
            hi = min(len(item.passages), lo + size - count)
            batch.append((item, lo, hi))
            count += hi - lo
            if count >= size:
                yield batch
                batch, count = [], 0
            lo = hi
            if lo >= len(item.passages):
                break
    if batch:
        yield batch
