import json

import pytest

from search.metrics import f1_score, normalize_answer, score_predictions
from search.squad import load_squad

SQUAD = {"data": [{"title": "T", "paragraphs": [
    {"context": "BERT was published in 2018 by researchers at Google AI Language.",
     "qas": [{"id": "q1", "question": "When was BERT published?", "answers": [{"text": "2018", "answer_start": 22}]},
             {"id": "q2", "question": "Who published BERT?", "answers": [
                 {"text": "researchers at Google AI Language", "answer_start": 30},
                 {"text": "Google AI Language", "answer_start": 45}]}]},
    {"context": "The cat sat on the mat.",
     "qas": [{"id": "q3", "question": "Where did the cat sit?", "answers": [{"text": "on the mat", "answer_start": 12}]}]},
]}]}


def write_json(path, data):
    path.write_text(json.dumps(data))
    return path


@pytest.fixture
def squad_file(tmp_path):
    return write_json(tmp_path / "mini.json", SQUAD)


def test_load_squad(squad_file):
    examples = load_squad(squad_file)
    assert [e.id for e in examples] == ["q1", "q2", "q3"]
    first = examples[0]
    assert first.context[first.answer_starts[0] :].startswith(first.answers[0])


def test_normalisation():
    assert normalize_answer("The  Cat, sat!") == "cat sat"


def test_em_and_f1_by_hand(squad_file):
    predictions = {
        "q1": "in 2018",  # EM 0; F1: pred {in, 2018} vs {2018}: P 1/2, R 1 -> 2/3
        "q2": "Google AI",  # best gold "Google AI Language": P 1, R 2/3 -> 0.8; EM 0
        "q3": "the mat",  # gold "on the mat" -> {on, mat} vs pred {mat}: P 1, R 1/2 -> 2/3
    }
    scores = score_predictions(load_squad(squad_file), predictions)
    assert scores["exact_match"] == 0.0
    assert scores["f1"] == pytest.approx(100 * (2 / 3 + 0.8 + 2 / 3) / 3)
    perfect = score_predictions(load_squad(squad_file), {"q1": "2018", "q2": "Google AI Language", "q3": "on the mat."})
    assert perfect == {"exact_match": 100.0, "f1": 100.0, "questions": 3}
    assert f1_score("", "x") == 0.0


def test_training_runs_resumes_and_exports(squad_file, tiny_model, tmp_path):
    from search.reader import Reader
    from search.training import Recipe, train_reader

    recipe = Recipe(base_model=tiny_model, epochs=2, batch_size=2, max_length=48, stride=16, learning_rate=1e-3)
    logs = []
    state = train_reader(squad_file, tmp_path / "run", recipe, dev=squad_file, max_minutes=0,
                         progress=False, log=logs.append)
    assert state["step"] == 1 and (tmp_path / "run" / "checkpoint" / "state.json").exists()
    assert not (tmp_path / "run" / "last").exists()  # stopped early: not the end of the schedule
    state = train_reader(squad_file, tmp_path / "run", recipe, dev=squad_file, progress=False, log=logs.append)
    assert any("resumed at step 1" in line for line in logs)
    assert state["step"] == 4 and len(state["history"]) == 2  # 2 batches per epoch, 2 epochs
    assert any(line.startswith("step 4/4: train loss ") and "s/step; dev f1" in line for line in logs)
    assert all(h["train_loss"] > 0 and h["s_per_step"] > 0 for h in state["history"])
    reader = Reader(str(tmp_path / "run" / "best"))
    answers = reader.read("When was BERT published?", [SQUAD["data"][0]["paragraphs"][0]["context"]])
    assert answers and answers[0].text in SQUAD["data"][0]["paragraphs"][0]["context"]
    assert not (tmp_path / "run" / "best" / "model.safetensors").exists()  # only the delta is saved
    last = json.loads((tmp_path / "run" / "last" / "finetuned.json").read_text())
    assert last["step"] == 4 and Reader(str(tmp_path / "run" / "last")).read("When was BERT published?", ["In 2018."])
    warm = train_reader(squad_file, tmp_path / "warm", recipe, max_minutes=0, progress=False, log=logs.append,
                        init=str(tmp_path / "run" / "best"))
    assert warm["step"] == 1


def test_training_windows_point_at_the_answer_in_any_chunking(squad_file, minilm):
    from transformers import AutoTokenizer

    from search.training import train_features

    tokenizer = AutoTokenizer.from_pretrained(minilm)
    examples = load_squad(squad_file)
    features = train_features(tokenizer, examples, max_length=16, stride=4, chunk=2)
    assert len(features) > len(examples)  # the first paragraph needs several 16-token windows
    inside = [f for f in features if f["end"]]
    assert {tokenizer.decode(f["input_ids"][f["start"] : f["end"] + 1]) for f in inside} >= {"2018", "on the mat"}
    assert all(f["start"] <= f["end"] and f["token_type_ids"][f["start"]] == 1 for f in inside)
    whole = train_features(tokenizer, examples, max_length=16, stride=4)
    assert [(f["input_ids"].tolist(), f["start"], f["end"]) for f in features] == \
           [(f["input_ids"].tolist(), f["start"], f["end"]) for f in whole]


def test_unanswerable_pairs_use_paragraphs_of_the_same_article_without_the_answer(squad_file, tmp_path):
    from search.squad import split_articles, unanswerable_examples

    examples = load_squad(squad_file)
    pairs = unanswerable_examples(examples, rate=1.0)
    # q1 and q2 get the cat paragraph (the only other one); q3 gets the BERT paragraph.
    assert {p.id: p.context[:7] for p in pairs} == {"q1-unanswerable": "The cat", "q2-unanswerable": "The cat",
                                                    "q3-unanswerable": "BERT wa"}
    assert all(not p.answers for p in pairs)
    assert unanswerable_examples(examples, rate=0.0) == []
    other = dict(SQUAD, data=SQUAD["data"] + [{"title": "U", "paragraphs": [SQUAD["data"][0]["paragraphs"][1]]}])
    kept, held_out = split_articles(load_squad_json(other, tmp_path), 1)
    assert {e.title for e in kept} == {"T"} and {e.title for e in held_out} == {"U"}


def test_a_paragraph_holding_the_answer_text_is_never_an_unanswerable_pair(tmp_path):
    from search.squad import unanswerable_examples

    data = {"data": [{"title": "T", "paragraphs": [
        {"context": "BERT was published in 2018.", "qas": [
            {"id": "q1", "question": "When was BERT published?", "answers": [{"text": "2018", "answer_start": 22}]}]},
        {"context": "In 2018 many models appeared.", "qas": []},
    ]}]}
    assert unanswerable_examples(load_squad_json(data, tmp_path), rate=1.0) == []


def test_training_windows_of_unanswerable_questions_point_at_cls(squad_file, tiny_model):
    from transformers import AutoTokenizer

    from search.squad import unanswerable_examples
    from search.training import train_features

    tokenizer = AutoTokenizer.from_pretrained(tiny_model)
    pairs = unanswerable_examples(load_squad(squad_file), rate=1.0)
    features = train_features(tokenizer, pairs, max_length=64, stride=16)
    assert len(features) >= len(pairs) and all(f["start"] == f["end"] == 0 for f in features)


def load_squad_json(data, folder):
    (folder / "data.json").write_text(json.dumps(data))
    return load_squad(folder / "data.json")
