"""Write XQuAD in two languages at once: the English file with the paragraphs of every second
article (1, 3, ... 47) taken from the Russian one, a SQuAD-format file parallel to both, so that
`search eval retrieval` can ask either language's questions of an index holding both languages.

    python evals/mixed-xquad/build.py ../shared/data/xquad /tmp/xquad.mixed.json
"""

import json
import sys
from pathlib import Path


def mixed(english: dict, russian: dict) -> dict:
    out = json.loads(json.dumps(english))
    for a, (article, translated) in enumerate(zip(out["data"], russian["data"])):
        if a % 2:
            for paragraph, other in zip(article["paragraphs"], translated["paragraphs"], strict=True):
                paragraph["context"] = other["context"]
    return out


if __name__ == "__main__":
    folder, target = Path(sys.argv[1]), Path(sys.argv[2])
    english, russian = (json.loads((folder / f"xquad.{code}.json").read_text()) for code in ("en", "ru"))
    target.write_text(json.dumps(mixed(english, russian), ensure_ascii=False))
    print(f"{target}: {sum(len(a['paragraphs']) for a in english['data'])} paragraphs, every second article in Russian")
