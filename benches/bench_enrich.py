"""Index the demo corpus with and without enrichment (NER + sentiment), in the same run.

Reports seconds and passages/s, cold (models loaded inside the timed part, as a CLI run) and warm
(models already loaded), and the ratio enriched / plain.

    python benches/bench_enrich.py [--repeat 3] [--ner FOLDER] [--sentiment FOLDER]
"""

from __future__ import annotations

import argparse
import os
import statistics
import tempfile
import time
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

from search import Index  # noqa: E402

ROOT = Path(__file__).resolve().parent.parent


def run(folder: Path, enrich: str | None, warm_from: Index | None = None) -> tuple[float, int]:
    """Seconds to index the demo corpus into a new index, and passages indexed."""
    started = time.perf_counter()
    index = Index.create(folder)
    if warm_from is not None:  # reuse loaded models
        index._encoder = warm_from._encoder
        if enrich:
            index.set_enrichers(enrich)
            index.enrichers = warm_from.enrichers
    report = index.add_paths([ROOT / "index_data"], enrich=None if warm_from else enrich)
    seconds = time.perf_counter() - started
    index.close()
    return seconds, report.passages


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--ner", default="", help="NER model folder (default: shipped)")
    parser.add_argument("--sentiment", default="", help="Sentiment model folder (default: shipped)")
    args = parser.parse_args()
    enrich = f"ner{':' + args.ner if args.ner else ''},sentiment{':' + args.sentiment if args.sentiment else ''}"

    results: dict[str, list[float]] = {"plain, cold": [], "enriched, cold": [], "plain, warm": [], "enriched, warm": []}
    passages = 0
    with tempfile.TemporaryDirectory() as tmp:
        warm = Index.create(Path(tmp) / "warm")
        warm.set_enrichers(enrich)
        warm.add_paths([ROOT / "index_data"])  # loads every model once
        for r in range(args.repeat):
            for name, spec in (("plain", None), ("enriched", enrich)):
                seconds, passages = run(Path(tmp) / f"{name}-cold-{r}", spec)
                results[f"{name}, cold"].append(seconds)
                seconds, _ = run(Path(tmp) / f"{name}-warm-{r}", spec, warm_from=warm)
                results[f"{name}, warm"].append(seconds)
        warm.close()

    print(f"demo corpus: {passages} passages, median of {args.repeat} runs")
    print(f"{'':18}{'seconds':>9}{'passages/s':>12}{'ratio':>8}")
    for kind in ("cold", "warm"):
        plain = statistics.median(results[f"plain, {kind}"])
        for name in ("plain", "enriched"):
            s = statistics.median(results[f"{name}, {kind}"])
            print(f"{name + ', ' + kind:18}{s:>9.2f}{passages / s:>12.1f}{s / plain:>8.2f}")
    print("ratio: index time / plain index time (the target: at most 2.00)")


if __name__ == "__main__":
    main()
