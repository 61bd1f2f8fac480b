"""SQuAD-format question-answering data, and unanswerable pairs made from it (SQuAD 2.0 style).

The official EM/F1 scoring is in ``metrics``.
"""

from __future__ import annotations

import collections
import json
from dataclasses import dataclass, field
from pathlib import Path

from .errors import SearchError
from .metrics import normalize_answer
from .terms import content_words


@dataclass
class QAExample:
    id: str
    question: str
    context: str
    answers: list[str] = field(default_factory=list)
    answer_starts: list[int] = field(default_factory=list)
    title: str = ""


def load_squad(path: str | Path) -> list[QAExample]:
    """Every question of a SQuAD-format file (v1.1 or v2.0; unanswerable ones have no answers)."""
    path = Path(path)
    try:
        data = json.loads(path.read_text())["data"]
    except FileNotFoundError:
        raise SearchError(f"No such file: {path}") from None
    except (json.JSONDecodeError, KeyError, TypeError) as exc:
        raise SearchError(f"{path} is not a SQuAD-format JSON file ({exc})") from exc
    examples = []
    for article in data:
        for paragraph in article["paragraphs"]:
            for qa in paragraph["qas"]:
                answers = qa.get("answers", [])
                examples.append(QAExample(
                    id=str(qa["id"]), question=qa["question"], context=paragraph["context"],
                    answers=[a["text"] for a in answers], answer_starts=[int(a["answer_start"]) for a in answers],
                    title=article.get("title", ""),
                ))
    return examples


# --- unanswerable questions (SQuAD 2.0 style) -------------------------------------------------------

def unanswerable_examples(examples: list[QAExample], rate: float = 0.5, random_share: float = 1 / 3,
                          seed: int = 13) -> list[QAExample]:
    """Questions paired with a paragraph of their own article that does not hold any of their answers.

    A share ``rate`` of the questions get one such pair: usually the paragraph that shares the most
    content words with the question (a near miss, as retrieval would find it), else (``random_share``)
    a random one. Paragraphs that contain a gold answer's text are never used.
    """
    import random

    rng = random.Random(seed)
    by_title: dict[str, list[str]] = collections.defaultdict(list)
    for ex in examples:
        if not by_title[ex.title] or by_title[ex.title][-1] != ex.context:
            by_title[ex.title].append(ex.context)
    contexts = {c for found in by_title.values() for c in found}
    words = {c: set(content_words(c)) for c in contexts}
    normalized = {c: normalize_answer(c) for c in contexts}
    out = []
    for ex in examples:
        if rng.random() >= rate:
            continue
        answers = [normalize_answer(a) for a in ex.answers]
        others = [c for c in dict.fromkeys(by_title[ex.title])
                  if c != ex.context and not any(a and a in normalized[c] for a in answers)]
        if not others:
            continue
        if rng.random() < random_share:
            context = rng.choice(others)
        else:
            question = set(content_words(ex.question))
            context = max(others, key=lambda c: len(question & words[c]))
        out.append(QAExample(id=ex.id + "-unanswerable", question=ex.question, context=context, title=ex.title))
    return out


def split_articles(examples: list[QAExample], held_out: int) -> tuple[list[QAExample], list[QAExample]]:
    """The examples of all articles but the last ``held_out``, and those of the last ``held_out``."""
    titles = list(dict.fromkeys(ex.title for ex in examples))
    kept = set(titles[len(titles) - held_out:]) if held_out else set()
    return [ex for ex in examples if ex.title not in kept], [ex for ex in examples if ex.title in kept]
