"""Index Cranfield and run its 225 queries; compare with plain sentence-transformers + FAISS-flat.

Both sides use the same bundled all-MiniLM-L6-v2 on the same machine in the same run, so the
ratios are what to read (absolute numbers move with the machine's load).

    python benches/bench_index_query.py [--collection ../shared/data/ir/cranfield] [--queries 225] [--precision P]
        [--backend auto|onnx|torch]

The baseline runs in float32; ``search`` in ``--precision`` (default auto: bfloat16 on CPUs with
bfloat16 instructions) on ``--backend`` (auto: queries on ONNX Runtime, indexing on torch where it
runs bfloat16, else on ONNX Runtime).
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
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

import faiss  # noqa: E402
import numpy as np  # noqa: E402

from search import Index  # noqa: E402
from search.evaluation import load_collection  # noqa: E402
from search.models import resolve_model  # noqa: E402
from search.precision import resolve_precision  # noqa: E402

ROOT = Path(__file__).resolve().parent.parent


def percentiles(seconds: list[float]) -> tuple[float, float]:
    ms = sorted(1000 * s for s in seconds)
    return statistics.median(ms), ms[min(len(ms) - 1, int(round(0.95 * (len(ms) - 1))))]


def baseline(docs: list[str], queries: list[str]) -> dict:
    """Plain sentence-transformers + FAISS IndexFlatIP, one vector per document."""
    from sentence_transformers import SentenceTransformer

    model = SentenceTransformer(resolve_model("all-MiniLM-L6-v2"), device="cpu")
    started = time.perf_counter()
    vectors = model.encode(docs, batch_size=32, normalize_embeddings=True, convert_to_numpy=True)
    index = faiss.IndexFlatIP(vectors.shape[1])
    index.add(np.ascontiguousarray(vectors, dtype=np.float32))
    index_seconds = time.perf_counter() - started
    latencies = []
    for q in queries:
        t = time.perf_counter()
        qv = model.encode([q], normalize_embeddings=True, convert_to_numpy=True)
        index.search(qv, 10)
        latencies.append(time.perf_counter() - t)
    return {"index_seconds": index_seconds, "units": len(docs), "latencies": latencies}


def ours(docs: list[str], ids: list[str], queries: list[str], mode: str, folder: Path, precision: str,
         backend: str) -> dict:
    index = Index.create(folder, model="all-MiniLM-L6-v2", precision=precision, backend=backend)
    index.encoder.encode(["load the model outside the timed part, as the baseline does"])
    index.embed("and the query encoder")
    started = time.perf_counter()
    report = index.add_texts(docs, ids=ids)
    index_seconds = time.perf_counter() - started
    results = {}
    for m in ("dense", mode):
        latencies = []
        for q in queries:
            t = time.perf_counter()
            index.search(q, k=10, mode=m)
            latencies.append(time.perf_counter() - t)
        results[m] = latencies
    index.close()
    return {"index_seconds": index_seconds, "units": report.passages, "latencies": results}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--collection", default=str(ROOT.parent / "shared" / "data" / "ir" / "cranfield"))
    parser.add_argument("--queries", type=int, default=225)
    parser.add_argument("--mode", default="hybrid")
    parser.add_argument("--precision", default="auto", help="Of our encoder's weights (the baseline: float32).")
    parser.add_argument("--backend", default="auto", help="What runs our encoder: auto, onnx or torch.")
    args = parser.parse_args()

    collection = load_collection(args.collection)
    ids = list(collection.documents)
    docs = [collection.documents[i] for i in ids]
    queries = list(collection.queries.values())[: args.queries]
    print(f"{collection.name}: {len(docs)} documents, {len(queries)} queries, {faiss.omp_get_max_threads()} threads,"
          f" search in {resolve_precision(args.precision)} on {args.backend}", file=sys.stderr)

    base = baseline(docs, queries)
    with tempfile.TemporaryDirectory() as tmp:
        mine = ours(docs, ids, queries, args.mode, Path(tmp) / "ix", args.precision, args.backend)

    base_docs_s = len(docs) / base["index_seconds"]
    mine_docs_s = len(docs) / mine["index_seconds"]
    b50, b95 = percentiles(base["latencies"])
    print(f"{'':34}{'baseline':>12}{'search':>12}{'ratio':>8}")
    print(f"{'indexing, documents/s':34}{base_docs_s:>12.1f}{mine_docs_s:>12.1f}{mine_docs_s / base_docs_s:>8.2f}")
    print(f"{'indexing, passages/s':34}{base['units'] / base['index_seconds']:>12.1f}"
          f"{mine['units'] / mine['index_seconds']:>12.1f}{'':>8}")
    for mode, latencies in mine["latencies"].items():
        p50, p95 = percentiles(latencies)
        print(f"{f'query p50 ms ({mode})':34}{b50:>12.2f}{p50:>12.2f}{p50 / b50:>8.2f}")
        print(f"{f'query p95 ms ({mode})':34}{b95:>12.2f}{p95:>12.2f}{p95 / b95:>8.2f}")
    print("ratio: search / baseline (indexing: higher is faster; latency: lower is faster)")


if __name__ == "__main__":
    main()
