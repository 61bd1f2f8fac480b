"""R@1 and nDCG@10 on mixed XQuAD (build.py) split by the languages of question and paragraph, for
dense and hybrid search with multilingual-e5-small; the index is kept in INDEX for the next run.

    python evals/mixed-xquad/by_language.py ../shared/data/xquad /tmp/xquad.mixed.json /tmp/mixed-index
"""

import sys
from pathlib import Path

from search import Index
from search.evaluation import index_collection, run_queries, squad_collection
from search.metrics import score_run


def main(xquad: Path, mixed: Path, folder: Path) -> None:
    print("questions paragraphs  mode     queries    R@1  nDCG@10")
    with Index.open_or_create(folder, model="multilingual") as index:
        for asked in ("en", "ru"):
            collection = squad_collection(xquad / f"xquad.{asked}.json", mixed)
            if index.stats()["documents"] != len(collection.documents):
                index_collection(index, collection, progress=True)
            for mode in ("dense", "hybrid"):
                run, _ = run_queries(index, collection, mode)
                for written in ("en", "ru", "all"):
                    # build.py puts the odd articles (document ids "article-paragraph") in Russian
                    qrels = {q: rel for q, rel in collection.qrels.items()
                             if written in ("all", "ru" if int(next(iter(rel)).split("-")[0]) % 2 else "en")}
                    s = score_run({q: run[q] for q in qrels}, qrels)
                    print(f"{asked:<9} {written:<11} {mode:<8} {s['queries']:>7} {s['recall@1']:6.3f} {s['ndcg@10']:8.3f}")


if __name__ == "__main__":
    main(*map(Path, sys.argv[1:4]))
