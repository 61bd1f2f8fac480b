"""Passages know their language, and the English models read only what could be English."""

import json
from dataclasses import replace
from pathlib import Path

import pytest

from search import Index
from search.enrich import EntityEnricher
from search.filters import EntityFilter
from search.language import SAMPLE_CHARS, _classify, _identifier, detect_language, detect_languages, script
from search.retrieval import minmax, rrf_fusion, weighted_fusion

SHARED = Path(__file__).resolve().parents[2] / "shared" / "data"


@pytest.mark.parametrize("text, language", [
    ("Москва — столица России, крупнейший город страны.", "ru"),
    ("Кто основал Москву?", "ru"),  # short, but not in the Latin script: named anyway
    ("Der Hund läuft im Park und sieht die Katze.", "de"),
    ("Everest is a mountain first climbed in 1953.", "en"),
    ("The cat sat.", ""),  # too short to be sure in the Latin script: English models still read it
    ("def foo(x): return bar(y)", ""),
    ("", ""),
])
def test_detect_language(text, language):
    assert detect_language(text) == language


def texts_in_many_languages() -> list[str]:
    """Paragraphs of XQuAD (English, Russian), cut at many lengths, sentences of other languages
    and odd strings."""
    texts = ["", " ", "42", "!!", "x", "ÅÅÅÅ", "def f(x):\n    return x ** 2", "SHOUTING IN CAPITALS IS LOWERED",
             "\ud800 a lone surrogate", "Кто основал Москву?", "中文文本", "e\u0301 combining",
             "Der Hund läuft im Park und sieht die Katze.", "Le chat dort sur le canapé depuis ce matin.",
             "El perro corre por el parque y ve al gato.", "Il gatto dorme sul divano da stamattina."]
    for path in sorted((SHARED / "xquad").glob("xquad.*.json")):
        paragraphs = [p["context"] for a in json.loads(path.read_text())["data"] for p in a["paragraphs"]][:40]
        texts += [p[: 5 * (i + 1)] for i, p in enumerate(paragraphs)] + paragraphs
    return texts


def test_detecting_many_texts_at_once_is_what_py3langid_says_of_each():
    texts = texts_in_many_languages()
    assert len(texts) > 100
    identifier = _identifier()
    ours = _classify([t[:SAMPLE_CHARS] for t in texts])
    for text, (code, probability) in zip(texts, ours):
        expected_code, expected = identifier.classify(text[:SAMPLE_CHARS])
        assert code == expected_code and probability == pytest.approx(expected, abs=1e-4), text
    assert detect_languages(texts) == [detect_language(t) for t in texts]
    assert {"en", "ru", "de", "fr", "it"} <= set(detect_languages(texts))


def test_english_models_skip_passages_in_other_languages(tmp_path, tiny_model, tiny_ner, monkeypatch):
    monkeypatch.setattr(EntityEnricher, "languages", property(lambda self: frozenset({"en"})))
    docs = tmp_path / "docs"
    docs.mkdir()
    (docs / "en.txt").write_text("Everest is a mountain first climbed in 1953 by Hillary.")
    (docs / "ru.txt").write_text("Москва — столица России, крупнейший город страны.")
    with Index.create(tmp_path / "ix", model=tiny_model) as index:
        index.add_paths([docs], enrich=f"ner:{tiny_ner}")
        rows = dict(index.store.conn.execute(
            "SELECT d.path, p.language FROM passages p JOIN documents d ON d.id = p.document_id"))
        assert {path.rsplit("/", 1)[1]: lang for path, lang in rows.items()} == {"en.txt": "en", "ru.txt": "ru"}
        tagged = {r[0] for r in index.store.conn.execute(
            "SELECT DISTINCT d.path FROM entities e JOIN documents d ON d.id = e.document_id")}
        assert all(path.endswith("en.txt") for path in tagged)
        assert index.store.db["enriched"].count == 2  # both seen: the next `search enrich` does not retry


def test_the_cli_tags_russian_with_natasha_and_says_what_no_shipped_model_reads(run):
    result = run("ner", "Владимир Путин выступил в Москве.", "--json")
    assert [(e["label"], e["text"], e["start"], e["score"]) for e in json.loads(result.output)] == [
        ("PER", "Владимир Путин", 0, None), ("LOC", "Москве", 26, None)]
    assert "PER   Владимир Путин  (characters 0-14)" in run("ner", "Владимир Путин выступил в Москве.").output
    result = run("ner", "Der Hund läuft im Park und sieht die Katze.", ok=False)
    assert result.exit_code == 1 and "looks like 'de'" in result.output and "English and Russian only" in result.output
    result = run("sentiment", "Это был прекрасный фильм, я в восторге.", ok=False)
    assert "looks like 'ru'" in result.output and "English only" in result.output


def test_russian_passages_get_their_entities_from_natasha(tmp_path, tiny_model, monkeypatch):
    from search.tagging import Entity

    class English:  # stands in for the shipped English model
        def tag(self, texts):
            return [[Entity("Hillary", "PER", t.index("Hillary"), t.index("Hillary") + 7, 0.9)] for t in texts]

    monkeypatch.setattr(EntityEnricher, "runner", property(lambda self: English()))
    docs = tmp_path / "docs"
    docs.mkdir()
    (docs / "en.txt").write_text("Everest is a mountain first climbed in 1953 by Hillary.")
    (docs / "ru.txt").write_text("Москва — столица России, крупнейший город страны. Её основал Юрий Долгорукий.")
    with Index.create(tmp_path / "ix", model=tiny_model) as index:
        index.add_paths([docs], enrich="ner")
        found = {(path.rsplit("/", 1)[1], label, text, start) for path, label, text, start in index.store.conn.execute(
            "SELECT d.path, e.label, e.text, e.start_char FROM entities e JOIN documents d ON d.id = e.document_id")}
    russian = "Москва — столица России, крупнейший город страны. Её основал Юрий Долгорукий."
    english = "Everest is a mountain first climbed in 1953 by Hillary."
    assert found == {("en.txt", "PER", "Hillary", english.index("Hillary")), ("ru.txt", "LOC", "Москва", 0),
                     ("ru.txt", "LOC", "России", russian.index("России")),
                     ("ru.txt", "PER", "Юрий Долгорукий", russian.index("Юрий"))}


def test_hits_carry_their_language_and_filter_on_it(tmp_path, tiny_model):
    with Index.create(tmp_path / "ix", model=tiny_model) as index:
        index.add_texts(["Москва — столица России, крупнейший город страны.",
                         "Everest is a mountain first climbed in 1953 by Hillary."], ids=["ru", "en"])
        assert {h.path: h.language for h in index.search("mountain", k=5, mode="dense")} == {"ru": "ru", "en": "en"}
        assert [h.path for h in index.search("mountain", k=5, mode="dense", filters=["language=ru"])] == ["ru"]
        assert [h.path for h in index.search("mountain", k=5, mode="dense", filters={"language": "EN"})] == ["en"]


@pytest.mark.parametrize("text, written_in", [
    ("Who founded Moscow?", "latin"), ("Кто основал Москву?", "other"), ("Wer gründete Moskau?", "latin"),
    ("Москва (Moscow) — столица", "other"), ("東京は日本の首都です", "other"), ("1953 — 2024", ""), ("", ""),
])
def test_script(text, written_in):
    assert script(text) == written_in


def test_bm25_counts_in_hybrid_search_only_for_passages_in_the_query_script(tmp_path, tiny_model):
    with Index.create(tmp_path / "ix", model=tiny_model) as index:
        index.add_texts(["Эверест впервые покорили в 1953 году Хиллари (Hillary) и Тенцинг.",
                         "Everest was first climbed in 1953 by Hillary and Tenzing.",
                         "1953: 8848."], ids=["ru", "en", "no letters"])
        lexical = {h.path: h.lexical_score for h in index.search("Hillary 1953", k=5, mode="lexical")}
        assert set(lexical) == {"ru", "en", "no letters"}  # lexical search alone is as it was
        hybrid = {h.path: h.lexical_score for h in index.search("Hillary 1953", k=5)}
        assert hybrid["ru"] is None and hybrid["en"] == lexical["en"] and hybrid["no letters"] == lexical["no letters"]
        russian = {h.path: h.lexical_score for h in index.search("Хиллари 1953", k=5)}
        assert russian["en"] is None and russian["ru"] is not None
        assert {h.path for h in index.search("1953", k=5) if h.lexical_score is not None} == set(lexical)


def test_passages_in_another_script_rank_by_their_dense_score_alone(tmp_path, tiny_model):
    with Index.create(tmp_path / "ix", model=tiny_model) as index:
        index.add_texts(["Эверест впервые покорили в 1953 году Хиллари (Hillary) и Тенцинг.",
                         "Everest was first climbed in 1953 by Hillary and Tenzing.",
                         "Mount Everest is in the Himalaya.", "K2 is in the Karakoram.", "0 0 0 0 0 0 0 0"],
                        ids=["ru", "en", "everest", "k2", "zeros"])
        hits = {h.path: h for h in index.search("Hillary 1953 Everest", k=10)}
        dense = {path: h.dense_score for path, h in hits.items()}
        lexical = {path: h.lexical_score for path, h in hits.items() if h.lexical_score is not None}
        assert set(hits) == {"ru", "en", "everest", "k2", "zeros"} and set(lexical) == {"en", "everest"}
        d, lex = minmax(dense), minmax(lexical)
        assert 0 < d["ru"] < 1 and hits["ru"].score == pytest.approx(d["ru"])
        for path in ("en", "everest", "k2", "zeros"):
            assert hits[path].score == pytest.approx(0.7 * d[path] + 0.3 * lex.get(path, 0.0))


def test_fusions_rank_unjudged_passages_by_their_dense_score():
    dense, lexical = {1: 0.9, 2: 0.5, 3: 0.1}, {2: 4.0, 3: 2.0}
    assert weighted_fusion(dense, lexical, 0.7) == pytest.approx({1: 0.7, 2: 0.65, 3: 0.0})
    assert weighted_fusion(dense, lexical, 0.7, unjudged=frozenset({1})) == pytest.approx({1: 1.0, 2: 0.65, 3: 0.0})
    assert rrf_fusion(dense, lexical, 60, unjudged=frozenset({1})) == pytest.approx({1: 2 / 61, 2: 1 / 62 + 1 / 61, 3: 1 / 63 + 1 / 62})


@pytest.mark.parametrize("written, as_filtered", [
    ("в Москве", "в Москва"), ("Путина", "путин"), ("Владимиром Путиным", "Владимир Путин"),
    ("Российской Федерации", "Российская Федерация"), ("Юрия Долгорукого", "ЮРИЙ ДОЛГОРУКИЙ"),
    ("Соединённых Штатах", "Соединенные Штаты"), ("Google", "GOOGLE"), ("Straße", "STRASSE"),
])
def test_every_form_of_a_name_has_one_entity_key(written, as_filtered):
    from search.entity_keys import entity_key

    assert entity_key(written) == entity_key(as_filtered)


def test_entity_filters_find_every_case_of_a_russian_name_in_any_letter_case(tmp_path, tiny_model):
    texts = {"moscow": "Юрий Долгорукий основал Москву в 1147 году.",
             "visit": "Владимир Путин выступил в Москве.", "kazan": "Казань — столица Татарстана."}
    with Index.create(tmp_path / "ix", model=tiny_model) as index:
        index.add_texts(list(texts.values()), ids=list(texts))
        index.enrich("ner")
        found = lambda text: sorted(h.path for h in index.search("город", k=5, mode="dense", filters=[EntityFilter(None, text)]))
        assert found("москва") == found("Москве") == ["moscow", "visit"]
        assert found("ВЛАДИМИРА ПУТИНА") == ["visit"] and found("казань") == ["kazan"]
        moscow = [(e["text"], e["mentions"]) for e in index.entities(label="LOC") if e["text"].startswith("Москв")]
        assert moscow == [("Москве", 2)]  # one entity; of its forms, each written once, the first in order


def test_indexes_from_before_entity_keys_get_them(tmp_path, tiny_model):
    with Index.create(tmp_path / "ix", model=tiny_model) as index:
        index.add_texts(["Владимир Путин выступил в Москве."], ids=["visit"])
        index.enrich("ner")
        with index.store.conn:  # as an index made before entities had keys holds them
            index.store.conn.execute("DROP INDEX idx_entities_key_label")
            index.store.conn.execute("ALTER TABLE entities DROP COLUMN key")
    with Index.open(tmp_path / "ix") as index:
        assert [h.path for h in index.search("x", k=5, mode="dense", filters=[EntityFilter("LOC", "москва")])] == ["visit"]


def test_the_shipped_reader_reads_english_passages_only(tmp_path, tiny_model):
    from search.reader import Reader, answers_from_hits

    class Recording(Reader):  # the shipped reader's languages, without running it
        def read(self, question, passages, **options):
            read.extend(passages)
            return []

    read = []
    english, russian = "Everest was first climbed in 1953 by Hillary.", "Москву основал Юрий Долгорукий в 1147 году."
    with Index.create(tmp_path / "ix", model=tiny_model) as index:
        index.add_texts([english, russian], ids=["en", "ru"])
        hits = index.search("climbed", k=2, mode="dense")
    reader = Recording()
    assert reader.languages == frozenset({"en"}) and Reader(str(tmp_path)).languages is None
    answers_from_hits(reader, "Who first climbed Everest, and in which year?", hits)
    assert read == [english]
    assert reader.unread_language("Who first climbed Everest, and in which year?", hits) is None
    assert "passages found are in Russian" in reader.unread_language("Who first climbed Everest?", [h for h in hits if h.path == "ru"])
    read.clear()
    answers_from_hits(reader, "What does this code print?", [replace(h, code=True) for h in hits])
    assert sorted(read) == sorted([english, russian])  # code is read whatever language it was taken for
    read.clear()
    assert answers_from_hits(reader, "Кто основал Москву?", hits) == [] and read == []
    assert "question looks like Russian; the shipped reader reads English only" in reader.unread_language("Кто основал Москву?")


def test_ask_says_when_the_reader_does_not_read_the_question(run, tmp_path, tiny_model):
    docs = tmp_path / "docs"
    docs.mkdir()
    (docs / "ru.txt").write_text("Москву основал Юрий Долгорукий в 1147 году.")
    run("index", docs, "--model", tiny_model)
    result = run("ask", "Кто основал Москву?")
    assert "The question looks like Russian; the shipped reader reads English only" in result.output
    assert "The passages that come closest" in result.output
