"""The models this project trains and ships, on the seed notebook's examples."""

import json

import pytest
from click.testing import CliRunner

from search.cli import cli

pytestmark = pytest.mark.integration


def test_reader_answers_the_seed_example():
    from search import Reader

    context = "BERT was published in 2018 by researchers at Google AI Language."
    best = Reader().read("When was BERT published?", [context])[0]
    assert best.text == "2018" and context[best.start : best.end] == "2018"


def test_ner_finds_whole_entities():
    from search import EntityTagger

    (entities,) = EntityTagger().tag(["Elon Musk founded Tesla in California."])
    assert [(e.text, e.label, e.start) for e in entities] == [("Elon Musk", "PER", 0), ("Tesla", "ORG", 18),
                                                                ("California", "LOC", 27)]


def test_sentiment_of_the_seed_examples():
    from search import TextClassifier

    labels = TextClassifier().classify(["This product is amazing! I love it.", "This was a waste of money, I hate it."])
    assert [label.label for label in labels] == ["positive", "negative"]


def test_ask_the_demo_corpus(tmp_path):
    runner = CliRunner()
    env = {"SEARCH_INDEX": str(tmp_path / "ix")}
    assert runner.invoke(cli, ["index", "--enrich", "ner,sentiment"], env=env).exit_code == 0
    result = runner.invoke(cli, ["ask", "When was BERT published?", "--json"], env=env)
    (answer,) = json.loads(result.output)
    assert "2018" in answer["text"] and answer["path"].endswith("bert.md")
    hits = json.loads(runner.invoke(cli, ["query", "space flight", "--entity", "PER=Neil Armstrong", "--json"], env=env).output)
    assert [h["path"].rsplit("/", 1)[1] for h in hits] == ["apollo-11.md"]


MOSCOW = ("Москва — столица России. Первое упоминание о Москве в летописях относится к 1147 году. Основателем "
          "Москвы традиционно считается Юрий Долгорукий.\n\nМосковский метрополитен открылся 15 мая 1935 года.")


@pytest.mark.parametrize("question, expected", [("Кто основал Москву?", "Юрий Долгорукий"),
                                                ("Who founded Moscow?", "Юрий Долгорукий"),
                                                ("Когда открылось московское метро?", "15 мая 1935")])
def test_multilingual_reader_answers_russian_and_english_questions_on_russian_text(question, expected):
    from search import Reader

    best = Reader("multilingual").read(question, [MOSCOW], threshold=None)[0]
    assert best.text.startswith(expected) and MOSCOW[best.start : best.end] == best.text


def test_ask_an_index_of_russian_documents_in_russian(tmp_path):
    (tmp_path / "docs").mkdir()
    (tmp_path / "docs" / "moskva.txt").write_text(MOSCOW, encoding="utf-8")
    runner = CliRunner()
    env = {"SEARCH_INDEX": str(tmp_path / "ix")}
    assert runner.invoke(cli, ["index", str(tmp_path / "docs"), "--model", "multilingual"], env=env).exit_code == 0
    (answer,) = json.loads(runner.invoke(cli, ["ask", "Кто основал Москву?", "--answers", "1", "--json"], env=env).output)
    assert answer["text"] == "Юрий Долгорукий" and answer["path"].endswith("moskva.txt")
