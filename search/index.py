"""Index: one folder holding ``index.db`` (SQLite) and ``vectors.faiss`` (FAISS), opened consistent.

The read path lives here (open, search, ask, stats); writes go through ``writer.IndexWriter``, which
``Index`` exposes as ``add_paths``, ``add_texts``, ``delete``, ``enrich`` and ``repair``.
"""

from __future__ import annotations

import json
import os
import time
from functools import cached_property
from pathlib import Path
from typing import Iterable

import numpy as np

from .encoders import Encoder, load_encoder
from .enrich import Enricher, make_enricher
from .exported import check_backend, sustained_backend
from .errors import IndexCorrupt, IndexNotFound, ModelMismatch, SearchError
from .filters import Condition, parse_filters
from .lexical import FOLDER, LexicalIndex
from .models import DEFAULT_MODEL, resolve_model
from .retrieval import Hit, Retriever
from .store import Store
from .vectors import VectorIndex, plan
from .writer import IndexReport, IndexWriter, write_meta

INDEX_ENV = "SEARCH_INDEX"
DB_NAME = "index.db"
VECTORS_NAME = "vectors.faiss"

__all__ = ["Index", "IndexReport", "default_index_path"]


def _create_atomically(path: Path, meta: dict, dimension: int) -> None:
    """A new index's files, complete before the database takes its name: an empty vector file,
    then a database holding the meta, built under a temporary name and renamed into place (the
    moment the index exists). A kill before that leaves no index at ``path``, only temporary files
    the next attempt replaces."""
    building = path / (DB_NAME + ".creating")
    for leftover in path.glob(DB_NAME + ".creating*"):
        leftover.unlink()
    empty = VectorIndex(dimension)
    empty.write_pending(path / VECTORS_NAME)
    empty.promote(path / VECTORS_NAME)
    store = Store(building)
    with store.conn:
        write_meta(store.conn, meta)
    store.close()  # the last connection: SQLite folds the WAL into the file and removes it
    os.replace(building, path / DB_NAME)


def default_index_path() -> Path:
    """``$SEARCH_INDEX``, else ``$XDG_DATA_HOME/search/index`` (``~/.local/share/search/index``)."""
    if os.environ.get(INDEX_ENV):
        return Path(os.environ[INDEX_ENV]).expanduser()
    data_home = Path(os.environ.get("XDG_DATA_HOME") or Path.home() / ".local" / "share")
    return data_home / "search" / "index"


class Index:
    """A searchable index in one folder.

    Use ``Index.create(path, model=...)`` or ``Index.open(path)``; both return an ``Index`` that
    is also a context manager.
    """

    def __init__(self, path: Path, store: Store, vectors: VectorIndex, encoder: Encoder | None = None,
                 precision: str = "auto", backend: str = "auto"):
        self.path = Path(path)
        self.store = store
        self.vectors = vectors
        self.meta = store.meta()
        self._encoder = encoder
        self.precision = precision  # of the encoder's torch weights, when it loads
        self.backend = check_backend(backend)  # what runs the query encoder (exported.BACKENDS)
        lexical = LexicalIndex.path(self.path)
        self.lexical = LexicalIndex(lexical) if lexical.exists() else None  # tantivy, for large indexes
        self.writer = IndexWriter(self)

    # --- opening -----------------------------------------------------------------------------

    @classmethod
    def create(
        cls, path: str | os.PathLike | None = None, model: str = DEFAULT_MODEL,
        encoder: str = "sentence-transformers", max_tokens: int | None = None, overlap: int = 32,
        precision: str = "auto", backend: str = "auto", ann: str = "auto",
    ) -> "Index":
        """A new, empty index at ``path`` built with ``model``; an existing one is an error.

        ``ann`` chooses the vector index (``vectors.ANN``): ``auto`` searches exactly up to
        ``vectors.EXACT_UP_TO`` passages and approximately (IVF) beyond.
        """
        path = Path(path) if path else default_index_path()
        if (path / DB_NAME).exists():
            raise FileExistsError(f"An index already exists at {path}")
        plan(0, ann)  # a clear error for an unknown value
        enc = load_encoder(model, encoder, precision=precision)
        window = min(max_tokens or enc.max_tokens, enc.max_tokens)
        local = Path(model).expanduser()  # a local folder is recorded absolute: usable from anywhere
        meta = {
            "model": str(local.resolve()) if local.is_dir() else str(model),
            "encoder": encoder, "dimension": enc.dimension, "normalized": "true",
            "metric": "cosine", "max_tokens": window, "overlap": overlap, "created": time.time(), "ann": ann,
        }
        path.mkdir(parents=True, exist_ok=True)
        _create_atomically(path, meta, enc.dimension)
        index = cls(path, Store(path / DB_NAME), VectorIndex(enc.dimension), precision=precision, backend=backend)
        index.meta = index.store.meta()
        return index

    @classmethod
    def open(cls, path: str | os.PathLike | None = None, model: str | None = None, check: bool = True,
             precision: str = "auto", backend: str = "auto") -> "Index":
        """Open an existing index. ``model``, when given, must be the one it was built with; it
        runs on ``backend`` (``exported.BACKENDS``), its torch weights in ``precision``
        (``precision.PRECISIONS``)."""
        path = Path(path) if path else default_index_path()
        if not (path / DB_NAME).exists():
            raise IndexNotFound(f"No index at {path}. Create one with `search index PATHS` (or Index.create).")
        store = Store(path / DB_NAME)
        meta = store.meta()
        if "model" not in meta:
            raise IndexCorrupt(f"The index at {path} has no model recorded; re-create it.")
        if model is not None and not _same_model(model, meta["model"]):
            raise ModelMismatch(
                f"The index at {path} was built with {meta['model']!r}; it cannot be searched with {model!r}."
                " Use the same model, or build a new index (--index) with the other one."
            )
        index = cls(path, store, VectorIndex(int(meta["dimension"])), precision=precision, backend=backend)
        index.writer.recover_if_idle()
        if not check:  # for repair: whatever can be read, else nothing
            try:
                index.vectors = index.load_vectors()
            except (IndexCorrupt, FileNotFoundError):
                pass
            return index
        if not index.vectors_path.exists():
            raise IndexCorrupt(f"The vector file {index.vectors_path} is missing. Run `search index --repair`.")
        index.vectors = index.load_vectors()
        return index

    @classmethod
    def open_or_create(cls, path=None, model: str | None = None, encoder: str | None = None, precision: str = "auto",
                       backend: str = "auto", ann: str | None = None, **options) -> "Index":
        """Open the index at ``path``, or create it (``options`` as for ``create``). ``ann`` is for a new one."""
        path = Path(path) if path else default_index_path()
        if (path / DB_NAME).exists():
            index = cls.open(path, model=model, precision=precision, backend=backend)
            if encoder and encoder != index.meta["encoder"]:
                raise ModelMismatch(f"The index at {path} uses the {index.meta['encoder']} encoder, not {encoder}.")
            return index
        return cls.create(path, model=model or DEFAULT_MODEL, encoder=encoder or "sentence-transformers",
                          precision=precision, backend=backend, ann=ann or "auto", **options)

    def close(self) -> None:
        """Close the index, once a rebuild the writer started is done (``background``)."""
        self.writer.wait_for_rebuilds()
        if self.lexical is not None:
            self.lexical.close()
        self.store.close()

    def __enter__(self) -> "Index":
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def refresh(self) -> None:
        """Re-read the meta that another process may have changed since this index was opened
        (its enrichment tasks)."""
        meta = self.store.meta()
        if meta != self.meta:
            self.meta = meta
            self.__dict__.pop("enrichers", None)

    @property
    def vectors_path(self) -> Path:
        return self.path / VECTORS_NAME

    def load_vectors(self) -> VectorIndex:
        """The vector file brought up to the store's last commit, and checked against it."""
        vectors = VectorIndex.load(self.vectors_path, self.vectors.dimension)
        with self.store.reading():
            vectors = self.catch_up(vectors)
            passages = self.store.counts()["passages"]
        if len(vectors) != passages:
            raise IndexCorrupt(
                f"The index at {self.path} is inconsistent: {len(vectors)} vectors for {passages} passages."
                " Run `search index --repair` to rebuild the vectors from the database."
            )
        return vectors

    def catch_up(self, vectors: VectorIndex) -> VectorIndex:
        """``vectors`` with the changes committed since their generation applied (inside a read or
        write transaction, whose state they then match).

        Vectors older than the changes the store keeps start again from the vector file, or, when
        that file was rewritten after this transaction began (it is newer than what this
        transaction sees), from the vectors stored in SQLite.
        """
        generation = self.store.generation()
        if vectors.generation == generation:
            return vectors
        if vectors.generation < self.store.meta_int("purged_through") or vectors.generation > generation:
            vectors = VectorIndex.load(self.vectors_path, vectors.dimension)
            if vectors.generation > generation:
                matrix, ids = self.store.vectors()
                return VectorIndex.build(vectors.dimension, ids, matrix, self.ann, generation)
        vectors.apply_changes(*self.store.vector_changes(vectors.generation), generation)
        return vectors

    @property
    def encoder(self) -> Encoder:
        """The encoder of passages, for bulk work (``exported.sustained_backend``)."""
        if self._encoder is None:
            self._encoder = load_encoder(self.meta["model"], self.meta["encoder"], precision=self.precision,
                                         backend=sustained_backend(self.backend, self.precision))
        return self._encoder

    @cached_property
    def query_encoder(self) -> Encoder:
        """The encoder of queries: ONNX Runtime unless the backend says torch, so that a query
        needs no torch import (``exported``)."""
        if sustained_backend(self.backend, self.precision) == self.backend:
            return self.encoder
        return load_encoder(self.meta["model"], self.meta["encoder"], precision=self.precision, backend=self.backend)

    @cached_property
    def enrichers(self) -> list[Enricher]:
        """The enrichment tasks this index runs on every new passage (recorded in its meta)."""
        return [make_enricher(task, model) for task, model in json.loads(self.meta.get("enrich", "{}")).items()]

    @property
    def max_tokens(self) -> int:
        return int(self.meta["max_tokens"])

    @property
    def ann(self) -> str:
        """The structure of the vector index (``vectors.ANN``); indexes made before it was a choice: auto."""
        return self.meta.get("ann", "auto")

    # --- writing (see writer.IndexWriter) ----------------------------------------------------------

    def add_paths(self, paths, ray: str | None = None, ray_workers: int | None = None, **options) -> IndexReport:
        """Index files and folders; unchanged files (same content hash) are skipped, changed ones replaced.

        Options: ``include``/``exclude`` globs, ``rows`` (``RowOptions`` for .jsonl/.csv), ``prune``
        (drop documents whose files are gone), ``progress``, ``enrich`` (``"ner,sentiment"``...: tasks
        added to the index for good). ``ray`` (``"auto"`` or a cluster address) encodes and enriches on
        a pool of ``ray_workers`` Ray workers (default: one per CPU of the cluster; see ``distributed``).
        """
        if ray is None:
            return self.writer.add_paths(paths, **options)
        if options.get("enrich"):  # before the workers start: they run the index's enrichers
            self.set_enrichers(options.pop("enrich"))
        with self.writer.encoding_on_ray(ray, ray_workers):
            return self.writer.add_paths(paths, **options)

    def add_texts(self, texts, metadata=None, ids=None, progress: bool = False, vectors=None) -> IndexReport:
        """Index plain strings. ``ids`` name them (default: a hash of the text); a known id with new text is replaced.

        ``vectors`` (one row per text, the index's dimension) are embeddings you made yourself: each
        text is then one passage, stored as given (normalized) without running the encoder.
        """
        return self.writer.add_texts(texts, metadata, ids, progress, vectors)

    def delete(self, targets: Iterable[str]) -> int:
        """Delete documents by path, source file, folder or glob; returns how many were deleted."""
        return self.writer.delete(targets)

    def wait_for_rebuilds(self) -> None:
        """Wait until what the writer rebuilds in the background (the vector file, the tantivy
        index: ``background``) is done and in use; ``close`` waits too."""
        self.writer.wait_for_rebuilds()

    def set_ann(self, ann: str) -> None:
        """Choose the vector index's structure (``vectors.ANN``) for good; it is rebuilt now if needed."""
        self.writer.set_ann(ann)

    def set_enrichers(self, specs) -> None:
        """Add enrichment tasks (``"ner,sentiment"``, ``classify:FOLDER``...) to this index for good."""
        self.writer.set_enrichers(specs)

    def enrich(self, specs=None, progress: bool = False) -> int:
        """Run enrichment tasks (given ones are added) on passages that lack them; returns (passage, task) pairs done."""
        return self.writer.enrich(specs, progress)

    def repair(self, progress: bool = False) -> int:
        """Rebuild the FAISS file from the vectors kept in SQLite; returns the number of vectors."""
        return self.writer.repair()

    # --- reading ----------------------------------------------------------------------------

    def prepare_queries(self) -> None:
        """Make what a fast first query needs (the query encoder's ONNX file, ``exported``) now."""
        getattr(self.query_encoder, "session", None)

    def embed(self, text: str) -> np.ndarray:
        return self.query_encoder.encode([text], prompt="query")[0]

    def retriever(self, **options) -> Retriever:
        """A Retriever over the state of the read transaction it is called in: the tantivy index
        joins only when it matches that state (``lexical``)."""
        current = self.lexical is not None and self.lexical.generation == self.store.generation()
        return Retriever(self.store, self.vectors, self.embed, lexical_index=self.lexical if current else None, **options)

    def search(
        self, query: str, k: int = 10, mode: str = "hybrid", filters: Iterable[Condition | str] | dict = (),
        per_doc: bool = False, reranker=None, **options,
    ) -> list[Hit]:
        """The ``k`` best passages for ``query``; with ``per_doc`` only the best passage of each document.

        ``filters`` are ``Filter`` objects, ``"field=value"`` strings or a ``{field: value}`` dict.
        ``reranker`` (a ``Reranker``) reorders the first ``reranker.depth`` hits before the ``k`` best are kept.
        ``options`` go to the Retriever (``fusion``, ``alpha``, ``nprobe``).
        """
        if not query.strip():
            raise SearchError("The query is empty: say what to search for.")
        if reranker is not None:
            hits = self.search(query, max(k, reranker.depth), mode, filters, per_doc, **options)
            return reranker.rerank(query, hits)[:k]
        filters = parse_filters(filters)
        self._check_enriched(filters)
        n = max(k * 5, 100) if per_doc else max(k, 100 if mode == "hybrid" else k)
        with self.store.reading():  # one committed state, whatever a writer does meanwhile
            self.vectors = self.catch_up(self.vectors)
            ranked = self.retriever(**options).rank(query, n, mode, filters)
            if not per_doc:
                ranked = ranked[:k]
            rows = self.store.passages([r.passage_id for r in ranked])
        hits: list[Hit] = []
        seen_docs: set[int] = set()
        for r in ranked:
            row = rows.get(r.passage_id)
            if row is None:  # from a lexical index a commit ahead of this read
                continue
            if per_doc:
                if row["document_id"] in seen_docs:
                    continue
                seen_docs.add(row["document_id"])
            hits.append(Hit(
                rank=len(hits) + 1, score=r.score, passage_id=r.passage_id, document_id=row["document_id"],
                path=row["path"], title=row["title"], text=row["text"], start=row["start_char"],
                end=row["end_char"], page=row["page"], section=row["section"] or "", code=bool(row["code"]),
                language=row["language"] or "",
                source=row["source"], metadata=row["metadata"],
                dense_score=r.dense, lexical_score=r.lexical,
            ))
            if len(hits) == k:
                break
        return hits

    def _check_enriched(self, filters) -> None:
        """A filter on entities or labels needs its enrichment task: without it nothing could match."""
        have = {e.task for e in self.enrichers}
        for task in {getattr(f, "task", None) for f in filters} - have - {None}:
            command = f"`search enrich --enrich {task}`" if task in ("ner", "sentiment") else \
                f"`search enrich --enrich classify:FOLDER` with a classifier named {task}"
            raise SearchError(f"This index has no {task} enrichment, so the filter cannot match anything:"
                              f" run {command} first.")

    def ask(self, question: str, k: int = 5, answers: int = 3, reader=None, threshold: float | str | None = "default",
            **search_options) -> list:
        """Retrieve ``k`` passages and read them: the best ``answers`` as ``FoundAnswer``s, or an
        empty list when the reader's best answer has less confidence than ``threshold`` (the
        default: the reader's calibrated threshold; None: always answer).

        ``reader`` is a ``Reader`` (default: ``default_reader()``, loaded once per index).
        """
        from .reader import answers_from_hits

        if reader is None:
            reader = self.__dict__.setdefault("_reader", self.default_reader())
        hits = self.search(question, k=k, **search_options)
        return answers_from_hits(reader, question, hits, answers, threshold=threshold)

    def default_reader(self, **options):
        """The shipped ``Reader`` for this index's encoder: the multilingual reader for an index built
        with the multilingual encoder, else the English one."""
        from .reader import Reader

        return Reader.for_encoder(self.meta["model"], **options)

    def holds_documents_outside(self, folder: Path) -> bool:
        """Whether any document of the index comes from elsewhere than ``folder`` (texts included)."""
        inside = [s for s in self.store.file_sources() if Path(s).is_relative_to(folder)]
        return self.stats()["documents"] > len(self.store.documents_of_sources(inside))

    def entities(self, label: str | None = None, top: int = 20) -> list[dict]:
        """The most frequent named entities (text, label, mentions, documents), of one ``label`` or all."""
        return self.store.entity_counts(label.upper() if label else None, top)

    def document(self, document_id: int, passage_id: int | None = None) -> dict | None:
        """A document (text, metadata...) or None; with ``passage_id`` (a passage of it) also
        ``highlight``: that passage's start and end in the text."""
        with self.store.reading():
            document = self.store.document(document_id)
            span = self.store.passage_span(passage_id, document_id) if document and passage_id is not None else None
        if document is not None:
            document["highlight"] = {"start": span[0], "end": span[1]} if span else None
        return document

    def facets(self, top: int = 10) -> dict:
        """What results can be filtered by, with counts (``Store.facets``)."""
        with self.store.reading():
            return self.store.facets(top)

    def stats(self) -> dict:
        sizes = {name: (self.path / name).stat().st_size for name in (DB_NAME, VECTORS_NAME) if (self.path / name).exists()}
        if self.lexical is not None:
            sizes[FOLDER] = sum(f.stat().st_size for f in self.lexical.folder.iterdir() if f.is_file())
        with self.store.reading():
            self.vectors = self.catch_up(self.vectors)
            counts = self.store.counts()
        return {
            "path": str(self.path), **counts, "vectors": len(self.vectors),
            "vector_index": self.vectors.describe(), "ann": self.ann,
            "lexical_index": "tantivy" if self.lexical is not None else "FTS5",
            "model": self.meta["model"], "encoder": self.meta["encoder"], "dimension": int(self.meta["dimension"]),
            "max_tokens": self.max_tokens, "created": float(self.meta["created"]),
            "bytes": sum(sizes.values()), "files_on_disk": sizes,
        }


def _same_model(a: str, b: str) -> bool:
    if a == b:
        return True
    try:
        return resolve_model(a) == resolve_model(b)
    except Exception:
        return False
