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
