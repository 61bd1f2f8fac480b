"""An index of N passages: add rate and commit time as it grows, open time, memory, disk, query
latency (dense, lexical, hybrid) and the recall of approximate search against exact search.

    python benches/bench_scale.py --passages 100000 [--ann auto] [--nprobe N] [--index DIR] [--keep]

Encoding a million passages takes hours on 2 cores, so the passages come with **precomputed
vectors** (``Index.add_texts(..., vectors=...)``): each passage is 3-8 sentences of one SQuAD v1.1
train article (../shared/data/squad), and its vector is the normalized mean of those sentences'
vectors (the bundled all-MiniLM-L6-v2, encoded once and cached under
``~/.cache/search/bench-scale``). Texts have real words and lengths; vectors have the topical
structure of real ones, which is what approximate search depends on. The queries are 200 SQuAD
questions about the same articles, encoded by the index's query encoder. Exact search over the
same vectors (FAISS flat) is the reference for recall@10.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

import faiss  # noqa: E402
import numpy as np  # noqa: E402

from search import Index  # noqa: E402
from search.vectors import default_probes  # noqa: E402

ROOT = Path(__file__).resolve().parent.parent
SQUAD = ROOT.parent / "shared" / "data" / "squad" / "train-v1.1.json"
CACHE = Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "search" / "bench-scale"
SENTENCE = re.compile(r"(?<=[.!?])\s+(?=[A-Z0-9\"'(])")


def articles() -> tuple[list[list[str]], list[str]]:
    """The sentences of each SQuAD train article, and questions about them."""
    data = json.loads(SQUAD.read_text())["data"]
    sentences = [[s for p in a["paragraphs"] for s in SENTENCE.split(p["context"]) if len(s) > 20] for a in data]
    questions = [qa["question"] for a in data for p in a["paragraphs"] for qa in p["qas"]]
    return sentences, questions


def sentence_vectors(index: Index, sentences: list[str]) -> np.ndarray:
    path = CACHE / f"sentences-{len(sentences)}.npy"
    if path.exists():
        return np.load(path)
    print(f"encoding {len(sentences):,} sentences once (cached in {CACHE})", file=sys.stderr)
    vectors = index.encoder.encode(sentences)
    CACHE.mkdir(parents=True, exist_ok=True)
    np.save(path, vectors.astype(np.float32))
    return vectors


class Corpus:
    """Passages of 3-8 random sentences of one article, with the mean of their vectors."""

    def __init__(self, index: Index, seed: int = 0):
        by_article, self.questions = articles()
        flat = [s for a in by_article for s in a]
        self.sentences = np.array(flat, dtype=object)
        self.vectors = sentence_vectors(index, flat)
        bounds = np.cumsum([0] + [len(a) for a in by_article])
        self.ranges = list(zip(bounds[:-1], bounds[1:]))
        self.rng = np.random.default_rng(seed)
        self.taken = 0

    def ids(self, n: int) -> list[str]:
        """Names for the next ``n`` passages (their texts may repeat: a name keeps each its own)."""
        self.taken += n
        run = uuid.uuid4().hex[:8]  # a new name in every run, also when --reuse adds to an index
        return [f"p{run}-{i}" for i in range(self.taken - n, self.taken)]

    def take(self, n: int) -> tuple[list[str], np.ndarray]:
        texts, vectors = [], np.empty((n, self.vectors.shape[1]), np.float32)
        for i in range(n):
            lo, hi = self.ranges[self.rng.integers(len(self.ranges))]
            pick = lo + self.rng.choice(hi - lo, size=min(hi - lo, int(self.rng.integers(3, 9))), replace=False)
            texts.append(" ".join(self.sentences[pick]))
            mean = self.vectors[pick].mean(axis=0)
            vectors[i] = mean / np.linalg.norm(mean)
        return texts, vectors


def ms(seconds: list[float]) -> tuple[float, float]:
    values = sorted(1000 * s for s in seconds)
    return statistics.median(values), values[min(len(values) - 1, int(round(0.99 * (len(values) - 1))))]


def open_in_fresh_process(path: Path) -> dict:
    """Open the index in a new process (imports excluded): seconds and resident memory after."""
    code = (
        "import time, resource, json, sys; from search import Index; t = time.perf_counter();"
        f" index = Index.open({str(path)!r}); s = time.perf_counter() - t;"
        " rss = int(open('/proc/self/status').read().split('VmRSS:')[1].split()[0]) * 1024;"
        " print(json.dumps({'seconds': s, 'rss': rss, 'vectors': len(index.vectors)}))"
    )
    baseline = subprocess.run([sys.executable, "-c", "import json; from search import Index;"
                               " print(int(open('/proc/self/status').read().split('VmRSS:')[1].split()[0]) * 1024)"],
                              capture_output=True, text=True, check=True)
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    result = json.loads(out.stdout)
    result["rss_before"] = int(baseline.stdout)
    return result


def disk(path: Path, texts_bytes: int, passages: int) -> dict:
    files = {p.name: p.stat().st_size if p.is_file() else sum(f.stat().st_size for f in p.rglob("*") if f.is_file())
             for p in path.iterdir()}
    total = sum(files.values())
    return {"files": files, "per_passage": total / passages, "text_per_passage": texts_bytes / passages,
            "beyond_text_per_passage": (total - texts_bytes) / passages}


def rebuilding(index: Index) -> bool:
    """Whether the writer rebuilds something in the background (search/background.py)."""
    return index.writer.rebuild is not None and not index.writer.rebuild.done


def build(index: Index, corpus: Corpus, passages: int, chunk: int, rows: int) -> tuple[list[float], list[bool]]:
    """Add ``passages`` in ``add_texts`` calls of ``chunk``, each timed: a table row every
    ``rows`` passages with the add rate, the median and the slowest call of that stretch. Returns
    the seconds of every call, and whether a rebuild ran beside it."""
    print(f"\n| passages in index | add rate (passages/s) | call of {chunk:,}: p50 (s) | slowest (s) | vector index | lexical |"
          "\n|---:|---:|---:|---:|---|---|")
    added, times, stretch, beside = 0, [], [], []
    while added < passages:
        n = min(chunk, passages - added)
        texts, vectors = corpus.take(n)
        before = rebuilding(index)
        started = time.perf_counter()
        index.add_texts(texts, vectors=vectors, ids=corpus.ids(n))
        stretch.append(time.perf_counter() - started)
        beside.append(before or rebuilding(index))
        added += n
        if added % rows < chunk or added >= passages:
            lexical = "tantivy" if index.lexical is not None else "FTS5"
            print(f"| {added:,} | {n * len(stretch) / sum(stretch):,.0f} | {statistics.median(stretch):.3f}"
                  f" | {max(stretch):.3f} | {index.vectors.describe()} | {lexical} |", flush=True)
            times += stretch
            stretch = []
    return times, beside


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--passages", type=int, default=100_000)
    parser.add_argument("--chunk", type=int, default=1000, help="passages per add_texts call while building")
    parser.add_argument("--rows", type=int, default=None, help="a table row every ROWS passages (default: a tenth)")
    parser.add_argument("--ann", default="auto")
    parser.add_argument("--nprobe", type=int, default=None)
    parser.add_argument("--queries", type=int, default=200)
    parser.add_argument("--index", type=Path, default=None, help="where to build (default: a temporary folder)")
    parser.add_argument("--keep", action="store_true", help="keep the index folder")
    parser.add_argument("--reuse", action="store_true", help="measure the index at --index as it is (no build)")
    parser.add_argument("--commits", type=int, default=5, help="add_texts calls of 1,000 timed at full size")
    parser.add_argument("--modes", default="dense,lexical,hybrid,fts5",
                        help="search modes to time, comma-separated; fts5: lexical and hybrid with FTS5 too")
    args = parser.parse_args()

    folder = args.index or Path(tempfile.mkdtemp(prefix="bench-scale-")) / "index"
    if folder.exists() and not args.reuse:
        shutil.rmtree(folder)
    print(f"# {args.passages:,} passages with precomputed vectors (see the docstring), index at {folder}")
    index = Index.open(folder) if args.reuse else Index.create(folder, ann=args.ann)
    corpus = Corpus(index)
    if not args.reuse:
        times, beside = build(index, corpus, args.passages, args.chunk, args.rows or max(args.chunk, args.passages // 10))
        slowest = sorted(times)[-3:]
        print(f"\nall {len(times):,} calls: p50 {statistics.median(times):.3f} s, p99 {ms(times)[1] / 1000:.3f} s,"
              f" slowest {', '.join(f'{t:.3f}' for t in reversed(slowest))} s")
        for label, wanted in (("beside a rebuild", True), ("alone", False)):
            some = [t for t, b in zip(times, beside) if b == wanted]
            if some:
                print(f"{len(some):,} calls {label}: p50 {statistics.median(some):.3f} s, slowest {max(some):.3f} s")
        index.wait_for_rebuilds()
    commits = []
    for _ in range(args.commits):
        texts, vectors = corpus.take(1000)
        started = time.perf_counter()
        index.add_texts(texts, vectors=vectors, ids=corpus.ids(1000))
        commits.append(time.perf_counter() - started)
    count = index.stats()["passages"]
    if commits:
        print(f"\n{args.commits} more add_texts calls of 1,000 passages at {count:,}: p50 {ms(commits)[0] / 1000:.3f} s,"
              f" slowest {max(commits):.3f} s")
    texts_bytes = index.store.conn.execute(
        "SELECT (SELECT sum(length(CAST(text AS BLOB))) FROM documents) + sum(length(CAST(text AS BLOB))) FROM passages"
    ).fetchone()[0]
    matrix, ids = index.store.vectors()
    index.close()

    opened = open_in_fresh_process(folder)
    size = disk(folder, texts_bytes, count)
    print(f"\nopen: {opened['seconds']:.2f} s; resident memory {opened['rss'] / 2**20:,.0f} MiB"
          f" ({(opened['rss'] - opened['rss_before']) / 2**20:,.0f} MiB more than after the imports)")
    print(f"disk: {size['per_passage']:,.0f} bytes per passage, of which text {size['text_per_passage']:,.0f}"
          f" (stored twice: document and passage); beyond the text {size['beyond_text_per_passage']:,.0f}."
          f" Files: {', '.join(f'{k} {v / 2**20:,.1f} MiB' for k, v in size['files'].items())}")

    exact = faiss.IndexIDMap(faiss.IndexFlatIP(matrix.shape[1]))  # exact search over the stored vectors
    exact.add_with_ids(matrix, np.asarray(ids, np.int64))
    del matrix
    index = Index.open(folder)
    questions = list(corpus.rng.choice(corpus.questions, size=args.queries, replace=False))
    query_vectors = np.vstack([index.embed(q) for q in questions]).astype(np.float32)
    _, truth = exact.search(query_vectors, 10)
    options = {"nprobe": args.nprobe} if args.nprobe else {}
    print(f"\nvector index: {index.vectors.describe()}, nprobe {args.nprobe or default_probes(index.vectors.lists)};"
          f" lexical: {'tantivy' if index.lexical is not None else 'FTS5'}")
    print("\n| mode | p50 ms | p99 ms | recall@10 vs exact |\n|---|---:|---:|---:|")
    asked = args.modes.split(",")
    modes = [m for m in ("dense", "lexical", "hybrid") if m in asked]
    if index.lexical is not None and "fts5" in asked:  # what tantivy replaced, on the same index
        modes += [f"{m} (FTS5)" for m in ("lexical", "hybrid") if m in asked]
    lexical_index = index.lexical
    for mode in modes:
        index.lexical = None if "FTS5" in mode else lexical_index
        times, recalls = [], []
        index.embed = lambda text: query_vectors[0]
        index.search(questions[0], k=10, mode=mode.split()[0], **options)  # untimed: files into the page cache
        for q, truth_ids, qv in zip(questions, truth, query_vectors):
            index.embed = lambda text, qv=qv: qv  # the encoder's time is measured apart, below
            started = time.perf_counter()
            hits = index.search(q, k=10, mode=mode.split()[0], **options)
            times.append(time.perf_counter() - started)
            if mode == "dense":
                recalls.append(len({h.passage_id for h in hits} & set(truth_ids.tolist())) / 10)
        p50, p99 = ms(times)
        recall = f"{statistics.mean(recalls):.3f}" if recalls else ""
        print(f"| {mode} | {p50:.1f} | {p99:.1f} | {recall} |", flush=True)
    del index.embed
    index.lexical = lexical_index
    times = []
    for q in questions[:50]:
        started = time.perf_counter()
        index.embed(q)
        times.append(time.perf_counter() - started)
    print(f"\nencoding a query (add to dense and hybrid): p50 {ms(times)[0]:.1f} ms")
    index.close()
    if not args.keep and args.index is None:
        shutil.rmtree(folder.parent)


if __name__ == "__main__":
    main()
