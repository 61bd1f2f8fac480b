import sqlite3

import numpy as np
import pytest

from search import Index, IndexCorrupt, IndexNotFound, ModelMismatch
from search.index import VECTORS_NAME
from search.vectors import VectorIndex


@pytest.fixture
def index(tmp_path, tiny_model):
    with Index.create(tmp_path / "ix", model=tiny_model) as idx:
        yield idx


def _consistent(idx):
    ids = idx.store.passage_ids()
    return np.array_equal(np.sort(idx.vectors.ids()), ids)


def test_add_paths_and_search_all_modes(index, corpus):
    report = index.add_paths([corpus])
    assert (report.files, report.added, report.skipped) == (4, 4, [])
    assert index.stats()["documents"] == 5  # the .jsonl file holds two
    for mode in ("lexical", "dense", "hybrid"):
        hits = index.search("moon landed", k=3, mode=mode)
        assert hits and len(hits) <= 3
        for hit in hits:
            doc_text = index.store.db["documents"].get(hit.document_id)["text"]
            assert doc_text[hit.start : hit.end] == hit.text
    assert index.search("moon landed", mode="lexical")[0].path.endswith("rows.jsonl#m1")


def test_reindex_skips_unchanged_replaces_changed_and_prunes(index, corpus):
    index.add_paths([corpus])
    again = index.add_paths([corpus])
    assert (again.added, again.updated, again.unchanged, again.passages) == (0, 0, 4, 0)
    (corpus / "cat.txt").write_text("The dog sat in the park with the cat.")
    (corpus / "bert.md").unlink()
    changed = index.add_paths([corpus], prune=True)
    assert (changed.updated, changed.unchanged, changed.removed) == (1, 2, 1)
    paths = {row["path"] for row in index.store.db["documents"].rows}
    assert not any(p.endswith("bert.md") for p in paths)
    cat = next(r for r in index.store.db["documents"].rows if r["path"].endswith("cat.txt"))
    assert cat["text"].startswith("The dog sat")
    assert _consistent(index) and index.stats()["documents"] == 4


def test_bad_files_are_skipped_and_counted(index, corpus):
    (corpus / "empty.txt").write_text("")
    (corpus / "blob.txt").write_bytes(b"\x00\x01binary")
    report = index.add_paths([corpus])
    assert report.added == 4
    assert sorted(p.rsplit("/", 1)[1] for p, _ in report.skipped) == ["blob.txt", "empty.txt"]


def test_creating_an_index_is_atomic(tmp_path, tiny_model, monkeypatch):
    import os

    real_replace = os.replace

    class Killed(Exception):
        pass

    def replace(src, dst):
        if str(src).endswith(".creating"):
            raise Killed  # as if the process died just before the database took its name
        real_replace(src, dst)

    monkeypatch.setattr(os, "replace", replace)
    with pytest.raises(Killed):
        Index.create(tmp_path / "ix", model=tiny_model)
    with pytest.raises(IndexNotFound):
        Index.open(tmp_path / "ix")  # no half index that refuses to open: none at all
    monkeypatch.setattr(os, "replace", real_replace)
    with Index.open_or_create(tmp_path / "ix", model=tiny_model) as idx:  # the next run starts afresh
        idx.add_texts(["the cat sat"])
    assert [p.name for p in (tmp_path / "ix").iterdir() if "creating" in p.name] == []
    with Index.open(tmp_path / "ix") as again:
        assert again.stats()["documents"] == 1 and again.meta["model"]


def test_texts_repeated_in_one_call_behave_as_across_calls(index):
    report = index.add_texts(["same text", "same text", "", ""])
    assert (report.added, report.unchanged) == (2, 2) and index.stats()["documents"] == 2
    report = index.add_texts(["one", "two", "three"], ids=["x", "x", "y"])
    assert (report.added, report.updated) == (2, 1)
    assert [h.text for h in index.search("two", k=5, mode="lexical")] == ["two"]
    assert index.search("one", k=5, mode="lexical") == []  # the later text of id x won
    again = index.add_texts(["same text", "two"], ids=None)
    assert again.unchanged == 1 and again.added == 1  # "two" without an id is a new document


def test_add_texts_metadata_filters_and_delete(index):
    index.add_texts(
        ["the cat sat on the mat", "the dog ran in the park", "the cat ran in the park"],
        metadata=[{"kind": "cat", "year": 2020}, {"kind": "dog", "year": 2021}, {"kind": "cat", "year": 2021}],
        ids=["a", "b", "c"],
    )
    got = {h.path for h in index.search("park", k=10, mode="lexical", filters={"kind": "cat"})}
    assert got == {"c"}
    got = {h.path for h in index.search("the", k=10, mode="dense", filters=["year=2021"])}
    assert got == {"b", "c"}
    assert {h.path for h in index.search("cat", k=10, filters=["path=a"])} == {"a"}
    assert index.delete(["b"]) == 1
    assert {h.path for h in index.search("the", k=10, mode="dense")} == {"a", "c"}
    report = index.add_texts(["the cat sat on the mat"], ids=["a"])
    assert report.unchanged == 1
    assert _consistent(index)


def test_per_doc_keeps_the_best_passage_of_each_document(index):
    long_text = " ".join(f"The cat number {i} sat on the mat." for i in range(60))
    index.add_texts([long_text, "A dog sat in the park."], ids=["long", "short"])
    assert len(index.search("cat mat", k=10, mode="lexical")) > 2
    hits = index.search("cat mat", k=10, mode="lexical", per_doc=True)
    assert [h.path for h in hits] == ["long"]


def test_open_checks_model_and_missing_index(tmp_path, tiny_model, index):
    index.add_texts(["the cat sat"])
    index.close()
    with pytest.raises(IndexNotFound):
        Index.open(tmp_path / "elsewhere")
    with pytest.raises(ModelMismatch, match="built with"):
        Index.open(index.path, model="all-MiniLM-L6-v2")
    with Index.open(index.path, model=tiny_model) as again:
        assert again.stats()["passages"] == 1


def test_database_is_plain_sqlite(index, corpus):
    index.add_paths([corpus])
    conn = sqlite3.connect(index.path / "index.db")
    tables = {r[0] for r in conn.execute("SELECT name FROM sqlite_master WHERE type='table'")}
    assert {"documents", "passages", "passages_fts", "meta"} <= tables
    assert conn.execute("SELECT count(*) FROM passages_fts WHERE passages_fts MATCH 'moon'").fetchone()[0] == 1


def test_truncated_vector_file_is_a_clear_error_and_repair_fixes_it(index, corpus):
    index.add_paths([corpus])
    index.close()
    vectors = index.path / VECTORS_NAME
    vectors.write_bytes(vectors.read_bytes()[:100])
    with pytest.raises(IndexCorrupt, match="damaged"):
        Index.open(index.path)
    with Index.open(index.path, check=False) as broken:
        assert broken.repair() == 5
    with Index.open(index.path) as fixed:
        assert fixed.search("moon", mode="dense")


def test_mismatched_vectors_are_detected(index, corpus):
    index.add_paths([corpus])
    index.close()  # a vector file claiming the last commit but lacking its vectors
    _replace_vectors(index.path / VECTORS_NAME, VectorIndex(index.vectors.dimension, generation=index.vectors.generation))
    with pytest.raises(IndexCorrupt, match="repair"):
        Index.open(index.path)


def test_pending_vectors_left_by_a_killed_save_are_recovered(index, corpus):
    index.add_paths([corpus])
    live = index.path / VECTORS_NAME
    # as if killed after the SQLite commit but before the rename
    _replace_vectors(live, VectorIndex(index.vectors.dimension))
    index.vectors.write_pending(live)
    index.close()
    with Index.open(index.path) as again:
        assert len(again.vectors) == 5
    assert not VectorIndex.pending_path(live).exists()


def interrupt_encoding(index, monkeypatch, at_call: int):
    """Make the index's encoder raise KeyboardInterrupt at its ``at_call``-th call; return the real encode."""
    calls = {"n": 0}
    real = index.encoder.encode

    def interrupted(texts, **kw):
        calls["n"] += 1
        if calls["n"] == at_call:
            raise KeyboardInterrupt
        return real(texts, **kw)

    monkeypatch.setattr(index.encoder, "encode", interrupted)
    return real


def test_interrupt_rolls_back_to_last_checkpoint(index, corpus, monkeypatch):
    index.add_texts(["the first text stays"], ids=["keep"])
    index.writer.batch_passages, index.writer.checkpoint_seconds = 1, 1e9  # interrupted before any checkpoint
    interrupt_encoding(index, monkeypatch, at_call=2)
    with pytest.raises(KeyboardInterrupt):
        index.add_paths([corpus])
    assert index.stats()["documents"] == 1 and _consistent(index)
    index.close()
    with Index.open(index.path) as again:
        assert [h.path for h in again.search("first text", mode="dense")] == ["keep"]


def test_readers_and_a_second_writer_while_a_write_is_open(index, corpus, tiny_model, monkeypatch):
    from search import SearchError
    from search import store as store_module

    index.add_paths([corpus])
    index.writer.begin()
    index.writer.delete_documents([1])  # uncommitted
    monkeypatch.setattr(store_module, "BUSY_TIMEOUT_MS", 50)
    with Index.open(index.path) as reader:  # sees the last committed state
        assert reader.stats()["documents"] == 5
        with pytest.raises(SearchError, match="Another process is writing"):
            reader.add_texts(["the cat"], ids=["x"])
    index.writer.rollback()


def test_an_interrupted_file_keeps_its_committed_part_and_the_next_run_finishes_it(index, tmp_path, monkeypatch):
    rows = tmp_path / "rows.jsonl"
    rows.write_text("".join(f'{{"id": "r{i}", "text": "the cat number {i} sat"}}\n' for i in range(20)))
    index.writer.batch_passages, index.writer.checkpoint_seconds = 4, 0.0
    real = interrupt_encoding(index, monkeypatch, at_call=4)
    with pytest.raises(KeyboardInterrupt):
        index.add_paths([rows])
    stats = index.stats()
    assert stats["documents"] == stats["incomplete"] == 12 and _consistent(index)  # 3 batches of 4 committed
    assert len(index.search("cat number 5", k=20, mode="lexical")) == 12  # searchable meanwhile
    encoded = []
    monkeypatch.setattr(index.encoder, "encode", lambda texts, **kw: encoded.extend(texts) or real(texts, **kw))
    report = index.add_paths([rows])
    assert report.resumed == 1 and report.passages == len(encoded) == 8  # only what was missing
    stats = index.stats()
    assert stats["documents"] == 20 and stats["incomplete"] == 0 and _consistent(index)
    assert index.add_paths([rows]).unchanged == 1


def test_an_interrupted_long_document_is_finished_where_it_stopped(index, tmp_path, monkeypatch):
    long = tmp_path / "long.txt"
    long.write_text(" ".join(f"Sentence number {i} tells of the cat." for i in range(400)))
    index.writer.batch_passages, index.writer.checkpoint_seconds = 8, 0.0
    real = interrupt_encoding(index, monkeypatch, at_call=3)
    with pytest.raises(KeyboardInterrupt):
        index.add_paths([long])
    assert index.stats()["passages"] == 16 and index.stats()["incomplete"] == 1  # two batches of 8 passages kept
    monkeypatch.setattr(index.encoder, "encode", real)
    report = index.add_paths([long])
    assert report.resumed == 1 and index.stats()["incomplete"] == 0 and _consistent(index)
    with Index.create(tmp_path / "whole", model=index.meta["model"]) as whole:  # the same as one run
        whole.add_paths([long])
        assert whole.stats()["passages"] == index.stats()["passages"] == report.passages + 16
        spans = "SELECT ord, start_char, end_char, text FROM passages ORDER BY ord"
        assert list(whole.store.conn.execute(spans)) == list(index.store.conn.execute(spans))


def test_enrichment_is_stored_filterable_and_deleted_with_its_document(index, corpus, tiny_ner, tiny_sentiment):
    from search.enrich import EntityEnricher
    from search.filters import EntityFilter, LabelFilter
    from search.tagging import Entity

    index.add_paths([corpus], enrich=f"ner:{tiny_ner},sentiment:{tiny_sentiment}")
    db = index.store.db
    passages = db["passages"].count
    assert db["labels"].count == passages and db["enriched"].count == 2 * passages
    for e in db["entities"].rows:
        assert db["documents"].get(e["document_id"])["text"][e["start_char"] : e["end_char"]] == e["text"]

    # known entities and labels, to check the filters exactly
    rows = {r["path"].rsplit("/", 1)[-1]: r for r in db.query(
        "SELECT p.id, p.document_id, d.path FROM passages p JOIN documents d ON d.id = p.document_id")}
    bert, cat = rows["bert.md"], rows["cat.txt"]
    index.store.conn.execute("DELETE FROM entities")
    EntityEnricher().save(index.store.conn, [bert["id"]], [bert["document_id"]], [[Entity("Google", "ORG", 40, 46, 0.9)]])
    sentiment_of_cat = db["labels"].get((cat["id"], "sentiment"))["label"]
    index.store.conn.commit()

    assert [h.path for h in index.search("the", k=10, filters=[EntityFilter("ORG", "google")])] == [bert["path"]]
    assert [h.path for h in index.search("the", k=10, filters=[EntityFilter("PER", None)])] == []
    assert cat["path"] in {h.path for h in index.search("the", k=10, filters=[LabelFilter("sentiment", sentiment_of_cat)])}
    assert index.entities() == [{"text": "Google", "label": "ORG", "mentions": 1, "documents": 1}]

    index.delete([bert["path"]])
    assert index.store.db["entities"].count == 0
    assert index.store.db["enriched"].count == 2 * (passages - 1)


def test_an_empty_query_and_a_filter_without_its_enrichment_are_errors(index, corpus):
    from search.errors import SearchError
    from search.filters import EntityFilter, LabelFilter

    index.add_paths([corpus])
    with pytest.raises(SearchError, match="empty"):
        index.search("  ")
    with pytest.raises(SearchError, match=r"no ner enrichment.*search enrich --enrich ner"):
        index.search("the", filters=[EntityFilter("ORG", "google")])
    with pytest.raises(SearchError, match=r"no sentiment enrichment.*--enrich sentiment"):
        index.search("the", filters=[LabelFilter("sentiment", "positive")])
    with pytest.raises(SearchError, match=r"no topic enrichment.*classify:"):
        index.search("the", filters=[LabelFilter("topic", "sports")])
    assert index.search("the", filters=["path=*.md"])  # a document filter needs no enrichment


def test_enrich_later_and_remembered_tasks(tmp_path, tiny_model, tiny_sentiment, corpus):
    with Index.create(tmp_path / "ix", model=tiny_model) as idx:
        idx.add_paths([corpus])
        assert idx.enrich(f"sentiment:{tiny_sentiment}") == idx.stats()["passages"]
        assert idx.enrich() == 0
        (corpus / "new.txt").write_text("The sun is a star.")
        idx.add_paths([corpus])  # new passages are enriched by the remembered task
        assert idx.store.db["labels"].count == idx.stats()["passages"]
    with Index.open(tmp_path / "ix") as again:
        assert [e.task for e in again.enrichers] == ["sentiment"]


def _replace_vectors(path, vectors):
    vectors.write_pending(path)
    vectors.promote(path)


HOSTILE_QUERIES = ['"', "NEAR(", "*", "-", "AND OR", 'the "unbalanced', "the and of", "x" * 10_000, "😀 emoji",
                   "a:b", "(((", "^start", "NOT", "' OR 1=1 --", "cat*", "title:cat"]


def test_hostile_queries_and_filters_never_error_and_are_bound_parameters(index, corpus):
    index.add_paths([corpus])
    documents = index.stats()["documents"]
    for query in HOSTILE_QUERIES:
        for mode in ("hybrid", "lexical", "dense"):
            assert isinstance(index.search(query, k=3, mode=mode), list)
    for value in ["x' OR '1'='1", "*; DROP TABLE documents", '1969" OR 1=1']:
        assert index.search("the", filters=[f"title={value}", f"year={value}"]) == []
    assert index.stats()["documents"] == documents


def test_a_resumed_text_replaced_later_in_the_same_call(index, monkeypatch):
    long = " ".join(f"Sentence number {i} tells of the cat." for i in range(200))
    index.writer.batch_passages, index.writer.checkpoint_seconds = 8, 0.0
    real = interrupt_encoding(index, monkeypatch, at_call=2)
    with pytest.raises(KeyboardInterrupt):
        index.add_texts([long], ids=["a"])
    assert index.stats()["incomplete"] == 1
    monkeypatch.setattr(index.encoder, "encode", real)
    index.add_texts([long, "a shorter text now"], ids=["a", "a"])  # resumed, then replaced: no duplicate path
    assert index.stats()["documents"] == 1 and index.stats()["incomplete"] == 0 and _consistent(index)
    assert index.search("shorter text", k=1, mode="lexical")[0].text == "a shorter text now"
