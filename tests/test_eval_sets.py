"""The project's own evaluation sets are well formed."""

import json
from pathlib import Path

from search.squad import load_squad

PYTHON_DOCS = Path(__file__).resolve().parents[1] / "evals" / "python-docs" / "questions.json"


def test_python_docs_questions_are_squad2_with_verbatim_answers():
    data = json.loads(PYTHON_DOCS.read_text())
    examples = load_squad(PYTHON_DOCS)
    answerable = [ex for ex in examples if ex.answers]
    assert data["version"] == "v2.0" and len(answerable) >= 100 and len(examples) - len(answerable) >= 25
    assert len({ex.id for ex in examples}) == len(examples)
    for article in data["data"]:
        assert article["title"] + ".rst.txt" in data["corpus"]["files"]  # questions name their document
        for paragraph in article["paragraphs"]:
            for qa in paragraph["qas"]:
                assert qa["is_impossible"] == (not qa["answers"])
                for answer in qa["answers"]:
                    start = answer["answer_start"]
                    assert paragraph["context"][start : start + len(answer["text"])] == answer["text"]


def test_russian_entities_are_whole_words_of_xquad_ru_passages():
    root = Path(__file__).resolve().parents[1]
    data = json.loads((root / "evals" / "russian-ner" / "entities.json").read_text())
    articles = json.loads((root.parent / "shared" / "data" / "xquad" / "xquad.ru.json").read_text())["data"]
    assert len(data["items"]) >= 20 and sum(len(i["entities"]) for i in data["items"]) >= 50
    for item in data["items"]:
        context = articles[item["article"]]["paragraphs"][item["paragraph"]]["context"]
        text = context[: item["length"]]
        assert item["length"] <= len(context) and text.rstrip()[-1] in ".!?"
        for start, end, label in item["entities"]:
            name = text[start:end]
            assert label in data["labels"] and name == name.strip() and name[0].isupper()
            assert (start == 0 or not text[start - 1].isalnum()) and (end == len(text) or not text[end].isalnum())


def test_mixed_xquad_is_parallel_to_xquad_and_half_russian(tmp_path):
    import subprocess
    import sys

    from search.evaluation import squad_collection
    from search.language import script

    root = Path(__file__).resolve().parents[1]
    xquad = root.parent / "shared" / "data" / "xquad"
    subprocess.run([sys.executable, root / "evals" / "mixed-xquad" / "build.py", xquad, tmp_path / "mixed.json"], check=True)
    english = squad_collection(xquad / "xquad.en.json", tmp_path / "mixed.json")
    assert len(english.documents) == 240 and len(english.queries) == 1190
    scripts = {doc: script(text) for doc, text in english.documents.items()}
    assert {doc for doc, written in scripts.items() if written == "other"} == {d for d in scripts if int(d.split("-")[0]) % 2}
