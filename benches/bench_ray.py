"""Indexing with encoding on Ray (``search index --ray``) against a local run, on the same files in
the same run: passages per second with 1 and 2 Ray workers, and Ray's overhead per passage (a
1-worker Ray run against a local run on 1 thread), from which the speed on N machines can be
estimated (about N times the 1-worker rate, while the writer keeps up).

    python benches/bench_ray.py [--files 600] [--precision auto|float32|bfloat16] [--enrich ner,sentiment]

The files are SQuAD v1.1 dev paragraphs (../shared/data/squad), one per file. Ray runs on this
machine (``ray.init(num_cpus=2)``), a cluster of one; worker start-up (Ray, then one encoder per
worker) is counted in each Ray run and also shown apart. With ``--enrich``, every run also runs
those enrichment tasks (on Ray: in the workers, beside the encoder).
"""

from __future__ import annotations

import argparse
import json
import os
import tempfile
import time
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

import ray  # noqa: E402

from search import Index  # noqa: E402
from search.exported import set_threads  # noqa: E402

ROOT = Path(__file__).resolve().parent.parent
SQUAD_DEV = ROOT.parent / "shared" / "data" / "squad" / "dev-v1.1.json"


def write_files(folder: Path, count: int) -> Path:
    paragraphs = [p["context"] for a in json.loads(SQUAD_DEV.read_text())["data"] for p in a["paragraphs"]]
    folder.mkdir(parents=True)
    for i, text in enumerate(paragraphs[:count]):
        (folder / f"p{i:05d}.txt").write_text(text)
    return folder


def run(folder: Path, files: Path, precision: str, enrich: str | None = None, **options) -> tuple[float, int]:
    with Index.create(folder, precision=precision) as index:
        started = time.perf_counter()
        report = index.add_paths([files], enrich=enrich, **options)
        return time.perf_counter() - started, report.passages


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--files", type=int, default=600)
    parser.add_argument("--precision", default="auto")
    parser.add_argument("--enrich", default=None, help="enrichment tasks for every run (ner,sentiment...)")
    args = parser.parse_args()
    tmp = Path(tempfile.mkdtemp(prefix="bench-ray-"))
    files = write_files(tmp / "files", args.files)
    one = write_files(tmp / "one", 1)
    rows = []
    seconds, passages = run(tmp / "local2", files, args.precision, args.enrich)
    rows.append(("local, 2 threads", seconds, passages))
    set_threads(1)
    seconds, passages = run(tmp / "local1", files, args.precision, args.enrich)
    rows.append(("local, 1 thread", seconds, passages))
    ray.init(num_cpus=2, logging_level="ERROR", log_to_driver=False)
    startup, _ = run(tmp / "startup", one, args.precision, args.enrich, ray="auto", ray_workers=1)
    for workers in (1, 2):
        seconds, passages = run(tmp / f"ray{workers}", files, args.precision, args.enrich, ray="auto", ray_workers=workers)
        rows.append((f"Ray, {workers} worker{'s' * (workers > 1)} (1 thread each)", seconds, passages))
    ray.shutdown()
    print(f"# {args.files} files, precision {args.precision}, enrichment {args.enrich or 'none'}; Ray start-up with 1 worker and 1 file: {startup:.1f} s\n")
    print("| run | passages | seconds | passages/s |\n|---|---:|---:|---:|")
    for name, seconds, passages in rows:
        print(f"| {name} | {passages} | {seconds:.1f} | {passages / seconds:.1f} |")
    local1, ray1 = rows[1], rows[2]
    print(f"\nRay's overhead per passage (1 worker vs local on 1 thread, start-up included):"
          f" {1000 * (ray1[1] - local1[1]) / ray1[2]:.2f} ms;"
          f" without start-up: {1000 * (ray1[1] - startup - local1[1]) / ray1[2]:.2f} ms")


if __name__ == "__main__":
    main()
