"""SQuAD-format question-answering data and the official EM/F1 scoring."""

from __future__ import annotations

import collections
import json
import re
import string
from dataclasses import dataclass, field
from pathlib import Path

from .errors import SearchError


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


# --- official SQuAD v1.1 evaluation ----------------------------------------------------------------

def normalize_answer(text: str) -> str:
    """Lower-case; drop punctuation, articles (a, an, the) and extra white space."""
    text = "".join(ch for ch in text.lower() if ch not in set(string.punctuation))
    text = re.sub(r"\b(a|an|the)\b", " ", text)
    return " ".join(text.split())


def exact_match(prediction: str, truth: str) -> float:
    return float(normalize_answer(prediction) == normalize_answer(truth))


def f1_score(prediction: str, truth: str) -> float:
    pred, gold = normalize_answer(prediction).split(), normalize_answer(truth).split()
    if not pred or not gold:
        return float(pred == gold)
    common = collections.Counter(pred) & collections.Counter(gold)
    same = sum(common.values())
    if same == 0:
        return 0.0
    precision, recall = same / len(pred), same / len(gold)
    return 2 * precision * recall / (precision + recall)


def score_predictions(examples: list[QAExample], predictions: dict[str, str]) -> dict[str, float]:
    """EM and F1 (in percent) as the official script computes them: the max over gold answers.

    A question with no gold answer (SQuAD 2.0) counts as right when the prediction is empty.
    """
    em = f1 = 0.0
    for ex in examples:
        prediction = predictions.get(ex.id, "")
        truths = ex.answers or [""]
        em += max(exact_match(prediction, t) for t in truths)
        f1 += max(f1_score(prediction, t) for t in truths)
    n = max(len(examples), 1)
    return {"exact_match": 100 * em / n, "f1": 100 * f1 / n, "questions": len(examples)}


# --- unanswerable questions (SQuAD 2.0 style) -------------------------------------------------------

_WORD = re.compile(r"\w+")


def _content_words(text: str) -> set[str]:
    from .store import STOPWORDS

    return {w for w in _WORD.findall(text.lower()) if w not in STOPWORDS}


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
    words = {c: _content_words(c) for c in contexts}
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
            question = _content_words(ex.question)
            context = max(others, key=lambda c: len(question & words[c]))
        out.append(QAExample(id=ex.id + "-unanswerable", question=ex.question, context=context, title=ex.title))
    return out


def split_articles(examples: list[QAExample], held_out: int) -> tuple[list[QAExample], list[QAExample]]:
    """The examples of all articles but the last ``held_out``, and those of the last ``held_out``."""
    titles = list(dict.fromkeys(ex.title for ex in examples))
    kept = set(titles[len(titles) - held_out:]) if held_out else set()
    return [ex for ex in examples if ex.title not in kept], [ex for ex in examples if ex.title in kept]
