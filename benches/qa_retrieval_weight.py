"""Choose how `ask` weighs retrieval against the reader: open-mode EM/F1 for several weights.

`ask` adds ``weight * retrieval score / best retrieval score`` of a passage to the logits of its spans
(``search.reader.RETRIEVAL_WEIGHT``). This indexes every paragraph of a SQuAD-format file (kept in
``--cache`` for the next run), retrieves ``-k`` passages per question and scores the answers for each
weight. The reader reads each question's passages once; only the combination differs per weight.

    python benches/qa_retrieval_weight.py --data ../shared/data/squad/dev-v1.1.json --limit 1000 \
        --cache runs/dev-paragraphs --weights 0,4,8,12,16,24,32
"""

from __future__ import annotations

import argparse
import os
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

from tqdm import tqdm  # noqa: E402

from search.evaluation import paragraph_index  # noqa: E402
from search.reader import Reader, answers_from_hits  # noqa: E402
from search.metrics import score_predictions  # noqa: E402
from search.squad import load_squad  # noqa: E402


class CachedReader(Reader):
    """A reader that computes the logits of the same windows once."""

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self._cache: dict = {}

    def _logits(self, encoded):
        key = tuple(map(tuple, encoded["input_ids"]))
        if key not in self._cache:
            self._cache = {key: super()._logits(encoded)}  # one question at a time: keep only the last
        return self._cache[key]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", required=True)
    parser.add_argument("--limit", type=int, default=1000)
    parser.add_argument("--cache", type=Path, required=True, help="Folder for the paragraph index.")
    parser.add_argument("--reader", default=None)
    parser.add_argument("-k", type=int, default=5)
    parser.add_argument("--weights", default="0,0.5,1,2,4,8")
    args = parser.parse_args()

    weights = [float(w) for w in args.weights.split(",")]
    examples = load_squad(args.data)
    index = paragraph_index(examples, args.cache, progress=True)
    reader = CachedReader(args.reader)
    predictions: dict[float, dict[str, str]] = {w: {} for w in weights}
    for ex in tqdm(examples[: args.limit], desc="Answering"):
        hits = index.search(ex.question, k=args.k)
        for w in weights:
            found = answers_from_hits(reader, ex.question, hits, answers=1, retrieval_weight=w)
            predictions[w][ex.id] = found[0].text if found else ""
    print(f"{'weight':>7}{'EM':>7}{'F1':>7}   ({min(args.limit, len(examples))} questions, k={args.k})")
    for w in weights:
        scores = score_predictions(examples[: args.limit], predictions[w])
        print(f"{w:>7g}{scores['exact_match']:>7.1f}{scores['f1']:>7.1f}")


if __name__ == "__main__":
    main()
