import json
from pathlib import Path

import pytest
from safetensors.torch import load_file


def test_index_query_stats_rm(run, corpus, tiny_model):
    out = run("index", corpus, "--model", tiny_model).output
    assert "4 added" in out and "0 skipped" in out and "5 documents" in out
    assert "4 unchanged" in run("index", corpus).output

    hits = json.loads(run("query", "moon landed", "--mode", "lexical", "--json").output)
    assert hits[0]["path"].endswith("rows.jsonl#m1") and hits[0]["rank"] == 1
    assert {"score", "text", "start", "end", "title", "metadata"} <= set(hits[0])

    text = run("query", "moon landed", "-k", "1").output
    assert text.startswith("1. ") and "moon" in text

    filtered = json.loads(run("query", "the", "--json", "--filter", "topic=earth").output)
    assert [h["path"].rsplit("#")[1] for h in filtered] == ["m2"]

    stats = json.loads(run("stats", "--json").output)
    assert stats["documents"] == 5 and stats["vectors"] == stats["passages"]
    assert "Passages:" in run("stats").output

    assert "Deleted 2 documents" in run("rm", corpus / "rows.jsonl").output
    assert json.loads(run("stats", "--json").output)["documents"] == 3


def test_index_reports_skipped_files(run, corpus, tiny_model):
    (corpus / "empty.md").write_text("")
    result = run("index", corpus, "--model", tiny_model, "--json")
    report = json.loads(result.output)
    assert report["added"] == 4
    assert [s["path"].rsplit("/", 1)[1] for s in report["skipped"]] == ["empty.md"]


def test_clear_errors(run, corpus, tiny_model, tmp_path):
    result = run("query", "anything", ok=False)
    assert result.exit_code == 1 and "No index at" in result.output and "Traceback" not in result.output
    result = run("index", tmp_path / "missing", "--model", tiny_model, ok=False)
    assert "No such file or folder" in result.output
    run("index", corpus, "--model", tiny_model)
    result = run("query", "x", "--filter", "novalue", ok=False)
    assert "FIELD=VALUE" in result.output
    result = run("index", corpus, "--model", "all-MiniLM-L6-v2", ok=False)
    assert "built with" in result.output


def test_empty_corpus_and_empty_index(run, tmp_path, tiny_model):
    (tmp_path / "empty").mkdir()
    result = run("index", tmp_path / "empty", "--model", tiny_model)
    assert "No supported files found" in result.output and "0 documents" in result.output
    assert run("query", "anything").output.strip() == "No results."


def test_truncated_database_is_a_clear_error(run, corpus, tiny_model, tmp_path):
    run("index", corpus, "--model", tiny_model)
    db = tmp_path / "ix" / "index.db"
    for extra in ("index.db-wal", "index.db-shm"):
        (tmp_path / "ix" / extra).unlink(missing_ok=True)
    db.write_bytes(db.read_bytes()[:1000])
    result = run("stats", ok=False)
    assert result.exit_code == 1 and "damaged" in result.output and "Traceback" not in result.output


def test_repair(run, corpus, tiny_model, tmp_path):
    run("index", corpus, "--model", tiny_model)
    (tmp_path / "ix" / "vectors.faiss").write_bytes(b"garbage")
    result = run("query", "moon", ok=False)
    assert "--repair" in result.output
    assert "5 vectors rebuilt" in run("index", "--repair").output
    assert "moon" in run("query", "moon", "-k", "1").output


def test_similarity(run, tiny_model):
    same = float(run("similarity", "the cat sat", "the cat sat", "--model", tiny_model).output)
    other = json.loads(run("similarity", "the cat sat", "water plant energy", "--model", tiny_model, "--json").output)
    assert same == pytest.approx(1.0, abs=1e-4) and -1.0 <= other["similarity"] <= 1.0


@pytest.mark.integration
def test_similarity_with_minilm(run):
    close = json.loads(run("similarity", "A man is eating food.", "A man is eating a piece of bread.", "--json").output)
    far = json.loads(run("similarity", "A man is eating food.", "The girl is carrying a baby.", "--json").output)
    assert close["similarity"] > 0.6 > 0.3 > far["similarity"]


def test_eval_retrieval_on_a_beir_folder(run, tmp_path, tiny_model):
    folder = tmp_path / "mini-collection-of-a-long-name"
    (folder / "qrels").mkdir(parents=True)
    (folder / "corpus.jsonl").write_text(
        '{"_id": "d1", "title": "", "text": "the cat sat on the mat"}\n'
        '{"_id": "d2", "title": "", "text": "water and sun light for a plant"}\n'
    )
    (folder / "queries.jsonl").write_text('{"_id": "q1", "text": "cat mat"}\n{"_id": "q2", "text": "plant water"}\n')
    (folder / "qrels" / "test.tsv").write_text("query-id\tcorpus-id\tscore\nq1\td1\t1\nq2\td2\t1\n")
    rows = json.loads(run("eval", "retrieval", folder, "--model", tiny_model, "--mode", "lexical", "--json").output)
    assert rows == [{"collection": folder.name, "mode": "lexical", "ndcg@10": 1.0, "recall@1": 1.0, "recall@5": 1.0,
                     "recall@100": 1.0, "map": 1.0,
                     "queries": 2, "ms_per_query": rows[0]["ms_per_query"]}]
    table = run("eval", "retrieval", folder, "--model", tiny_model, "--mode", "lexical").output
    assert table.splitlines()[0].split()[:3] == ["collection", "mode", "nDCG@10"]
    assert table.splitlines()[1].split()[:3] == [folder.name, "lexical", "1.000"]  # a long name keeps its column


@pytest.mark.integration
def test_demo_corpus_answers_the_readme_question(run):
    out = run("index").output
    assert "0 skipped" in out
    hits = json.loads(run("query", "When was BERT published?", "--json", "-k", "3").output)
    assert hits[0]["path"].endswith("index_data/nlp/bert.md")
    pdf = json.loads(run("query", "Cranfield experiments Cleverdon", "--json", "-k", "1").output)
    assert pdf[0]["path"].endswith("information-retrieval.pdf") and pdf[0]["page"] == 1
    dense = json.loads(run("query", "first people on the moon", "--mode", "dense", "--json", "-k", "1").output)
    assert dense[0]["path"].endswith("apollo-11.md")


def test_files_of_other_types_are_counted_and_listed_with_verbose(run, corpus, tiny_model):
    (corpus / "logo.svg").write_text("<svg/>")
    (corpus / "sub" / "app.js").write_text("var x = 1;")
    out = run("index", corpus, "--model", tiny_model).output
    assert "2 other files ignored" in out and "app.js" not in out
    report = json.loads(run("index", corpus, "--model", tiny_model, "--json").output)
    assert sorted(p.rsplit("/", 1)[1] for p in report["ignored"]) == ["app.js", "logo.svg"]
    listed = run("index", corpus, "--model", tiny_model, "--verbose").output
    assert "Ignored" in listed and "logo.svg" in listed and "app.js" in listed


def test_the_demo_corpus_goes_only_into_a_new_or_demo_index(run, corpus, tiny_model, tmp_path):
    demo = ["--index", tmp_path / "demo", "--model", tiny_model]
    assert "added" in run("index", *demo).output
    assert "0 added" in run("index", *demo).output  # the demo's own index: unchanged, no error
    run("index", corpus, "--model", tiny_model)
    before = json.loads(run("stats", "--json").output)["documents"]
    mixed = run("index", ok=False)
    assert mixed.exit_code == 1 and "holds your own documents" in mixed.output
    assert json.loads(run("stats", "--json").output)["documents"] == before


def test_snippet_shows_the_matching_part_with_terms_highlighted():
    import click

    from search.cli.searching import snippet

    text = "filler words here. " * 100 + "The Hawking radiation of black holes."
    shown = click.unstyle(snippet(text, "what is Hawking radiation?", width=200))
    assert shown.startswith("...") and "Hawking radiation" in shown and len(shown) <= 210
    assert click.style("Hawking", bold=True, fg="red") in snippet(text, "hawking")
    assert snippet("short text", "the") == "short text"


def test_ask_with_a_reader(run, corpus, tiny_model, tiny_qa):
    run("index", corpus, "--model", tiny_model)
    found = json.loads(run("ask", "when did apollo land on the moon", "--reader", tiny_qa, "--answers", "2", "--json").output)
    assert 1 <= len(found) <= 2
    for f in found:
        assert {"text", "score", "path", "start", "end", "sentence", "page"} <= set(f)
        assert f["sentence"][f["sentence_offset"]:].startswith(f["text"])
    text = run("ask", "when did apollo land", "--reader", tiny_qa, "--precision", "int8").output
    assert "confidence" in text and "characters" in text


def test_ask_without_a_reader_model(run, corpus, tiny_model, tmp_path, monkeypatch):
    from search import reader as reader_module

    monkeypatch.setattr(reader_module, "DEFAULT_READER", tmp_path / "none")
    run("index", corpus, "--model", tiny_model)
    result = run("ask", "anything", ok=False)
    assert result.exit_code == 1 and "search train reader" in result.output


def test_eval_qa_and_train_reader(run, tmp_path, tiny_model, tiny_qa):
    from test_squad import SQUAD

    data = tmp_path / "mini.json"
    data.write_text(json.dumps(SQUAD))
    rows = json.loads(run("eval", "qa", "--data", data, "--reader", tiny_qa, "--json").output)
    assert rows[0]["mode"] == "reader" and rows[0]["questions"] == 3 and 0 <= rows[0]["f1"] <= 100
    sliced = json.loads(run("eval", "qa", "--data", data, "--reader", tiny_qa, "--start", 1, "--limit", 1, "--json").output)
    assert sliced[0]["questions"] == 1
    out = run("train", "reader", "--data", data, "--output", tmp_path / "run", "--base-model", tiny_model,
              "--epochs", "1", "--batch-size", "2", "--max-length", "48", "--stride", "16", "--dev", data,
              "--seed", "5", "--warmup", "0.5", "--train-embeddings").output
    assert "Stopped at step 2; best dev f1 " in out and f"(the end of the schedule: {tmp_path / 'run' / 'last'})" in out
    recipe = json.loads((tmp_path / "run" / "best" / "finetuned.json").read_text())["recipe"]
    assert (recipe["seed"], recipe["warmup"], recipe["freeze_word_embeddings"]) == (5, 0.5, False)
    saved = load_file(str(tmp_path / "run" / "best" / "delta.safetensors"))
    assert 0 < len(saved["bert.embeddings.word_embeddings.weight.rows"]) < 100  # the words of the data


@pytest.mark.integration
def test_eval_qa_open_mode_indexes_the_paragraphs(run, tmp_path, tiny_qa):
    from test_squad import SQUAD

    data = tmp_path / "mini.json"
    data.write_text(json.dumps(SQUAD))
    rows = json.loads(run("eval", "qa", "--data", data, "--reader", tiny_qa, "--mode", "open",
                          "--cache", tmp_path / "cache", "--json").output)
    assert rows[0]["mode"] == "open" and rows[0]["questions"] == 3
    assert json.loads(run("stats", "--json", "--index", tmp_path / "cache" / "paragraphs").output)["documents"] == 2


def test_enrichment_commands(run, corpus, tiny_model, tiny_ner, tiny_sentiment):
    out = run("index", corpus, "--model", tiny_model, "--enrich", f"ner:{tiny_ner},sentiment:{tiny_sentiment}").output
    assert "5 documents" in out
    counts = json.loads(run("entities", "--json", "--top", "5").output)
    assert len(counts) <= 5 and all({"text", "label", "mentions", "documents"} <= set(c) for c in counts)
    labels = {h["passage_id"] for h in json.loads(run("query", "the", "-k", "20", "--json", "--sentiment", "positive").output)}
    negative = {h["passage_id"] for h in json.loads(run("query", "the", "-k", "20", "--json", "--sentiment", "negative").output)}
    assert not labels & negative and len(labels | negative) == 5
    assert json.loads(run("query", "the", "--json", "--entity", "ORG=nobody-like-this").output) == []
    result = run("query", "the", "--label", "novalue", ok=False)
    assert "TASK=LABEL" in result.output
    assert "Enriched 0" in run("enrich").output


def test_ner_and_sentiment_on_a_text(run, tiny_ner, tiny_sentiment):
    entities = json.loads(run("ner", "the cat sat in the park", "--model", tiny_ner, "--json").output)
    assert all("the cat sat in the park"[e["start"]:e["end"]] == e["text"] for e in entities)
    result = json.loads(run("sentiment", "the cat sat", "--model", tiny_sentiment, "--json").output)
    assert result["label"] in {"negative", "positive"}
    assert run("sentiment", "the cat sat", "--model", tiny_sentiment).output.startswith(result["label"])


def test_enrich_without_tasks_and_missing_default_models(run, corpus, tiny_model, monkeypatch, tmp_path):
    from search import tagging

    run("index", corpus, "--model", tiny_model)
    assert "no enrichment tasks" in run("enrich", ok=False).output
    monkeypatch.setattr(tagging, "DEFAULT_NER", tmp_path / "no-such-model")
    result = run("ner", "Elon Musk", ok=False)
    assert result.exit_code == 1 and "search train ner" in result.output


def test_train_and_eval_ner_and_sentiment(run, tmp_path, tiny_model):
    conll = tmp_path / "x.conll"
    conll.write_text("the NN O I-PER\ncat NN O I-PER\nsat VB O O\n\n" * 4)
    out = run("train", "ner", "--data", conll, "--dev", conll, "--output", tmp_path / "ner", "--base-model", tiny_model,
              "--epochs", "1", "--batch-size", "2", "--max-length", "32").output
    assert "Stopped at step 1" in out  # one document: its 4 sentences pack into one 32-token run
    scores = json.loads(run("eval", "ner", "--data", conll, "--model", tmp_path / "ner" / "best", "--json").output)
    assert scores["entities"] == 4 and 0 <= scores["f1"] <= 100
    int8 = json.loads(run("eval", "ner", "--data", conll, "--model", tmp_path / "ner" / "best", "--precision", "int8",
                          "--json").output)
    assert int8["entities"] == 4 and 0 <= int8["f1"] <= 100 and int8["dtype"] == "int8 (onnx)"
    tsv = tmp_path / "x.tsv"
    tsv.write_text("sentence\tlabel\nthe cat sat\t1\nthe dog ran\t0\n")
    run("train", "sentiment", "--data", tsv, "--output", tmp_path / "s", "--base-model", tiny_model, "--epochs", "1")
    scores = json.loads(run("eval", "sentiment", "--data", tsv, "--model", tmp_path / "s" / "best", "--json").output)
    assert scores["examples"] == 2 and scores["accuracy"] in (0.0, 50.0, 100.0)


def test_enrich_with_a_custom_classifier(run, corpus, tiny_model, tiny_sentiment, tmp_path):
    import shutil

    topics = tmp_path / "topics"
    shutil.copytree(tiny_sentiment, topics)
    run("index", corpus, "--model", tiny_model, "--enrich", f"classify:{topics}")
    pos = json.loads(run("query", "the", "-k", "20", "--json", "--label", "topics=positive").output)
    neg = json.loads(run("query", "the", "-k", "20", "--json", "--label", "topics=negative").output)
    assert len(pos) + len(neg) == 5
    unknown = run("query", "the", "--json", "--label", "other=positive", ok=False)
    assert unknown.exit_code == 1 and "no other enrichment" in unknown.output


def test_shell_completion_lists_commands_and_options():
    from click.testing import CliRunner

    from search.cli import cli

    def complete(*words: str) -> list[str]:  # the last word is the one being typed
        env = {"_SEARCH_COMPLETE": "bash_complete", "COMP_WORDS": " ".join(words), "COMP_CWORD": str(len(words) - 1)}
        result = CliRunner().invoke(cli, [], prog_name="search", env=env)
        return [line.split(",", 1)[1] for line in result.output.splitlines()]

    assert complete("search", "qu") == ["query"]
    assert complete("search", "query", "--mo") == ["--mode"]
    assert complete("search", "query", "--mode", "") == ["hybrid", "dense", "lexical"]


def test_readers_by_name_and_the_default_follows_the_index_encoder(run, corpus, tiny_model, tiny_qa, tmp_path,
                                                                  monkeypatch):
    from search import Index
    from search import reader as reader_module
    from search.errors import ModelNotFound
    from search.reader import Reader

    monkeypatch.setattr(reader_module, "MULTILINGUAL_READER", tmp_path / "absent")
    with pytest.raises(ModelNotFound, match="search train reader"):
        Reader("multilingual").path
    monkeypatch.setattr(reader_module, "MULTILINGUAL_READER", Path(tiny_qa))
    assert Reader("Multilingual").model_name == tiny_qa and Reader("english").model_name == Reader().model_name
    assert Reader.for_encoder("multilingual-e5-small").model_name == tiny_qa
    assert Reader.for_encoder("intfloat/multilingual-e5-small").languages is None  # reads any language
    assert Reader.for_encoder(tiny_model).model_name == str(reader_module.DEFAULT_READER)

    run("index", corpus, "--model", tiny_model)
    with Index.open(tmp_path / "ix") as index:
        assert index.default_reader().model_name == str(reader_module.DEFAULT_READER)
    found = json.loads(run("ask", "when did apollo land", "--reader", "multilingual", "--json").output)
    assert found == json.loads(run("ask", "when did apollo land", "--reader", tiny_qa, "--json").output)


def test_an_index_of_the_multilingual_encoder_asks_the_multilingual_reader(run, corpus, tiny_qa, monkeypatch):
    from search import reader as reader_module

    monkeypatch.setattr(reader_module, "MULTILINGUAL_READER", Path(tiny_qa))
    run("index", corpus, "--model", "multilingual")
    question = ("ask", "when did apollo land", "--threshold", "off", "--json")
    assert json.loads(run(*question).output) == json.loads(run(*question, "--reader", tiny_qa).output)
    monkeypatch.setattr(reader_module, "MULTILINGUAL_READER", Path(tiny_qa).parent / "absent")
    assert "search train reader" in run(*question, ok=False).output
