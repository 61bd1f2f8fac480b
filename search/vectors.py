"""The FAISS inner-product index keyed by passage id, with crash-safe saving.

Saving is two-phase so that the vectors on disk always match a committed SQLite state:
``write_pending`` writes ``<file>.pending``; the caller commits SQLite; ``promote`` renames the
pending file over the live one (atomic). ``VectorIndex.recover`` finishes or discards a pending
file left by a run that was killed between the two steps.
"""

from __future__ import annotations

import os
from pathlib import Path

import faiss
import numpy as np

from .errors import IndexCorrupt


class VectorIndex:
    def __init__(self, dimension: int, index=None):
        self.dimension = dimension
        self.index = index if index is not None else faiss.IndexIDMap2(faiss.IndexFlatIP(dimension))

    def __len__(self) -> int:
        return int(self.index.ntotal)

    def ids(self) -> np.ndarray:
        return faiss.vector_to_array(self.index.id_map).astype(np.int64)

    def add(self, ids, vectors: np.ndarray) -> None:
        if len(ids) == 0:
            return
        vectors = np.ascontiguousarray(vectors, dtype=np.float32)
        if vectors.shape[1] != self.dimension:
            raise ValueError(f"vectors have dimension {vectors.shape[1]}, the index {self.dimension}")
        self.index.add_with_ids(vectors, np.asarray(ids, dtype=np.int64))

    def remove(self, ids) -> None:
        if len(ids):
            self.index.remove_ids(faiss.IDSelectorBatch(np.asarray(ids, dtype=np.int64)))

    def vectors(self, ids) -> np.ndarray:
        """The stored vectors of ``ids`` (all must be present)."""
        return np.vstack([self.index.reconstruct(int(i)) for i in ids]) if len(ids) else np.zeros((0, self.dimension), np.float32)

    def search(self, query: np.ndarray, k: int, allowed=None) -> list[tuple[int, float]]:
        """The ``k`` nearest ids to one query vector, optionally only among ``allowed`` ids."""
        k = min(k, len(self))
        if k <= 0:
            return []
        params = None
        if allowed is not None:
            allowed = np.asarray(list(allowed), dtype=np.int64)
            if len(allowed) == 0:
                return []
            params = faiss.SearchParameters(sel=faiss.IDSelectorBatch(allowed))
        query = np.ascontiguousarray(query, dtype=np.float32).reshape(1, -1)
        scores, ids = self.index.search(query, k, params=params)
        return [(int(i), float(s)) for i, s in zip(ids[0], scores[0]) if i != -1]

    # --- persistence -------------------------------------------------------------------------

    @staticmethod
    def pending_path(path: Path) -> Path:
        return path.with_name(path.name + ".pending")

    def write_pending(self, path: Path) -> None:
        pending = self.pending_path(path)
        faiss.write_index(self.index, str(pending))
        with open(pending, "rb") as f:
            os.fsync(f.fileno())

    def promote(self, path: Path) -> None:
        os.replace(self.pending_path(path), path)

    @classmethod
    def load(cls, path: Path, dimension: int) -> "VectorIndex":
        if not path.exists():
            raise FileNotFoundError(f"The vector file {path} is missing. Run `search index --repair`.")
        try:
            index = faiss.read_index(str(path))
        except RuntimeError as exc:
            raise IndexCorrupt(
                f"The vector file {path} is damaged or truncated. Run `search index --repair` to rebuild it."
            ) from exc
        if index.d != dimension:
            raise IndexCorrupt(f"The vector file {path} has dimension {index.d}, the index expects {dimension}.")
        if not isinstance(index, faiss.IndexIDMap2):
            index = faiss.downcast_index(index)
        return cls(dimension, index)

    @classmethod
    def recover(cls, path: Path, dimension: int, expected_ids: np.ndarray) -> bool:
        """Promote or delete a pending file left behind by an interrupted save.

        Returns True when the pending file held exactly ``expected_ids`` (the committed SQLite
        state) and became the live file.
        """
        pending = cls.pending_path(path)
        if not pending.exists():
            return False
        try:
            candidate = cls.load(pending, dimension)
            matches = np.array_equal(np.sort(candidate.ids()), np.sort(expected_ids))
        except IndexCorrupt:
            matches = False
        if matches:
            os.replace(pending, path)
        else:
            pending.unlink()
        return matches
