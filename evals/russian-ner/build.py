"""Build entities.json: Russian named entities labelled by hand in the first sentences of XQuAD-ru
paragraphs (../shared/data/xquad/xquad.ru.json; the text itself stays there, the file holds offsets).

    python evals/russian-ner/build.py ../shared/data/xquad/xquad.ru.json
"""

import json
import re
import sys
from pathlib import Path

# (article, number of sentences, [(entity as written, PER|LOC|ORG), ...] in the order of the text) for paragraph 0
# of the article.
# Conventions: names of people, places and organisations as they stand in the text (inflected);
# events, works, laws, products and standards are not entities here; a place inside a name counts.
LABELLED = [
    (0, 2, [("Пэнтерс", "ORG"), ("НФЛ", "ORG"), ("Кейван Шорт", "PER")]),
    (2, 2, [("Роллона", "PER"), ("Пикардии", "LOC"), ("Иль-де-Франса", "LOC"), ("Румуа", "LOC"), ("Пеи-де-Ко", "LOC"),
            ("Сены", "LOC"), ("Котантен", "LOC")]),
    (4, 2, []),
    (6, 2, [("Лютера", "PER"), ("Франции", "LOC"), ("Англии", "LOC"), ("Италии", "LOC"), ("Виттенберг", "LOC"),
            ("Лютера", "PER")]),
    (8, 2, [("BSkyB", "ORG"), ("Sky Movies", "ORG"), ("Sky Box Office", "ORG")]),
    (10, 2, [("Людовика XIV", "PER")]),
    (12, 2, [("Карлом Вильгельмом Шееле", "PER"), ("Уппсале", "LOC"), ("Джозефом Пристли", "PER"), ("Уилтшире", "LOC"),
             ("Пристли", "PER")]),
    (14, 2, [("НАСА", "ORG"), ("Симансом", "PER"), ("Николаса Э. Головина", "PER")]),
    (20, 2, [("Франции", "LOC")]),
    (22, 1, [("Ньюкасла", "LOC"), ("Понс-Элиус", "LOC"), ("Тайн", "LOC")]),
    (24, 2, [("ABC", "ORG"), ("Маленькая Точка", "PER"), ("ABC", "ORG")]),
    (26, 2, [("Великобритании", "LOC"), ("Великобритании", "LOC")]),
    (28, 2, [("Перси Шелли", "PER")]),
    (30, 2, []),
    (32, 1, [("Джэксонвилл", "LOC"), ("Флорида", "LOC"), ("США", "LOC")]),
    (34, 2, [("Земля", "LOC")]),
    (36, 2, [("Хубилая", "PER")]),
    (38, 1, [("Бюро МГЭИК", "ORG"), ("МГЭИК", "ORG"), ("Хёсон Ли", "PER")]),
    (40, 2, []),
    (42, 2, [("Шотландии", "LOC"), ("Эдинбурге", "LOC")]),
    (44, 1, [("Королевское географическое общество Лондона", "ORG"), ("Европе", "LOC")]),
    (46, 2, [("Европе", "LOC")]),
]

SENTENCE_END = re.compile(r"[.!?](?:\s+|$)")


def main(xquad: Path) -> None:
    data = json.loads(xquad.read_text())["data"]
    items = []
    for article, sentences, entities in LABELLED:
        context = data[article]["paragraphs"][0]["context"]
        ends = [m.end() for m in SENTENCE_END.finditer(context)]
        length = len(context[: ends[sentences - 1]].rstrip())
        text = context[:length]
        spans, at = [], 0
        for entity, label in entities:  # listed in the order of the text
            start = text.index(entity, at)
            at = start + len(entity)
            spans.append([start, at, label])
        items.append({"article": article, "paragraph": 0, "length": length, "entities": spans})
    out = {"source": "XQuAD ru (../shared/data/xquad/xquad.ru.json), CC BY-SA 4.0; offsets only",
           "labels": ["PER", "LOC", "ORG"], "items": items}
    (Path(__file__).parent / "entities.json").write_text(json.dumps(out, ensure_ascii=False, indent=1) + "\n")
    print(f"{len(items)} passages, {sum(len(i['entities']) for i in items)} entities")


if __name__ == "__main__":
    main(Path(sys.argv[1]))
