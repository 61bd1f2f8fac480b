"""Cold start: whole CLI commands in fresh processes, as a person runs them from the shell, on the
ONNX Runtime path (the default once the models are exported) and on torch (`--backend torch`),
against `python -c "import torch"` (the floor of any command that imports torch), alternating, in
the same run. `search index` runs as its default chooses (torch where it runs bfloat16) and on ONNX
Runtime.

    python benches/bench_cold_start.py [--repeat 5] [--passages 10000]

The query and ask commands run on an index of about --passages passages (the demo corpus and
Python documentation pages from Debian's python3.11-doc when installed, else the demo corpus
repeated); `search index` adds 10 files to a copy of it each time.
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

from search import Index  # noqa: E402

ROOT = Path(__file__).resolve().parent.parent
PYTHON_DOCS = Path("/usr/share/doc/python3.11/html/_sources/library")
QUESTION = "When was BERT published?"


def seconds(command: list[str]) -> float:
    started = time.perf_counter()
    subprocess.run(command, check=True, capture_output=True)
    return time.perf_counter() - started


def build(folder: Path, passages: int) -> None:
    """An index of the demo corpus plus enough documentation pages (or copies of the demo) for ``passages``."""
    with Index.create(folder / "ix") as index:
        index.add_paths([ROOT / "index_data"])
        pages = sorted(PYTHON_DOCS.glob("*.rst.txt")) if PYTHON_DOCS.is_dir() else []
        copy = 0
        while index.stats()["passages"] < passages:
            if pages:
                index.add_paths([pages.pop(0)])
            else:
                texts = [p.read_text() for p in sorted((ROOT / "index_data").rglob("*.md"))]
                index.add_texts(texts, ids=[f"copy{copy}-{i}" for i in range(len(texts))])
                copy += 1


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--passages", type=int, default=10_000)
    args = parser.parse_args()
    search = str(Path(sys.executable).with_name("search"))
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        build(tmp, args.passages)
        index = ["--index", str(tmp / "ix")]
        subprocess.run([search, "ask", QUESTION, *index], check=True, capture_output=True)  # exports, once
        new_files = tmp / "new"
        new_files.mkdir()
        for i, path in enumerate(sorted((ROOT / "index_data").rglob("*.md"))[:10]):
            shutil.copy(path, new_files / f"{i}-{path.name}")
        commands = {
            "python -c 'import torch'": [sys.executable, "-c", "import torch"],
            "search query (onnx)": [search, "query", QUESTION, *index],
            "search query (torch)": [search, "query", QUESTION, *index, "--backend", "torch"],
            "search ask (onnx)": [search, "ask", QUESTION, *index],
            "search ask (torch)": [search, "ask", QUESTION, *index, "--backend", "torch"],
        }
        indexing = {"search index 10 files": [], "search index 10 files (onnx)": ["--backend", "onnx"]}
        times: dict[str, list[float]] = {name: [] for name in [*commands, *indexing]}
        for run in range(args.repeat):
            for name, command in commands.items():
                times[name].append(seconds(command))
            for n, (name, options) in enumerate(indexing.items()):
                shutil.copytree(tmp / "ix", tmp / f"ix{run}-{n}")
                times[name].append(seconds([search, "index", str(new_files), "--index", str(tmp / f"ix{run}-{n}"), *options]))
        passages = Index.open(tmp / "ix").stats()["passages"]
    base = statistics.median(times["python -c 'import torch'"])
    print(f"Cold start, {args.repeat} fresh processes each, index of {passages:,} passages, {os.cpu_count()} CPUs")
    print(f"{'command':28}{'median s':>10}{'vs import torch':>17}  runs")
    for name, values in times.items():
        median = statistics.median(values)
        print(f"{name:28}{median:>10.2f}{median / base:>17.2f}  {', '.join(f'{v:.2f}' for v in values)}")


if __name__ == "__main__":
    main()
