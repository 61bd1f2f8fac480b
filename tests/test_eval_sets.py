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
