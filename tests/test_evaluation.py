import json
import math

import pytest

from search.errors import SearchError
from search.evaluation import load_collection, parse_smart
from search.metrics import average_precision, ndcg_at, recall_at, score_run


def test_metrics_by_hand():
    qrels = {"a": 1, "c": 1}
    ranked = ["a", "b", "c"]
    # DCG = 1/log2(2) + 1/log2(4) = 1.5; IDCG = 1 + 1/log2(3)
    assert ndcg_at(ranked, qrels) == pytest.approx(1.5 / (1 + 1 / math.log2(3)))
    assert average_precision(ranked, qrels) == pytest.approx((1 / 1 + 2 / 3) / 2)
    assert recall_at(ranked, qrels, k=2) == 0.5
    assert ndcg_at(["c", "a"], {"a": 3, "c": 1}) < ndcg_at(["a", "c"], {"a": 3, "c": 1}) == 1.0
    assert score_run({"q": ranked, "unjudged": ["a"]}, {"q": qrels})["queries"] == 1


def test_parse_smart_records():
    text = ".I 1\n.T\nA title\n.A\nSomeone\n.W\nThe body\ntext here\n.I 2\n.W\nSecond\n"
    assert parse_smart(text) == {"1": "A title\nThe body text here", "2": "Second"}


def test_smart_collection_folder(tmp_path):
    (tmp_path / "X.ALL").write_text(".I 1\n.W\nalpha beta\n.I 2\n.W\ngamma\n")
    (tmp_path / "X.QRY").write_text(".I 1\n.W\nalpha?\n")
    (tmp_path / "X.REL").write_text(" 1  1 0 0.000000\n")
    c = load_collection(tmp_path)
    assert c.documents == {"1": "alpha beta", "2": "gamma"}
    assert c.qrels == {"1": {"1": 1}} and c.judged_queries() == {"1": "alpha?"}


def test_unknown_folder_is_a_clear_error(tmp_path):
    from search.errors import SearchError

    with pytest.raises(SearchError, match="not a test collection"):
        load_collection(tmp_path)


def _squad_file(path, contexts, questions):
    paragraphs = [{"context": c, "qas": [{"id": f"q{i}", "question": q, "answers": []}]}
                  for i, (c, q) in enumerate(zip(contexts, questions))]
    path.write_text(json.dumps({"data": [{"title": "t", "paragraphs": paragraphs}]}))
    return path


def test_a_squad_file_and_a_parallel_one_make_a_cross_lingual_collection(tmp_path):
    en = _squad_file(tmp_path / "x.en.json", ["The cat sat.", "Water for plants."], ["Where did the cat sit?", "What do plants need?"])
    ru = _squad_file(tmp_path / "x.ru.json", ["Кошка сидела.", "Вода для растений."], ["Где сидела кошка?", "Что нужно растениям?"])
    cross = load_collection(en, documents=ru)
    assert cross.name == "x.en>x.ru" and cross.documents == {"0-0": "Кошка сидела.", "0-1": "Вода для растений."}
    assert cross.queries == {"q0": "Where did the cat sit?", "q1": "What do plants need?"}
    assert cross.qrels == {"q0": {"0-0": 1}, "q1": {"0-1": 1}}
    assert load_collection(en).documents["0-1"] == "Water for plants."
    _squad_file(tmp_path / "short.json", ["Кошка сидела."], ["Где?"])
    with pytest.raises(SearchError, match="not parallel"):
        load_collection(en, documents=tmp_path / "short.json")


def test_entities_by_offsets_are_scored_on_the_passages_they_name(tmp_path, run):
    from search.evaluation import evaluate_entity_offsets

    text = "Владимир Путин выступил в Москве. Потом он уехал."
    texts = tmp_path / "texts.json"
    texts.write_text(json.dumps({"data": [{"title": "t", "paragraphs": [{"context": text, "qas": []}]}]}))
    gold = tmp_path / "entities.json"
    entities = [[0, 14, "PER"], [26, 32, "ORG"]]  # Москве is a LOC: one of two found right
    gold.write_text(json.dumps({"items": [{"article": 0, "paragraph": 0, "length": 33, "entities": entities}]}))
    scores = evaluate_entity_offsets(gold, texts)
    assert (scores["precision"], scores["recall"], scores["f1"], scores["entities"]) == (50.0, 50.0, 50.0, 2)
    result = run("eval", "ner", "--data", str(gold), "--texts", str(texts))
    assert "precision 50.0  recall 50.0  F1 50.0  (2 entities in 1 passages; natasha)" in result.output
    assert "give it with --texts" in run("eval", "ner", "--data", str(gold), ok=False).output
