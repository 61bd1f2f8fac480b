"""How well entity keys (search.entity_keys) join the forms of a Russian name: for every entity
natasha finds in the XQuAD-ru paragraphs, whether its key equals the key of the nominative natasha
makes of it in context (its morphology and syntax taggers and pymorphy3).

    python evals/russian-ner/keys.py ../shared/data/xquad/xquad.ru.json
"""

import json
import sys

from search.entity_keys import entity_key


def natasha_with_pymorphy3():
    """natasha, its MorphVocab on pymorphy3: natasha imports pymorphy2, which no longer imports on
    Python 3.11; pymorphy3 is its maintained fork, with the same API."""
    import pymorphy3
    import pymorphy3.analyzer

    sys.modules.setdefault("pymorphy2", pymorphy3)
    sys.modules.setdefault("pymorphy2.analyzer", pymorphy3.analyzer)
    import natasha

    return natasha


def natasha_normal_forms(paragraphs: list[str]) -> list[tuple[str, str]]:
    natasha = natasha_with_pymorphy3()
    embedding = natasha.NewsEmbedding()
    segmenter, vocab = natasha.Segmenter(), natasha.MorphVocab()
    morph, syntax, ner = (natasha.NewsMorphTagger(embedding), natasha.NewsSyntaxParser(embedding),
                          natasha.NewsNERTagger(embedding))
    pairs = []
    for text in paragraphs:
        doc = natasha.Doc(text)
        doc.segment(segmenter)
        doc.tag_morph(morph)
        doc.parse_syntax(syntax)
        doc.tag_ner(ner)
        for span in doc.spans:
            span.normalize(vocab)
            pairs.append((span.text, span.normal))
    return pairs


def main(path: str) -> None:
    data = json.loads(open(path, encoding="utf-8").read())
    pairs = natasha_normal_forms([p["context"] for a in data["data"] for p in a["paragraphs"]])
    joined = [entity_key(text) == entity_key(normal) for text, normal in pairs]
    inflected = [j for j, (text, normal) in zip(joined, pairs) if text != normal]
    print(f"{len(pairs)} entities: the key of the nominative for {sum(joined)} ({100 * sum(joined) / len(pairs):.1f}%);"
          f" of the {len(inflected)} not written in the nominative, {sum(inflected)}"
          f" ({100 * sum(inflected) / len(inflected):.1f}%)")
    for ok, (text, normal) in zip(joined, pairs):
        if not ok:
            print(f"  {text} -> {entity_key(text)!r}, nominative {normal} -> {entity_key(normal)!r}")


if __name__ == "__main__":
    main(sys.argv[1])
