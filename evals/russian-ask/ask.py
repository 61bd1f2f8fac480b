"""`ask` as a user runs it on Russian documents: the first 12 XQuAD-ru articles written as 12 text
files, indexed with the multilingual encoder, and 60 of their questions (drawn with seed 0) asked in
Russian and, with the same ids, in English. F1 is taken on the best answer whether or not it passes
the reader's calibrated threshold; the count of answers above it and the median `ask` time follow.

    python evals/russian-ask/ask.py ../shared/data/xquad /tmp/russian-ask
"""

import json
import random
import statistics
import sys
import time
from pathlib import Path

from search import Index
from search.metrics import answer_f1


def questions(path: Path, articles: list) -> dict:
    data = json.loads(path.read_text(encoding="utf-8"))["data"][: len(articles)]
    return {q["id"]: (q["question"], [a["text"] for a in q["answers"]])
            for article in data for p in article["paragraphs"] for q in p["qas"]}


def main(xquad: Path, work: Path) -> None:
    articles = json.loads((xquad / "xquad.ru.json").read_text(encoding="utf-8"))["data"][:12]
    (work / "docs").mkdir(parents=True, exist_ok=True)
    for i, article in enumerate(articles):
        text = "\n\n".join(p["context"] for p in article["paragraphs"])
        (work / "docs" / f"{i:02d}.txt").write_text(text, encoding="utf-8")
    russian = questions(xquad / "xquad.ru.json", articles)
    english = questions(xquad / "xquad.en.json", articles)
    sample = random.Random(0).sample(sorted(russian), 60)
    with Index.open_or_create(work / "index", model="multilingual") as index:
        index.add_paths([work / "docs"])
        print("questions  F1 (always answering)  answered  ask p50 ms")
        for name, asked in (("Russian", russian), ("English", english)):
            f1, answered, seconds = [], 0, []
            for qid in sample:
                start = time.perf_counter()
                found = index.ask(asked[qid][0])
                seconds.append(time.perf_counter() - start)
                best = found or index.ask(asked[qid][0], threshold=None)
                f1.append(answer_f1(best[0].text, russian[qid][1]))
                answered += bool(found)
            print(f"{name:9} {100 * statistics.mean(f1):22.1f} {answered:6}/{len(sample)} "
                  f"{1000 * statistics.median(seconds):11.0f}")


if __name__ == "__main__":
    main(Path(sys.argv[1]), Path(sys.argv[2]))
