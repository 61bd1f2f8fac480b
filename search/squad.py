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
