"""The FAISS inner-product index keyed by passage id, and its file.

The file is a snapshot of the vectors at one commit of the SQLite store (its *generation*): a
header (magic, generation, length, CRC-32) and FAISS's serialized index. The header lets a reader
know how far behind the store the file is (it applies the changes since, kept in SQLite, see
``Store.vector_changes``), and makes a truncated or bit-flipped file a clear error instead of
wrong results.

Saving is two-phase so that a live file is always a committed state: ``write_pending`` writes
``<file>.pending``; the caller commits SQLite; ``promote`` renames the pending file over the live
one (atomic). ``VectorIndex.recover`` promotes or discards a pending file left by a killed run.

The structure is chosen by size (``plan``): exact search (a flat index) up to ``EXACT_UP_TO``
vectors, then an inverted-file index with 8-bit scalar quantization (IVF-SQ8) trained on the
index's own vectors, retrained when it has grown enough to want twice the lists. Its scores are
approximate; ``retrieval.Retriever`` rescores its candidates with the exact vectors kept in SQLite.
"""

from __future__ import annotations

import math
import mmap
import os
import struct
import zlib
from pathlib import Path

import faiss
import numpy as np

from .errors import IndexCorrupt

MAGIC = b"SEARCHVEC1"
#: magic, generation, payload bytes, CRC-32 of the payload
HEADER = struct.Struct("<10sQQI")

#: What ``--ann`` may ask: ``auto`` (exact up to ``EXACT_UP_TO`` vectors, then IVF), ``flat``, ``ivf``.
ANN = ("auto", "flat", "ivf")
EXACT_UP_TO = 50_000
#: An IVF index searches this fraction of its lists by default (``--nprobe``), and at least
#: ``MIN_PROBES``: at a million passages 64 of 1,024 lists, recall@10 0.967 against exact search
#: at 4.7 ms (16 lists: 0.924, 32: 0.952; docs/scale.md).
PROBED_FRACTION = 1 / 16
MIN_PROBES = 16


def default_probes(lists: int) -> int:
    return max(MIN_PROBES, round(lists * PROBED_FRACTION))


#: k-means wants this many training vectors per list at least (FAISS warns below 39).
POINTS_PER_LIST = 39
#: Training vectors per list (a sample of the index's own).
TRAIN_PER_LIST = 64


def plan(count: int, ann: str = "auto") -> tuple[str, int]:
    """The structure ``ann`` wants for ``count`` vectors: ``("flat", 0)`` or ``("ivf", lists)``,
    about the square root of the count in lists."""
    if ann not in ANN:
        raise ValueError(f"Unknown --ann {ann!r}; choose one of {', '.join(ANN)}")
    if ann == "flat" or (ann == "auto" and count < EXACT_UP_TO) or count == 0:
        return ("flat", 0)
    return ("ivf", max(1, min(2 ** round(math.log2(math.sqrt(count))), count // POINTS_PER_LIST)))


class VectorIndex:
    def __init__(self, dimension: int, index=None, generation: int = 0):
        self.dimension = dimension
        self.index = index if index is not None else faiss.IndexIDMap2(faiss.IndexFlatIP(dimension))
        self.generation = generation  # the store's generation these vectors match
        self.journal: list | None = None  # when a list: every add and remove is recorded (``replay``)

    @classmethod
    def build(cls, dimension: int, ids, vectors: np.ndarray, ann: str = "auto", generation: int = 0) -> "VectorIndex":
        """An index of these vectors with the structure ``plan`` wants (an IVF is trained on them)."""
        kind, lists = plan(len(ids), ann)
        built = cls(dimension, generation=generation)
        if kind == "ivf":
            ivf = faiss.IndexIVFScalarQuantizer(faiss.IndexFlatIP(dimension), dimension, lists,
                                                faiss.ScalarQuantizer.QT_8bit, faiss.METRIC_INNER_PRODUCT)
            sample = np.random.default_rng(0).choice(len(ids), min(len(ids), lists * TRAIN_PER_LIST), replace=False)
            ivf.train(np.ascontiguousarray(vectors[np.sort(sample)], dtype=np.float32))
            built.index = ivf
        built.add(ids, vectors)
        return built

    @property
    def kind(self) -> str:
        return "ivf" if isinstance(self.index, faiss.IndexIVF) else "flat"

    @property
    def lists(self) -> int:
        return int(self.index.nlist) if self.kind == "ivf" else 0

    @property
    def exact(self) -> bool:
        """Whether search scores are exact (else ``Retriever`` rescores the candidates)."""
        return self.kind == "flat"

    def due_for_rebuild(self, ann: str) -> bool:
        """Whether ``plan`` wants another structure: another kind, or at least twice the lists. An
        IVF index left by ``auto`` goes back to exact search only below half the threshold, so that
        an index near it is not rebuilt back and forth."""
        kind, lists = plan(len(self), ann)
        if kind == "flat" and self.kind == "ivf" and ann == "auto":
            return len(self) < EXACT_UP_TO // 2
        return kind != self.kind or lists >= 2 * max(self.lists, 1)

    def describe(self) -> str:
        return f"IVF-SQ8, {self.lists:,} lists" if self.kind == "ivf" else "flat (exact)"

    def __len__(self) -> int:
        return int(self.index.ntotal)

    def ids(self) -> np.ndarray:
        """The ids held (for an IVF index in the order of its lists)."""
        if self.kind == "flat":
            return faiss.vector_to_array(self.index.id_map).astype(np.int64)
        lists = self.index.invlists
        return np.concatenate([np.zeros(0, np.int64)] + [
            faiss.rev_swig_ptr(lists.get_ids(i), lists.list_size(i)).copy() for i in range(self.lists)])

    def add(self, ids, vectors: np.ndarray) -> None:
        if len(ids) == 0:
            return
        vectors = np.ascontiguousarray(vectors, dtype=np.float32)
        if vectors.shape[1] != self.dimension:
            raise ValueError(f"vectors have dimension {vectors.shape[1]}, the index {self.dimension}")
        self.index.add_with_ids(vectors, np.asarray(ids, dtype=np.int64))
        if self.journal is not None:
            self.journal.append((np.asarray(ids, dtype=np.int64), vectors))

    def remove(self, ids) -> None:
        if len(ids):
            self.index.remove_ids(faiss.IDSelectorBatch(np.asarray(ids, dtype=np.int64)))
            if self.journal is not None:
                self.journal.append((np.asarray(ids, dtype=np.int64), None))

    def apply_changes(self, removed: list[int], added: list[int], matrix: np.ndarray, generation: int) -> None:
        """Bring these vectors to ``generation`` with the changes since theirs (``Store.vector_changes``:
        an id removed and added again is in both)."""
        self.remove(removed + added)
        self.add(added, matrix)
        self.generation = generation

    def replay(self, journal: list) -> None:
        """Do again what another index recorded in its ``journal``, in order."""
        for ids, vectors in journal:
            if vectors is None:
                self.remove(ids)
            else:
                self.add(ids, vectors)

    def search(self, query: np.ndarray, k: int, allowed=None, nprobe: int | None = None) -> list[tuple[int, float]]:
        """The ``k`` nearest ids to one query vector, optionally only among ``allowed`` ids. An IVF
        index searches ``nprobe`` lists, more when ``allowed`` is a small part of the index (so that
        enough of it is reached)."""
        k = min(k, len(self))
        if k <= 0:
            return []
        selector = None
        if allowed is not None:
            allowed = np.asarray(list(allowed), dtype=np.int64)
            if len(allowed) == 0:
                return []
            selector = faiss.IDSelectorBatch(allowed)
        if self.kind == "ivf":
            probes = nprobe or default_probes(self.lists)
            if allowed is not None:
                probes = math.ceil(probes * len(self) / len(allowed))
            params = faiss.SearchParametersIVF(sel=selector, nprobe=min(self.lists, max(1, probes)))
        else:
            params = faiss.SearchParameters(sel=selector) if selector is not None else None
        query = np.ascontiguousarray(query, dtype=np.float32).reshape(1, -1)
        scores, ids = self.index.search(query, k, params=params)
        return [(int(i), float(s)) for i, s in zip(ids[0], scores[0]) if i != -1]

    # --- persistence -------------------------------------------------------------------------

    @staticmethod
    def pending_path(path: Path) -> Path:
        return path.with_name(path.name + ".pending")

    def write_pending(self, path: Path) -> None:
        """Write these vectors, as of their generation, to the pending file, synced to disk. FAISS
        writes straight into the file (a serialized copy in memory took seconds at a million);
        the header, with the payload's length and CRC, goes in front last."""
        with open(self.pending_path(path), "wb") as f:
            f.write(bytes(HEADER.size))
            checked = _Checked(f)
            faiss.write_index(self.index, faiss.PyCallbackIOWriter(checked.write))
            f.seek(0)
            f.write(HEADER.pack(MAGIC, self.generation, checked.size, checked.crc))
            f.flush()
            os.fsync(f.fileno())

    def promote(self, path: Path) -> None:
        os.replace(self.pending_path(path), path)

    @classmethod
    def load(cls, path: Path, dimension: int) -> "VectorIndex":
        """The vectors of a file ``write_pending`` wrote, checked against its header before FAISS
        parses them (a damaged length could make it allocate gigabytes); files of earlier versions
        have no header. FAISS reads from a memory map of the file: deserializing a copy in memory
        took 1.8 s at a million vectors, this 0.5 s."""
        if not path.exists():
            raise FileNotFoundError(f"The vector file {path} is missing. Run `search index --repair`.")
        damaged = IndexCorrupt(f"The vector file {path} is damaged or truncated."
                               " Run `search index --repair` to rebuild it from the database.")
        if path.stat().st_size == 0:
            raise damaged
        with open(path, "rb") as f, mmap.mmap(f.fileno(), 0, access=mmap.ACCESS_READ) as data:
            generation, start = 0, 0
            if data[: len(MAGIC)] == MAGIC:
                if len(data) < HEADER.size:
                    raise damaged
                _, generation, size, crc = HEADER.unpack(data[: HEADER.size])
                start = HEADER.size
                with memoryview(data) as view:
                    if len(data) - start != size or zlib.crc32(view[start:]) != crc:
                        raise damaged
            try:
                index = faiss.read_index(faiss.PyCallbackIOReader(_Reader(data, start).read))
            except RuntimeError as exc:
                raise damaged from exc
        if index.d != dimension:
            raise IndexCorrupt(f"The vector file {path} has dimension {index.d}, the index expects {dimension}.")
        return cls(dimension, index, generation)

    @staticmethod
    def file_generation(path: Path) -> int | None:
        """The generation a vector file's header names (0 for files of earlier versions), or None
        when the header is unreadable or promises more bytes than the file has."""
        try:
            with open(path, "rb") as f:
                head = f.read(HEADER.size)
                size = os.fstat(f.fileno()).st_size
        except OSError:
            return None
        if head[: len(MAGIC)] != MAGIC:
            return 0 if size else None
        if len(head) < HEADER.size:
            return None
        _, generation, payload, _ = HEADER.unpack(head)
        return generation if size == HEADER.size + payload else None

    @classmethod
    def recover(cls, path: Path, committed: int) -> bool:
        """Promote or delete a pending file left behind by an interrupted save (the caller holds the
        writer lock, so no save is in progress).

        The pending file holds a committed state when its generation is at most ``committed`` (the
        store's): it was written whole and synced before that commit. Then it becomes the live
        file and True is returned. Only the header is read: the size of the file does not matter.
        """
        pending = cls.pending_path(path)
        if not pending.exists():
            return False
        generation = cls.file_generation(pending)
        ok = generation is not None and 0 < generation <= committed
        if ok:
            os.replace(pending, path)
        else:
            pending.unlink()
        return ok


class _Checked:
    """A file FAISS writes through a callback, counting the bytes and their CRC-32."""

    def __init__(self, file):
        self.file = file
        self.size = 0
        self.crc = 0

    def write(self, data: bytes) -> int:
        self.file.write(data)
        self.size += len(data)
        self.crc = zlib.crc32(data, self.crc)
        return len(data)


class _Reader:
    """Bytes of a memory map for FAISS's read callback, from ``start`` on."""

    def __init__(self, data: mmap.mmap, start: int):
        self.data = data
        self.at = start

    def read(self, n: int) -> bytes:
        chunk = self.data[self.at : self.at + n]
        self.at += len(chunk)
        return chunk
