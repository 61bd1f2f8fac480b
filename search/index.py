"""Index: ties ingest, passages, encoders, the SQLite store and the FAISS vectors together."""

from __future__ import annotations

import hashlib
import json
import os
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterable, Sequence

import numpy as np
from tqdm.auto import tqdm

from .encoders import Encoder, load_encoder
from .errors import IndexCorrupt, IndexNotFound, ModelMismatch, UnreadableFile
from .ingest import (
    Document,
    RowOptions,
    file_hash,
    find_files,
    first_line_title,
    load_file,
)
from .models import DEFAULT_MODEL, resolve_model
from .passages import Passage, split_passages
from .retrieval import Hit, Retriever
from .store import Filter, Store
from .vectors import VectorIndex

INDEX_ENV = "SEARCH_INDEX"
DB_NAME = "index.db"
VECTORS_NAME = "vectors.faiss"


def default_index_path() -> Path:
    """``$SEARCH_INDEX``, else ``$XDG_DATA_HOME/search/index`` (``~/.local/share/search/index``)."""
    if os.environ.get(INDEX_ENV):
        return Path(os.environ[INDEX_ENV]).expanduser()
    data_home = Path(os.environ.get("XDG_DATA_HOME") or Path.home() / ".local" / "share")
    return data_home / "search" / "index"


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
    seconds: float = 0.0

    def to_dict(self) -> dict:
        return {**self.__dict__, "skipped": [{"path": p, "reason": r} for p, r in self.skipped]}


class Index:
    """A searchable index in one folder: ``index.db`` (SQLite) and ``vectors.faiss`` (FAISS).

    Use ``Index.create(path, model=...)`` or ``Index.open(path)``; both return an ``Index`` that
    is also a context manager.
    """

    #: Seconds between commits during a long indexing run (an interrupt loses at most this much).
    checkpoint_seconds = 30.0
    #: Passages encoded per step.
    batch_passages = 256

    def __init__(self, path: Path, store: Store, vectors: VectorIndex, encoder: Encoder | None = None,
                 precision: str = "auto"):
        self.path = Path(path)
        self.store = store
        self.vectors = vectors
        self.meta = store.meta()
        self._encoder = encoder
        self.precision = precision  # of the encoder's weights, when it loads

    # --- opening -----------------------------------------------------------------------------

    @classmethod
    def create(
        cls, path: str | os.PathLike | None = None, model: str = DEFAULT_MODEL,
        encoder: str = "sentence-transformers", max_tokens: int | None = None, overlap: int = 32,
        precision: str = "auto",
    ) -> "Index":
        """A new, empty index at ``path`` built with ``model``; an existing one is an error."""
        path = Path(path) if path else default_index_path()
        if (path / DB_NAME).exists():
            raise FileExistsError(f"An index already exists at {path}")
        enc = load_encoder(model, encoder, precision=precision)
        window = min(max_tokens or enc.max_tokens, enc.max_tokens)
        path.mkdir(parents=True, exist_ok=True)
        store = Store(path / DB_NAME)
        local = Path(model).expanduser()  # a local folder is recorded absolute: usable from anywhere
        store.set_meta({
            "model": str(local.resolve()) if local.is_dir() else str(model),
            "encoder": encoder, "dimension": enc.dimension, "normalized": "true",
            "metric": "cosine", "max_tokens": window, "overlap": overlap, "created": time.time(),
        })
        vectors = VectorIndex(enc.dimension)
        vectors.write_pending(path / VECTORS_NAME)
        store.commit()
        vectors.promote(path / VECTORS_NAME)
        return cls(path, store, vectors, enc, precision)

    @classmethod
    def open(cls, path: str | os.PathLike | None = None, model: str | None = None, check: bool = True,
             precision: str = "auto") -> "Index":
        """Open an existing index. ``model``, when given, must be the one it was built with; its
        weights run in ``precision`` (see ``models.PRECISIONS``)."""
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
        dimension = int(meta["dimension"])
        vectors_path = path / VECTORS_NAME
        with store.write_lock_if_free() as locked:
            if locked:  # no writer can commit meanwhile: finish or undo an interrupted save
                VectorIndex.recover(vectors_path, dimension, store.passage_ids())
            if not check:  # for repair: whatever can be read, else nothing
                try:
                    return cls(path, store, VectorIndex.load(vectors_path, dimension), precision=precision)
                except (IndexCorrupt, FileNotFoundError):
                    return cls(path, store, VectorIndex(dimension), precision=precision)
            if not vectors_path.exists():
                raise IndexCorrupt(f"The vector file {vectors_path} is missing. Run `search index --repair`.")
            # A writer in another process may be between its commit and its rename: look again.
            for _ in range(1 if locked else 30):
                vectors, ids = VectorIndex.load(vectors_path, dimension), store.passage_ids()
                if np.array_equal(np.sort(vectors.ids()), ids):
                    return cls(path, store, vectors, precision=precision)
                time.sleep(0.1)
        raise IndexCorrupt(
            f"The index at {path} is inconsistent: {len(vectors)} vectors for {len(ids)} passages."
            " Run `search index --repair` to rebuild the vectors from the database."
        )

    @classmethod
    def open_or_create(cls, path=None, model: str | None = None, encoder: str | None = None, precision: str = "auto",
                       **options) -> "Index":
        path = Path(path) if path else default_index_path()
        if (path / DB_NAME).exists():
            index = cls.open(path, model=model, precision=precision)
            if encoder and encoder != index.meta["encoder"]:
                raise ModelMismatch(f"The index at {path} uses the {index.meta['encoder']} encoder, not {encoder}.")
            return index
        return cls.create(path, model=model or DEFAULT_MODEL, encoder=encoder or "sentence-transformers",
                          precision=precision, **options)

    def close(self) -> None:
        self.store.close()

    def __enter__(self) -> "Index":
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    @property
    def encoder(self) -> Encoder:
        if self._encoder is None:
            self._encoder = load_encoder(self.meta["model"], self.meta["encoder"], precision=self.precision)
        return self._encoder

    @property
    def enrichers(self) -> list:
        """The enrichment tasks this index runs on every new passage (recorded in its meta)."""
        from .enrich import Enricher

        if "_enrichers" not in self.__dict__:
            tasks = json.loads(self.meta.get("enrich", "{}"))
            self._enrichers = [Enricher(task, model) for task, model in tasks.items()]
        return self._enrichers

    def set_enrichers(self, specs) -> None:
        """Add enrichment tasks (``"ner,sentiment"``, ``classify:FOLDER``...) to this index for good."""
        from .enrich import parse_enrichers

        current = {e.task: e for e in self.enrichers}
        for e in parse_enrichers(specs):
            current[e.task] = e
        self._enrichers = list(current.values())
        self.meta["enrich"] = json.dumps({e.task: e.model for e in self._enrichers})
        self.store.set_meta({"enrich": self.meta["enrich"]})
        self.store.commit()

    @property
    def max_tokens(self) -> int:
        return int(self.meta["max_tokens"])

    # --- writing ----------------------------------------------------------------------------

    def add_paths(
        self, paths: Iterable[str | os.PathLike], include: Sequence[str] = (), exclude: Sequence[str] = (),
        rows: RowOptions | None = None, prune: bool = False, progress: bool = False, enrich=None,
    ) -> IndexReport:
        """Index files and folders; unchanged files (same content hash) are skipped, changed ones replaced.

        ``enrich`` (``"ner,sentiment"``...) adds enrichment tasks to the index (see ``set_enrichers``).
        """
        started = time.perf_counter()
        if enrich:
            self.set_enrichers(enrich)
        report = IndexReport()
        files = list(find_files(paths, include, exclude))
        report.files = len(files)
        known = self.store.documents_by_key("source")
        split: list[tuple[Document, list[Passage]]] = []
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
                loaded = load_file(path, rows, data)
            except UnreadableFile as exc:
                report.skipped.append((source, str(exc)))
                continue
            if source in known:
                replaced_sources.append(source)
                report.updated += 1
            else:
                report.added += 1
            split.extend((doc, self._passages_of(doc)) for doc in loaded)
        stale = set(self.store.documents_of_sources(replaced_sources))
        if prune:
            gone = [s for s in self.store.file_sources() if not Path(s).exists()]
            pruned = self.store.documents_of_sources(gone)
            report.removed = len(pruned)
            stale |= set(pruned)
        report.passages = self._write(split, sorted(stale), progress)
        report.seconds = time.perf_counter() - started
        return report

    def add_texts(self, texts: Sequence[str], metadata: Sequence[dict] | None = None,
                  ids: Sequence[str] | None = None, progress: bool = False) -> IndexReport:
        """Index plain strings. ``ids`` name them (default: a hash of the text); a known id with new text is replaced."""
        started = time.perf_counter()
        report = IndexReport(files=0)
        known = self.store.documents_by_key("path")
        split, stale = [], []
        for i, text in enumerate(texts):
            digest = hashlib.sha256(text.encode()).hexdigest()
            key = str(ids[i]) if ids is not None else f"text:{digest[:16]}"
            if key in known and known[key][1] == digest:
                report.unchanged += 1
                continue
            if key in known:
                stale.append(known[key][0])
                report.updated += 1
            else:
                report.added += 1
            meta = dict(metadata[i]) if metadata is not None else {}
            doc = Document(path=key, text=text, title=str(meta.get("title") or first_line_title(text, key)),
                           metadata=meta, hash=digest)
            split.append((doc, self._passages_of(doc)))
        report.passages = self._write(split, stale, progress)
        report.seconds = time.perf_counter() - started
        return report

    def delete(self, targets: Iterable[str]) -> int:
        """Delete documents by path, source file, folder or glob; returns how many were deleted."""
        doc_ids: set[int] = set()
        for target in targets:
            doc_ids |= set(self.store.find_documents(target))
            resolved = str(Path(target).expanduser().resolve())
            doc_ids |= set(self.store.find_documents(resolved))
        self._write([], sorted(doc_ids), progress=False)
        return len(doc_ids)

    def _passages_of(self, doc: Document) -> list[Passage]:
        """Split a document (page by page for PDFs, so that a passage never spans two pages)."""
        overlap = int(self.meta.get("overlap", 32))
        bounds = doc.pages + [len(doc.text)] if doc.pages else [0, len(doc.text)]
        out = []
        for page, (lo, hi) in enumerate(zip(bounds, bounds[1:]), 1):
            for p in split_passages(doc.text[lo:hi], self.encoder.tokenizer, self.max_tokens - 2, overlap):
                out.append(Passage(p.text, p.start + lo, p.end + lo, page if doc.pages else None))
        return out

    def _write(self, split: list[tuple[Document, list[Passage]]], stale_doc_ids: list[int], progress: bool) -> int:
        """Replace ``stale_doc_ids`` by the split documents in one or more checkpointed transactions."""
        if not split and not stale_doc_ids:
            return 0
        self.store.begin_write()
        try:
            self.vectors.remove(self.store.delete_documents(stale_doc_ids))
            total = sum(len(p) for _, p in split)
            last_checkpoint = time.monotonic()
            with tqdm(total=total, desc="Encoding", unit="passage", disable=not progress or not total) as bar:
                for batch, complete in _batches(split, self.batch_passages):
                    texts = [p.text for _, passages in batch for p in passages]
                    vectors = self.encoder.encode(texts) if texts else np.zeros((0, self.vectors.dimension))
                    at, added = 0, []
                    for doc, passages in batch:
                        doc_id, ids = self.store.add_document(doc, passages, vectors[at : at + len(passages)])
                        self.vectors.add(ids, vectors[at : at + len(passages)])
                        at += len(passages)
                        added += [(pid, doc_id, p.start, p.text) for pid, p in zip(ids, passages)]
                    self._enrich_passages(added)
                    bar.update(len(texts))
                    if complete and time.monotonic() - last_checkpoint > self.checkpoint_seconds:
                        self._checkpoint()
                        last_checkpoint = time.monotonic()
            self._checkpoint()
        except BaseException:
            self._rollback()
            raise
        return total

    def _enrich_passages(self, passages: list[tuple[int, int, int, str]], enrichers=None) -> None:
        """Run enrichment tasks on (passage id, document id, start offset, text) rows, in the open transaction."""
        if not passages:
            return
        ids = [p[0] for p in passages]
        doc_ids = [p[1] for p in passages]
        for enricher in self.enrichers if enrichers is None else enrichers:
            results = enricher.run([p[3] for p in passages], [p[2] for p in passages])
            self.store.add_enrichment(enricher.task, ids, doc_ids, results)

    def enrich(self, specs=None, progress: bool = False) -> int:
        """Run enrichment tasks (given ones are added to the index's) on passages that lack them.

        Returns how many (passage, task) pairs were processed.
        """
        if specs:
            self.set_enrichers(specs)
        done = 0
        self.store.begin_write()
        try:
            for enricher in self.enrichers:
                todo = self.store.passages_to_enrich(enricher.task)
                for b in tqdm(range(0, len(todo), self.batch_passages), desc=f"Enriching ({enricher.task})",
                              disable=not progress or not todo):
                    self._enrich_passages(todo[b : b + self.batch_passages], [enricher])
                    done += len(todo[b : b + self.batch_passages])
            self.store.commit()
        except BaseException:
            self.store.rollback()
            raise
        return done

    def _checkpoint(self) -> None:
        path = self.path / VECTORS_NAME
        self.vectors.write_pending(path)
        self.store.commit()
        self.vectors.promote(path)

    def _rollback(self) -> None:
        """Forget uncommitted work: roll SQLite back and reload the last saved vectors."""
        self.store.rollback()
        self.vectors = VectorIndex.load(self.path / VECTORS_NAME, self.vectors.dimension)

    def repair(self, progress: bool = False) -> int:
        """Rebuild the FAISS file from the vectors kept in SQLite (re-encoding any passage without one).

        Returns the number of vectors in the rebuilt index.
        """
        missing = self.store.passages_without_vectors()
        if missing:
            ids = [i for i, _ in missing]
            self.store.set_vectors(ids, self.encoder.encode([t for _, t in missing]))
        matrix, ids = self.store.vectors()
        vectors = VectorIndex(int(self.meta["dimension"]))
        vectors.add(ids, matrix)
        self.vectors = vectors
        self._checkpoint()
        return len(vectors)

    # --- reading ----------------------------------------------------------------------------

    def embed(self, text: str) -> np.ndarray:
        return self.encoder.encode([text])[0]

    def retriever(self, **options) -> Retriever:
        return Retriever(self.store, self.vectors, self.embed, **options)

    def search(
        self, query: str, k: int = 10, mode: str = "hybrid", filters: Iterable[Filter | str] | dict = (),
        per_doc: bool = False, **options,
    ) -> list[Hit]:
        """The ``k`` best passages for ``query``; with ``per_doc`` only the best passage of each document.

        ``filters`` are ``Filter`` objects, ``"field=value"`` strings or a ``{field: value}`` dict.
        ``options`` go to the Retriever (``fusion``, ``alpha``).
        """
        filters = _filters(filters)
        n = max(k * 5, 100) if per_doc else max(k, 100 if mode == "hybrid" else k)
        ranked = self.retriever(**options).rank(query, n, mode, filters)
        if not per_doc:
            ranked = ranked[:k]
        rows = self.store.passages([i for i, *_ in ranked])
        hits: list[Hit] = []
        seen_docs: set[int] = set()
        for pid, score, dense, lexical in ranked:
            row = rows[pid]
            if per_doc:
                if row["document_id"] in seen_docs:
                    continue
                seen_docs.add(row["document_id"])
            hits.append(Hit(
                rank=len(hits) + 1, score=score, passage_id=pid, document_id=row["document_id"],
                path=row["path"], title=row["title"], text=row["text"], start=row["start_char"],
                end=row["end_char"], page=row["page"], source=row["source"], metadata=row["metadata"],
                dense_score=dense, lexical_score=lexical,
            ))
            if len(hits) == k:
                break
        return hits

    def ask(self, question: str, k: int = 5, answers: int = 3, reader=None,
            no_answer_threshold: float | None = None, **search_options) -> list:
        """Retrieve ``k`` passages and read them: the best ``answers`` as ``FoundAnswer``s.

        ``reader`` is a ``Reader`` (default: the shipped one, loaded once per index).
        """
        from .reader import Reader, answers_from_hits

        if reader is None:
            reader = self.__dict__.setdefault("_reader", Reader())
        hits = self.search(question, k=k, **search_options)
        return answers_from_hits(reader, question, hits, answers, no_answer_threshold=no_answer_threshold)

    def stats(self) -> dict:
        sizes = {name: (self.path / name).stat().st_size for name in (DB_NAME, VECTORS_NAME) if (self.path / name).exists()}
        return {
            "path": str(self.path), **self.store.counts(), "vectors": len(self.vectors),
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


def _filters(filters) -> list:
    if isinstance(filters, dict):
        return [Filter(k, str(v)) for k, v in filters.items()]
    return [Filter.parse(f) if isinstance(f, str) else f for f in filters]


def _batches(split: list[tuple[Document, list[Passage]]], size: int):
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
