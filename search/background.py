"""Rebuilds of what an index derives from SQLite, done beside the writer instead of in its commits.

The vector file and the tantivy index (``lexical``) are derived from the store and may lag behind
it: readers apply the changes since the vector file's generation, and use FTS5 while the tantivy
index does not match their snapshot. Bringing them up to date costs in proportion to the index
(rewriting the vector file, training an IVF anew when the index has grown to want twice the
lists, building the tantivy index at ``TANTIVY_FROM`` passages: seconds to a minute at a
million), so a ``Rebuild`` runs in a thread on a read snapshot of the store (in WAL mode a reader
does not block the writer) while the writer's commits go on, each costing what it changes.

A rebuild holds the writer lock from the run that starts it until it is done: the next runs of the
same process go on beside it; another process's run waits for it, as for any run.
"""

from __future__ import annotations

import threading
from pathlib import Path
from typing import Callable

import faiss

from .lexical import LexicalIndex
from .store import Store
from .vectors import VectorIndex

#: What a ``Rebuild`` makes.
VECTORS, LEXICAL = "vectors", "lexical"
#: A rebuild of the vectors applies what the writer did meanwhile until this few changes are left
#: for the writer to apply when it takes them (``IndexWriter.adopt``: its commit waits for those).
LEFT_FOR_THE_WRITER = 8


class Rebuild:
    """One rebuild in a thread: of the vector file at ``target`` (``VECTORS``; with a new structure
    when ``restructure``, the index's ``ann`` setting then choosing it) or of the tantivy index in
    the folder ``target`` (``LEXICAL``), from the store as committed when it starts
    (``generation``). ``release`` is called when it ends, whatever happened; ``error`` then holds
    what went wrong, if anything.

    A new structure misses what the writer adds and removes after the snapshot: the writer records
    that in ``journal`` (``VectorIndex.journal``), and the rebuild applies it too, but for the
    last ``journal[replayed:]``."""

    def __init__(self, kind: str, target: Path, database: Path, dimension: int, ann: str,
                 restructure: bool, release: Callable[[], None]):
        self.kind = kind
        self.restructure = restructure
        self.result: VectorIndex | LexicalIndex | None = None
        self.journal: list | None = [] if restructure else None
        self.replayed = 0
        self.generation = -1
        self.error: BaseException | None = None
        self._args = (Path(target), Path(database), dimension, ann)
        self._release = release
        self._snapshot_taken = threading.Event()
        self._thread = threading.Thread(target=self._run, name=f"search-rebuild-{kind}")

    def start(self) -> None:
        """Start, and return once the snapshot is taken (what the writer commits next is not in it)."""
        self._thread.start()
        self._snapshot_taken.wait()

    @property
    def done(self) -> bool:
        return not self._thread.is_alive()

    def wait(self) -> None:
        self._thread.join()

    def _run(self) -> None:
        target, database, dimension, ann = self._args
        store = None
        faiss.omp_set_num_threads(1)  # this thread's: two teams of OpenMP threads on few cores wait on each other
        try:
            store = Store(database)
            with store.reading():
                self.generation = store.generation()
                self._snapshot_taken.set()
                if self.kind == LEXICAL:
                    self.result = _built_lexical(target, store, self.generation)
                else:
                    vectors = self._vectors(target, store, dimension, ann)
                    self.result = vectors if self.restructure else None  # else the writer has the same
        except BaseException as exc:  # reported by the writer (``IndexWriter.adopt``)
            self.error = exc
        finally:
            self._snapshot_taken.set()
            if store is not None:
                store.close()
            self._release()

    def _vectors(self, path: Path, store: Store, dimension: int, ann: str) -> VectorIndex:
        """The vectors of the snapshot, written to the vector file (two-phase: the pending file,
        synced, is renamed over the live one; its generation is a committed one, so a run killed
        in between leaves a file ``VectorIndex.recover`` promotes)."""
        if self.restructure:
            matrix, ids = store.vectors()
            vectors = VectorIndex.build(dimension, ids, matrix, ann, self.generation)
        else:
            vectors = VectorIndex.load(path, dimension)
            vectors.apply_changes(*store.vector_changes(vectors.generation), self.generation)
        try:
            vectors.write_pending(path)
        except BaseException:
            VectorIndex.pending_path(path).unlink(missing_ok=True)
            raise
        vectors.promote(path)
        if self.journal is not None:
            while len(self.journal) - self.replayed > LEFT_FOR_THE_WRITER:  # the writer appends meanwhile
                end = len(self.journal)
                vectors.replay(self.journal[self.replayed : end])
                self.replayed = end
        return vectors


def _built_lexical(folder: Path, store: Store, generation: int) -> LexicalIndex:
    lexical = LexicalIndex(folder)
    lexical.apply([], store.texts_since(-1), generation, rebuild=True)
    lexical.close()
    return lexical
