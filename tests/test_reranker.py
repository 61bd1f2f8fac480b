import json

import numpy as np
import pytest

from search.errors import ModelNotFound
from search.reranker import Reranker, relevance
from search.retrieval import Hit

PASSAGES = ["Apollo 11 landed on the Moon in 1969.", "BM25 ranks documents by term frequency and rarity, a"
            " bag-of-words function that has served search engines for decades.", "Tea.",
            "Python 3.0 was released in December 2008, breaking compatibility with Python 2."]


def hit(rank, text, score=1.0):
    return Hit(rank=rank, score=score, passage_id=rank, document_id=rank, path=f"{rank}.txt", title="", text=text,
               start=0, end=len(text))


def test_relevance_is_the_one_logit_or_the_log_odds_of_the_last_class():
    assert relevance(np.array([[2.0], [-1.0]])).tolist() == [2.0, -1.0]
    two = relevance(np.array([[0.0, np.log(3.0)]]))
    assert two[0] == pytest.approx(np.log(3.0))  # p(relevant) = 3/4: log-odds log 3
    three = relevance(np.array([[0.0, 0.0, 0.0]]))
    assert three[0] == pytest.approx(np.log(1 / 2))


@pytest.mark.parametrize("backend", ["torch", "onnx"])
def test_scores_do_not_depend_on_the_batch_or_its_padding(tiny_reranker, backend, tmp_path, monkeypatch):
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path))
    reranker = Reranker(tiny_reranker, batch_size=3, backend=backend, precision="float32")
    together = reranker.scores("when did apollo land", PASSAGES)
    alone = [reranker.scores("when did apollo land", [p])[0] for p in PASSAGES]
    assert together.shape == (4,) and np.allclose(together, alone, atol=1e-4)
    assert reranker.scores("anything", []).shape == (0,)


def test_onnx_scores_match_torch(tiny_reranker, tmp_path, monkeypatch):
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path))
    on = {b: Reranker(tiny_reranker, backend=b, precision="float32").scores("bm25 ranking", PASSAGES)
          for b in ("torch", "onnx")}
    assert np.allclose(on["torch"], on["onnx"], atol=1e-4)


@pytest.mark.parametrize("name", ["minilm", "multilingual", "/nonexistent/reranker"])
def test_an_encoder_alias_or_a_missing_folder_is_no_reranker(name):
    """An encoder under a new, untrained classification head would rerank at random without a word."""
    with pytest.raises(ModelNotFound) as error:
        Reranker(name).path
    assert "alias" not in str(error.value) and "a local model folder" in str(error.value)


def test_rerank_orders_the_first_depth_hits_by_score_and_keeps_the_rest(tiny_reranker):
    reranker = Reranker(tiny_reranker, depth=3, backend="torch")
    hits = [hit(r, t) for r, t in enumerate(PASSAGES, 1)]
    scores = reranker.scores("python release", PASSAGES[:3])
    ranked = reranker.rerank("python release", hits)
    assert [h.rank for h in ranked] == [1, 2, 3, 4]
    assert [h.text for h in ranked[:3]] == [PASSAGES[i] for i in np.argsort(-scores)]
    assert [h.rerank_score for h in ranked[:3]] == pytest.approx(sorted(scores.tolist(), reverse=True), abs=1e-6)
    assert ranked[3].text == PASSAGES[3] and ranked[3].rerank_score is None
    assert hits[0].rank == 1 and hits[0].rerank_score is None  # the hits given are left as they were


def test_search_with_a_reranker_keeps_the_best_k_of_depth_candidates(run, corpus, tiny_model, tiny_reranker, tmp_path):
    from search import Index

    run("index", corpus, "--model", tiny_model)
    reranker = Reranker(tiny_reranker, depth=4)
    with Index.open(tmp_path / "ix") as index:
        candidates = index.search("when did apollo land", k=4)
        found = index.search("when did apollo land", k=2, reranker=reranker)
    expected = reranker.rerank("when did apollo land", candidates)[:2]
    assert [(h.passage_id, h.rank) for h in found] == [(h.passage_id, h.rank) for h in expected]
    assert found[0].rerank_score >= found[1].rerank_score


def test_cli_query_and_ask_rerank(run, corpus, tiny_model, tiny_reranker, tiny_qa):
    run("index", corpus, "--model", tiny_model)
    hits = json.loads(run("query", "apollo moon", "-k", "3", "--rerank", tiny_reranker, "--json").output)
    scores = [h["rerank_score"] for h in hits]
    assert len(hits) == 3 and scores == sorted(scores, reverse=True)
    plain = json.loads(run("query", "apollo moon", "-k", "3", "--json").output)
    assert all(h["rerank_score"] is None for h in plain)
    shown = run("query", "apollo moon", "-k", "1", "--rerank", tiny_reranker).output
    assert f"1. {scores[0]:.3f}" in shown
    answers = json.loads(run("ask", "when did apollo land", "--reader", tiny_qa, "--threshold", "off",
                             "--rerank", tiny_reranker, "--rerank-depth", "5", "--json").output)
    assert answers and answers[0]["text"]


def test_ask_without_an_answer_shows_the_passages_it_read_reranked_once(run, corpus, tiny_model, tiny_reranker, tiny_qa,
                                                                        monkeypatch):
    run("index", corpus, "--model", tiny_model)
    read = []
    scores = Reranker.scores
    monkeypatch.setattr(Reranker, "scores", lambda self, query, passages: read.append(passages) or scores(self, query, passages))
    shown = run("ask", "when did apollo land", "--reader", tiny_qa, "--threshold", "1", "--rerank", tiny_reranker).output
    assert "No answer found" in shown and "The passages that come closest" in shown
    assert len(read) == 1


def test_reranker_pairs_put_each_question_with_its_paragraph_and_a_near_miss():
    from search.squad import QAExample
    from search.training import pairwise_accuracy, reranker_pairs

    bert, cat = "BERT was published in 2018.", "The cat sat on the mat."
    examples = [QAExample("1", "When was BERT published?", bert, ["2018"], [22], "T"),
                QAExample("2", "Where did the cat sit?", cat, ["on the mat"], [12], "T")]
    pairs = reranker_pairs(examples, seed=1)
    assert sorted(pairs) == sorted([("When was BERT published?", bert, 1), ("Where did the cat sit?", cat, 1),
                                    ("When was BERT published?", cat, 0), ("Where did the cat sit?", bert, 0)])
    by_length = lambda q, passages: np.array([-len(p) for p in passages])  # noqa: E731 (shorter is better)
    assert pairwise_accuracy(by_length, pairs) == 50.0


def test_train_reranker_learns_its_pairs_and_the_cli_reranks_with_it(run, corpus, tiny_model, tmp_path):
    from tests.test_squad import SQUAD, write_json

    from search.squad import load_squad
    from search.training import reranker_pairs

    data = write_json(tmp_path / "mini.json", SQUAD)
    pairs = reranker_pairs(load_squad(data), seed=13)
    result = run("train", "reranker", "--data", str(data), "--dev", str(data), "--output", str(tmp_path / "run"),
                 "--base-model", tiny_model, "--epochs", "40", "--batch-size", "2", "--max-length", "48",
                 "--learning-rate", "1e-3")
    assert "best dev accuracy 100.0" in result.output
    own = {q: p for q, p, label in pairs if label}

    def margins(reranker):  # own paragraph's score minus the near miss's, per question
        return [float(np.subtract(*reranker.scores(q, [own[q], p]))) for q, p, label in pairs if not label]

    untrained = margins(Reranker(tiny_model, backend="torch", precision="float32"))
    trained = margins(Reranker(str(tmp_path / "run" / "best"), backend="torch", precision="float32"))
    assert max(map(abs, untrained)) < 0.005 and min(trained) > 0.02  # a random head scores both about even
    run("index", corpus, "--model", tiny_model)
    hits = json.loads(run("query", "apollo", "--rerank", str(tmp_path / "run" / "best"), "--json").output)
    assert hits and hits[0]["rerank_score"] is not None


def test_eval_retrieval_scores_the_reranked_order(run, tmp_path, tiny_model, tiny_reranker):
    folder = tmp_path / "mini"
    (folder / "qrels").mkdir(parents=True)
    docs = {"d1": "the cat sat on the mat", "d2": "water and sun light for a plant"}
    (folder / "corpus.jsonl").write_text("".join(json.dumps({"_id": i, "title": "", "text": t}) + "\n" for i, t in docs.items()))
    queries = {"q1": "cat mat", "q2": "plant water"}
    (folder / "queries.jsonl").write_text("".join(json.dumps({"_id": i, "text": t}) + "\n" for i, t in queries.items()))
    (folder / "qrels" / "test.tsv").write_text("query-id\tcorpus-id\tscore\nq1\td1\t1\nq2\td2\t1\n")
    reranker = Reranker(tiny_reranker)
    right = [int(np.argmax(reranker.scores(queries[q], list(docs.values())))) == n for n, q in enumerate(queries)]
    (row,) = json.loads(run("eval", "retrieval", folder, "--model", tiny_model, "--mode", "dense",
                            "--rerank", tiny_reranker, "--json").output)
    assert row["recall@1"] == sum(right) / 2
