"""Saying "no answer": SQuAD 2.0 scores, the reader's calibrated confidence and its threshold."""

import json
import math
import random

import pytest

from search.metrics import answer_f1, answered_precision, calibration_error, score_predictions
from search.squad import load_squad
from search.training import best_threshold, fit_calibration
from test_squad import SQUAD, write_json

#: SQUAD with one unanswerable question (SQuAD 2.0: "is_impossible", no answers).
SQUAD2 = json.loads(json.dumps(SQUAD))
SQUAD2["data"][0]["paragraphs"][1]["qas"].append(
    {"id": "q4", "question": "Who painted the mat?", "answers": [], "is_impossible": True})


@pytest.fixture
def squad2_file(tmp_path):
    return write_json(tmp_path / "mini2.json", SQUAD2)


def test_squad2_scores_answerable_and_unanswerable_questions_apart(squad2_file):
    examples = load_squad(squad2_file)
    predictions = {"q1": "2018", "q2": "Google", "q3": "", "q4": ""}
    scores = score_predictions(examples, predictions)
    assert scores["no_answer_accuracy"] == 100.0  # q4 left unanswered
    assert scores["has_answer_f1"] == pytest.approx(100 * (1 + 0.5 + 0) / 3)  # "Google" vs "Google AI Language"
    assert scores["f1"] == pytest.approx(100 * (1 + 0.5 + 0 + 1) / 4)
    assert score_predictions(examples, {**predictions, "q4": "nobody"})["no_answer_accuracy"] == 0.0
    assert "has_answer_f1" not in score_predictions(examples[:3], predictions)  # SQuAD 1.1: no split


def test_answered_precision_counts_only_answered_questions(squad2_file):
    examples = load_squad(squad2_file)
    assert answered_precision(examples, {"q1": "2018", "q2": "the cat", "q3": "", "q4": ""}) == \
        {"answered": 2, "answered_precision": 50.0}
    assert answered_precision(examples, {"q4": "the mat"}) == {"answered": 1, "answered_precision": 0.0}
    assert answer_f1("", []) == 1.0 and answer_f1("x", []) == 0.0


def test_calibration_error_is_the_weighted_gap_between_confidence_and_accuracy():
    assert calibration_error([0.9] * 10, [True] * 9 + [False]) == pytest.approx(0.0)
    assert calibration_error([0.9] * 10, [False] * 10) == pytest.approx(0.9)
    # two bins: 0.25 (half right: gap 0.25) and 0.85 (all right: gap 0.15), equal weight
    assert calibration_error([0.25, 0.25, 0.85, 0.85], [True, False, True, True]) == pytest.approx(0.2)
    assert calibration_error([1.0], [True]) == 0.0  # a confidence of 1 falls in the last bin


def test_fitted_calibration_recovers_the_probability_that_made_the_data():
    rng = random.Random(3)
    margins = [rng.uniform(-6, 6) for _ in range(4000)]
    right = [rng.random() < 1 / (1 + math.exp(-(0.8 * m - 1.0))) for m in margins]
    scale, bias = fit_calibration(margins, [1.0] * len(margins), right)
    assert scale == pytest.approx(0.8, abs=0.15) and bias == pytest.approx(-1.0, abs=0.25)


def test_the_threshold_maximises_squad2_f1():
    confidences = [0.9, 0.7, 0.3, 0.2, 0.1]
    f1s = [1.0, 1.0, 0.0, 0.0, 1.0]  # of the best span
    no_answer = [False, False, True, True, False]  # the 0.3 and 0.2 questions have no answer
    threshold = best_threshold(confidences, f1s, no_answer)
    assert 0.2 < threshold <= 0.7  # answer the two confident ones, abstain on both unanswerable
    assert best_threshold([0.5, 0.6], [1.0, 1.0], [False, False]) == 0.0  # all answerable: never abstain


def test_calibrate_then_ask_abstains_below_the_threshold(run, tmp_path, tiny_qa, tiny_model, corpus):
    import shutil

    from search.reader import Reader

    folder = tmp_path / "reader"
    shutil.copytree(tiny_qa, folder)
    data = write_json(tmp_path / "mini.json", SQUAD)  # a one-article file: hold it out
    out = run("train", "calibrate", "--reader", folder, "--data", data, "--held-out-articles", 1).output
    calibration = json.loads((folder / "calibration.json").read_text())
    assert set(calibration) == {"scale", "bias", "threshold"} and "threshold" in out
    assert Reader(str(folder)).calibration.threshold == calibration["threshold"]
    (folder / "calibration.json").write_text(json.dumps({"scale": 0.0, "bias": -50.0, "threshold": 0.5}))
    run("index", corpus, "--model", tiny_model)
    assert json.loads(run("ask", "when did apollo land", "--reader", folder, "--json").output) == []
    shown = run("ask", "when did apollo land", "--reader", folder).output
    assert "No answer found" in shown and "come closest" in shown and "apollo" in shown.lower()  # the passages
    assert json.loads(run("ask", "when did apollo land", "--reader", folder, "--threshold", "off", "--json").output)
    assert run("ask", "x", "--reader", folder, "--threshold", "2", ok=False).exit_code == 2


def test_eval_qa_reports_squad2_scores_and_calibration_error(run, squad2_file, tiny_qa):
    (row,) = json.loads(run("eval", "qa", "--data", squad2_file, "--reader", tiny_qa, "--json").output)
    assert {"has_answer_f1", "no_answer_accuracy", "ece"} <= set(row)
    assert row["no_answer_accuracy"] == 0.0  # uncalibrated: never abstains
    (strict,) = json.loads(run("eval", "qa", "--data", squad2_file, "--reader", tiny_qa, "--threshold", "1",
                               "--json").output)
    assert strict["no_answer_accuracy"] == 100.0 and strict["has_answer_f1"] == 0.0
    assert strict["f1_always"] == row["f1"]  # the same answers, none withheld
