import json

import pytest

from search.squad import f1_score, load_squad, normalize_answer, score_predictions

SQUAD = {"data": [{"title": "T", "paragraphs": [
    {"context": "BERT was published in 2018 by researchers at Google AI Language.",
     "qas": [{"id": "q1", "question": "When was BERT published?", "answers": [{"text": "2018", "answer_start": 22}]},
             {"id": "q2", "question": "Who published BERT?", "answers": [
                 {"text": "researchers at Google AI Language", "answer_start": 30},
                 {"text": "Google AI Language", "answer_start": 45}]}]},
    {"context": "The cat sat on the mat.",
     "qas": [{"id": "q3", "question": "Where did the cat sit?", "answers": [{"text": "on the mat", "answer_start": 12}]}]},
]}]}


@pytest.fixture
def squad_file(tmp_path):
    path = tmp_path / "mini.json"
    path.write_text(json.dumps(SQUAD))
    return path


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
    state = train_reader(squad_file, tmp_path / "run", recipe, dev=squad_file, progress=False, log=logs.append)
    assert any("resumed at step 1" in line for line in logs)
    assert state["step"] == 4 and len(state["history"]) == 2  # 2 batches per epoch, 2 epochs
    assert any(line.startswith("step 4/4: train loss ") and "s/step; dev f1" in line for line in logs)
    assert all(h["train_loss"] > 0 and h["s_per_step"] > 0 for h in state["history"])
    reader = Reader(str(tmp_path / "run" / "best"))
    answers = reader.read("When was BERT published?", [SQUAD["data"][0]["paragraphs"][0]["context"]])
    assert answers and answers[0].text in SQUAD["data"][0]["paragraphs"][0]["context"]
    assert not (tmp_path / "run" / "best" / "model.safetensors").exists()  # only the delta is saved
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
