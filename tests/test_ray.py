"""Indexing with encoding on Ray (a local Ray of 2 CPUs, as a cluster of one machine)."""

import numpy as np
import pytest

from search import Index

ray = pytest.importorskip("ray")


@pytest.fixture(scope="module")
def local_ray():
    ray.init(num_cpus=2, logging_level="ERROR", log_to_driver=False)
    yield
    ray.shutdown()


def passages_and_vectors(index: Index):
    rows = list(index.store.conn.execute(
        "SELECT d.path, p.ord, p.start_char, p.end_char, p.text FROM passages p JOIN documents d ON d.id = p.document_id"
        " ORDER BY d.path, p.ord"))
    ids = [r[0] for r in index.store.conn.execute(
        "SELECT p.id FROM passages p JOIN documents d ON d.id = p.document_id ORDER BY d.path, p.ord")]
    present, vectors = index.store.vectors_of(ids)
    assert present == ids
    return rows, vectors


def test_ray_makes_the_same_index_as_a_local_run(local_ray, tmp_path, tiny_model, corpus):
    with Index.create(tmp_path / "local", model=tiny_model, precision="float32") as local:
        local.add_paths([corpus])
        expected, expected_vectors = passages_and_vectors(local)
    with Index.create(tmp_path / "ray", model=tiny_model, precision="float32") as on_ray:
        report = on_ray.add_paths([corpus], ray="auto", ray_workers=2)
        assert report.added == 4 and report.passages == len(expected)
        rows, vectors = passages_and_vectors(on_ray)
        assert on_ray.writer.remote is None  # the workers are gone with the run
        assert len(on_ray.vectors) == len(rows)
    assert rows == expected
    assert np.abs(vectors - expected_vectors).max() <= 1e-5


def test_cli_index_on_ray(local_ray, run, corpus):
    out = run("index", str(corpus), "--ray", "--ray-workers", "1").output
    assert "4 added" in out
    assert "cat" in run("query", "cat sat", "-k", "1").output.lower()


def enrichment(index: Index):
    """What the enrichers stored, by passage (document path, order)."""
    conn = index.store.conn
    joined = "JOIN passages p ON p.id = x.passage_id JOIN documents d ON d.id = p.document_id"
    entities = list(conn.execute(f"SELECT d.path, p.ord, x.text, x.label, x.start_char, x.end_char, round(x.score, 4)"
                                 f" FROM entities x {joined} ORDER BY 1, 2, 5, 4"))
    labels = list(conn.execute(f"SELECT d.path, p.ord, x.task, x.label, round(x.score, 4) FROM labels x {joined} ORDER BY 1, 2, 3"))
    seen = conn.execute("SELECT task, count(*) FROM enriched GROUP BY task ORDER BY task").fetchall()
    return entities, labels, seen


def test_ray_workers_enrich_as_a_local_run(local_ray, tmp_path, tiny_model, tiny_ner, tiny_sentiment, corpus):
    enrich = f"ner:{tiny_ner},sentiment:{tiny_sentiment}"
    with Index.create(tmp_path / "local", model=tiny_model, precision="float32") as local:
        local.add_paths([corpus], enrich=enrich)
        expected = enrichment(local)
        passages = local.stats()["passages"]
    with Index.create(tmp_path / "ray", model=tiny_model, precision="float32") as on_ray:
        on_ray.add_paths([corpus], enrich=enrich, ray="auto", ray_workers=2)
        assert {e.task for e in on_ray.enrichers} == {"ner", "sentiment"}
        found = enrichment(on_ray)
    assert found == expected
    entities, labels, seen = found
    assert len(labels) == passages and seen == [("ner", passages), ("sentiment", passages)]
