"""Time `ask` (retrieve 5 passages, read them) on the demo corpus, against a bare forward pass of
the same model over the same 5 (question, passage) pairs with two argmaxes (the seed notebook's
decoding: no windows, no span rules), in the same run.

    python benches/bench_ask.py [--reader FOLDER] [--repeat 3] [--precision auto|float32|bfloat16|int8] [--backend auto|onnx|torch]
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

from search import Index  # noqa: E402
from search.reader import Reader, answers_from_hits  # noqa: E402

ROOT = Path(__file__).resolve().parent.parent
QUESTIONS = [
    "When was BERT published?", "Who invented the World Wide Web?", "When did Apollo 11 land on the Moon?",
    "Who first climbed Mount Everest?", "What does BM25 stand for?", "Who created Linux?",
    "When was the first image of a black hole released?", "Who discovered penicillin?",
    "How many parameters does GPT-3 have?", "Where was the transistor invented?",
    "Who described the structure of DNA?", "When was Python 3.0 released?",
]


def ms(seconds: list[float]) -> tuple[float, float]:
    values = sorted(1000 * s for s in seconds)
    return statistics.median(values), values[int(round(0.95 * (len(values) - 1)))]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--reader", default=None, help="Reader folder (default: the shipped reader).")
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--precision", default="auto", help="How the reader's weights run (default: auto).")
    parser.add_argument("--backend", default="auto", help="What runs the reader and the query encoder: auto, onnx, torch.")
    args = parser.parse_args()

    import torch

    reader = Reader(args.reader, precision=args.precision, backend=args.backend)
    with tempfile.TemporaryDirectory() as tmp:
        index = Index.create(Path(tmp) / "ix", backend=args.backend)
        index.add_paths([ROOT / "index_data"])
        hits = {q: index.search(q, k=5) for q in QUESTIONS}
        answers_from_hits(reader, QUESTIONS[0], hits[QUESTIONS[0]])  # warm up

        def bare(question, passages):
            batch = reader.tokenizer([question] * len(passages), passages, truncation="only_second",
                                     max_length=256, padding=True, return_tensors="pt")
            with torch.inference_mode():
                out = reader.model(**batch)
            return out.start_logits.argmax(-1), out.end_logits.argmax(-1)

        bare(QUESTIONS[0], [h.text for h in hits[QUESTIONS[0]]])

        timings = {"retrieve": [], "read 5 (search)": [], "ask (search)": [], "read 5 (bare)": []}
        for _ in range(args.repeat):
            for q in QUESTIONS:
                t = time.perf_counter()
                found = index.search(q, k=5)
                timings["retrieve"].append(time.perf_counter() - t)
                t = time.perf_counter()
                answers_from_hits(reader, q, found)
                timings["read 5 (search)"].append(time.perf_counter() - t)
                t = time.perf_counter()
                index.ask(q, k=5, reader=reader)
                timings["ask (search)"].append(time.perf_counter() - t)
                t = time.perf_counter()
                bare(q, [h.text for h in found])
                timings["read 5 (bare)"].append(time.perf_counter() - t)
        index.close()

    examples = 5 * len(timings["read 5 (search)"])
    base50, _ = ms(timings["read 5 (bare)"])
    print(f"{len(QUESTIONS)} questions x {args.repeat}, 5 passages each, 2 cores", file=sys.stderr)
    print(f"{'':24}{'p50 ms':>9}{'p95 ms':>9}{'p50 vs bare':>13}")
    for name, values in timings.items():
        p50, p95 = ms(values)
        print(f"{name:24}{p50:>9.1f}{p95:>9.1f}{p50 / base50:>13.2f}")
    print(f"reader examples/s (search): {examples / sum(timings['read 5 (search)']):.1f};"
          f" bare forward pass: {examples / sum(timings['read 5 (bare)']):.1f}")


if __name__ == "__main__":
    main()
