"""Approximate vector indexes side by side, on the vectors of ``bench_scale.py`` (SQuAD sentences
averaged into passages, SQuAD questions as queries): build seconds, bytes per vector, query p50
and recall@10 against exact search, for exact search (flat), IVF-SQ8 (what ``--ann ivf`` builds,
with and without the exact rescoring the engine adds), IVF-Flat and HNSW, over ``--nprobe`` /
``efSearch`` values.

    python benches/bench_ann.py [--passages 100000] [--queries 200]

FAISS alone (no SQLite, no query encoder): the structures, not the engine. Rescoring reads the
exact vectors from memory here; the engine reads them from SQLite (bench_scale.py measures that).
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")

import faiss  # noqa: E402
import numpy as np  # noqa: E402

sys.path.insert(0, str(Path(__file__).resolve().parent))
from bench_scale import Corpus  # noqa: E402

from search import Index  # noqa: E402
from search.vectors import TRAIN_PER_LIST, plan  # noqa: E402


def timed_search(index, queries: np.ndarray, k: int) -> tuple[float, np.ndarray]:
    ids = np.zeros((len(queries), k), np.int64)
    times = []
    for i, q in enumerate(queries):
        started = time.perf_counter()
        ids[i] = index.search(q.reshape(1, -1), k)[1][0]
        times.append(time.perf_counter() - started)
    return 1000 * statistics.median(times), ids


def recall(found: np.ndarray, truth: np.ndarray) -> float:
    return float(np.mean([len(set(f) & set(t)) / len(t) for f, t in zip(found, truth)]))


def rescored(found: np.ndarray, vectors: np.ndarray, queries: np.ndarray, k: int) -> np.ndarray:
    out = np.zeros((len(found), k), np.int64)
    for i, (ids, q) in enumerate(zip(found, queries)):
        ids = ids[ids >= 0]
        out[i, : min(k, len(ids))] = ids[np.argsort(-(vectors[ids] @ q))[:k]]
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--passages", type=int, default=100_000)
    parser.add_argument("--queries", type=int, default=200)
    args = parser.parse_args()
    faiss.omp_set_num_threads(1)  # one query at a time, as the engine searches
    with Index.create(Path(tempfile.mkdtemp()) / "ix") as index:
        corpus = Corpus(index)
        _, vectors = corpus.take(args.passages)
        questions = list(corpus.rng.choice(corpus.questions, size=args.queries, replace=False))
        queries = np.vstack([index.embed(q) for q in questions]).astype(np.float32)
    dimension = vectors.shape[1]
    exact = faiss.IndexFlatIP(dimension)
    exact.add(vectors)
    flat_ms, truth = timed_search(exact, queries, 10)
    lists = plan(args.passages, "ivf")[1]
    print(f"# {args.passages:,} vectors of {dimension} dimensions, {args.queries} queries, 1 thread;"
          f" IVF with {lists} lists (as --ann ivf/auto builds)\n")
    print("| index | setting | build s | bytes/vector | p50 ms | recall@10 |\n|---|---|---:|---:|---:|---:|")
    print(f"| flat (exact) | | 0 | {4 * dimension} | {flat_ms:.2f} | 1.000 |")
    sample = vectors[np.random.default_rng(0).choice(len(vectors), min(len(vectors), lists * TRAIN_PER_LIST), replace=False)]
    for name, make in (("IVF-SQ8", lambda q: faiss.IndexIVFScalarQuantizer(q, dimension, lists, faiss.ScalarQuantizer.QT_8bit,
                                                                            faiss.METRIC_INNER_PRODUCT)),
                       ("IVF-Flat", lambda q: faiss.IndexIVFFlat(q, dimension, lists, faiss.METRIC_INNER_PRODUCT))):
        started = time.perf_counter()
        quantizer = faiss.IndexFlatIP(dimension)
        ivf = make(quantizer)
        ivf.train(sample)
        ivf.add(vectors)
        build = time.perf_counter() - started
        size = len(faiss.serialize_index(ivf)) / len(vectors)
        for nprobe in (4, 8, 16, 32, 64):
            ivf.nprobe = nprobe
            ms, found = timed_search(ivf, queries, 10)
            print(f"| {name} | nprobe {nprobe} | {build:.1f} | {size:.0f} | {ms:.2f} | {recall(found, truth):.3f} |")
            if name == "IVF-SQ8":
                ms30, found30 = timed_search(ivf, queries, 30)
                print(f"| IVF-SQ8, 30 rescored | nprobe {nprobe} | {build:.1f} | {size:.0f} | {ms30:.2f}+ |"
                      f" {recall(rescored(found30, vectors, queries, 10), truth):.3f} |")
    started = time.perf_counter()
    hnsw = faiss.IndexHNSWFlat(dimension, 32, faiss.METRIC_INNER_PRODUCT)
    hnsw.hnsw.efConstruction = 40
    faiss.omp_set_num_threads(os.cpu_count() or 1)
    hnsw.add(vectors)
    faiss.omp_set_num_threads(1)
    build = time.perf_counter() - started
    size = len(faiss.serialize_index(hnsw)) / len(vectors)
    for ef in (16, 32, 64, 128):
        hnsw.hnsw.efSearch = ef
        ms, found = timed_search(hnsw, queries, 10)
        print(f"| HNSW (M 32) | efSearch {ef} | {build:.1f} | {size:.0f} | {ms:.2f} | {recall(found, truth):.3f} |")
    print("\nbuild: IVF trains on its sample and adds on 1 thread; HNSW adds on all cores. FAISS's HNSW cannot"
          " remove vectors (an index with deletions would be rebuilt).")


if __name__ == "__main__":
    main()
