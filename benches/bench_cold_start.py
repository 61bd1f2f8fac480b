"""Cold start: a fresh process that loads the default encoder and encodes one query, as every
`search query` does, against the same through sentence-transformers (what the encoder used before
it ran mean-pooling folders on transformers alone), both in float32, alternating, in the same run.
Also times the whole cold `search query` on the demo corpus.

    python benches/bench_cold_start.py [--repeat 5]
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

ROOT = Path(__file__).resolve().parent.parent
QUERY = "When was BERT published?"
THROUGH_SENTENCE_TRANSFORMERS = (
    "from sentence_transformers import SentenceTransformer; from search.models import resolve_model; "
    f"SentenceTransformer(resolve_model('all-MiniLM-L6-v2'), device='cpu').encode([{QUERY!r}])"
)
THROUGH_SEARCH = f"from search.encoders import load_encoder; load_encoder(precision='float32').encode([{QUERY!r}])"


def seconds(command: list[str]) -> float:
    started = time.perf_counter()
    subprocess.run(command, check=True, capture_output=True)
    return time.perf_counter() - started


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=5)
    args = parser.parse_args()
    search = str(Path(sys.executable).with_name("search"))
    times: dict[str, list[float]] = {"sentence-transformers": [], "search encoder": [], "search query (CLI)": []}
    with tempfile.TemporaryDirectory() as tmp:
        subprocess.run([search, "index", str(ROOT / "index_data"), "--index", f"{tmp}/ix"], check=True, capture_output=True)
        for _ in range(args.repeat):
            times["sentence-transformers"].append(seconds([sys.executable, "-c", THROUGH_SENTENCE_TRANSFORMERS]))
            times["search encoder"].append(seconds([sys.executable, "-c", THROUGH_SEARCH]))
            times["search query (CLI)"].append(seconds([search, "query", QUERY, "--index", f"{tmp}/ix"]))
    median = {name: statistics.median(values) for name, values in times.items()}
    for name, value in median.items():
        print(f"{name:24s} median {value:.2f} s  (runs: {', '.join(f'{v:.2f}' for v in times[name])})")
    print(f"ratio sentence-transformers / search encoder: {median['sentence-transformers'] / median['search encoder']:.2f}")


if __name__ == "__main__":
    main()
