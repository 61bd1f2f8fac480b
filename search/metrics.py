"""Every score the project reports, written once: SQuAD EM/F1, entity F1, accuracy, retrieval metrics."""

from __future__ import annotations

import collections
import math
import re
import string
from typing import Sequence


# --- extractive QA: the official SQuAD v1.1 evaluation ------------------------------------------------

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


def answer_f1(prediction: str, truths: Sequence[str]) -> float:
    """F1 of ``prediction`` against the best of ``truths``; with no truths (unanswerable) 1 for no answer."""
    return max(f1_score(prediction, t) for t in (truths or [""]))


def score_predictions(examples: Sequence, predictions: dict[str, str]) -> dict[str, float]:
    """EM and F1 (in percent) of ``predictions`` (question id -> answer, "" for none) for QA
    ``examples`` (``squad.QAExample``), as the official script computes them: the max over gold
    answers. A question with no gold answer (SQuAD 2.0) counts as right when the prediction is
    empty; with such questions the scores are also given apart (HasAns F1, NoAns accuracy).
    """
    em = f1 = 0.0
    for ex in examples:
        prediction = predictions.get(ex.id, "")
        em += max(exact_match(prediction, t) for t in (ex.answers or [""]))
        f1 += answer_f1(prediction, ex.answers)
    n = max(len(examples), 1)
    scores = {"exact_match": 100 * em / n, "f1": 100 * f1 / n, "questions": len(examples)}
    answerable = [ex for ex in examples if ex.answers]
    if len(answerable) < len(examples):
        unanswerable = [ex for ex in examples if not ex.answers]
        scores["has_answer_f1"] = 100 * sum(answer_f1(predictions.get(ex.id, ""), ex.answers) for ex in answerable) / max(len(answerable), 1)
        scores["no_answer_accuracy"] = 100 * sum(not predictions.get(ex.id) for ex in unanswerable) / len(unanswerable)
    return scores


def answered_precision(examples: Sequence, predictions: dict[str, str], right_f1: float = 0.5) -> dict[str, float]:
    """Of the questions given an answer, the share answered right (F1 >= ``right_f1``; any answer to
    an unanswerable question is wrong), in percent, and how many were answered."""
    answered = [ex for ex in examples if predictions.get(ex.id)]
    right = sum(answer_f1(predictions[ex.id], ex.answers) >= right_f1 for ex in answered if ex.answers)
    return {"answered": len(answered), "answered_precision": 100 * right / max(len(answered), 1)}


def calibration_error(confidences: Sequence[float], right: Sequence[bool], bins: int = 10) -> float:
    """Expected calibration error: the mean gap between confidence and accuracy over equal-width
    confidence bins, weighted by the share of predictions in each bin."""
    total, gap = len(confidences), 0.0
    for b in range(bins):
        lo, hi = b / bins, (b + 1) / bins
        members = [i for i, c in enumerate(confidences) if lo <= c < hi or (b == bins - 1 and c == 1.0)]
        if members:
            mean_confidence = sum(confidences[i] for i in members) / len(members)
            accuracy_ = sum(bool(right[i]) for i in members) / len(members)
            gap += len(members) / total * abs(mean_confidence - accuracy_)
    return gap


# --- named entities ---------------------------------------------------------------------------------

def entity_spans(tags: Sequence[str]) -> set[tuple[int, int, str]]:
    """Strict BIO chunks: B-X followed by I-X...; a stray I- starts no entity."""
    spans, start, label = set(), None, None
    for i, tag in enumerate(list(tags) + ["O"]):
        if start is not None and tag != "I-" + label:
            spans.add((start, i, label))
            start = None
        if tag.startswith("B-"):
            start, label = i, tag[2:]
    return spans


def score_entities(gold: list[list[str]], predicted: list[list[str]]) -> dict[str, float]:
    """Entity-level precision, recall and F1 (percent), exact span and type (seqeval strict style)."""
    return score_spans([entity_spans(g) for g in gold], [entity_spans(p) for p in predicted])


def score_spans(gold: Sequence[set], predicted: Sequence[set]) -> dict[str, float]:
    """Precision, recall and F1 (percent) of predicted entities, each a (start, end, type) of one
    text, against the gold ones: only the exact span with the right type counts."""
    tp = n_gold = n_pred = 0
    for gs, ps in zip(gold, predicted):
        tp, n_gold, n_pred = tp + len(gs & ps), n_gold + len(gs), n_pred + len(ps)
    precision = tp / n_pred if n_pred else 0.0
    recall = tp / n_gold if n_gold else 0.0
    f1 = 2 * precision * recall / (precision + recall) if precision + recall else 0.0
    return {"precision": 100 * precision, "recall": 100 * recall, "f1": 100 * f1, "entities": n_gold}


# --- classification ---------------------------------------------------------------------------------

def accuracy(predicted: Sequence[str], gold: Sequence[str]) -> float:
    """Share of ``predicted`` labels equal to ``gold``, in percent."""
    return 100 * sum(p == g for p, g in zip(predicted, gold)) / max(len(gold), 1)


# --- retrieval --------------------------------------------------------------------------------------

def ndcg_at(ranked: list[str], qrels: dict[str, int], k: int = 10) -> float:
    dcg = sum(qrels.get(d, 0) / math.log2(i + 2) for i, d in enumerate(ranked[:k]))
    ideal = sorted(qrels.values(), reverse=True)[:k]
    idcg = sum(g / math.log2(i + 2) for i, g in enumerate(ideal))
    return dcg / idcg if idcg > 0 else 0.0


def recall_at(ranked: list[str], qrels: dict[str, int], k: int = 100) -> float:
    return len(set(ranked[:k]) & set(qrels)) / len(qrels) if qrels else 0.0


def average_precision(ranked: list[str], qrels: dict[str, int]) -> float:
    hits, total = 0, 0.0
    for i, d in enumerate(ranked):
        if d in qrels:
            hits += 1
            total += hits / (i + 1)
    return total / len(qrels) if qrels else 0.0


def score_run(run: dict[str, list[str]], qrels: dict[str, dict[str, int]]) -> dict[str, float]:
    """Mean nDCG@10, Recall@100 and MAP (over the ranked lists given, cut at 100) of a run."""
    queries = [q for q in run if qrels.get(q)]
    if not queries:
        return {"ndcg@10": 0.0, "recall@1": 0.0, "recall@5": 0.0, "recall@100": 0.0, "map": 0.0, "queries": 0}
    mean = lambda f: sum(f(run[q][:100], qrels[q]) for q in queries) / len(queries)  # noqa: E731
    return {
        "ndcg@10": mean(ndcg_at), "recall@1": mean(lambda r, q: recall_at(r, q, 1)),
        "recall@5": mean(lambda r, q: recall_at(r, q, 5)), "recall@100": mean(recall_at), "map": mean(average_precision),
        "queries": len(queries),
    }
