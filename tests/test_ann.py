"""Approximate vector search (IVF), vectors brought by the caller, and vectors kept as float16."""

import numpy as np
import pytest

from search import Index
from search import vectors as vectors_module
from search.cli.common import ANN_CHOICES
from search.store import STORED_DTYPE
from search.vectors import ANN, plan


def clustered(n: int, dimension: int, seed: int = 0, centres: int = 20) -> np.ndarray:
    """Unit vectors around a few centres, as embeddings of topical texts are."""
    rng = np.random.default_rng(seed)
    points = rng.standard_normal((centres, dimension))[rng.integers(centres, size=n)] + 0.5 * rng.standard_normal((n, dimension))
    return (points / np.linalg.norm(points, axis=1, keepdims=True)).astype(np.float32)


def texts(n: int, start: int = 0) -> list[str]:
    return [f"passage number {i} about topic {i % 7}" for i in range(start, start + n)]


@pytest.fixture
def ivf_index(tmp_path, tiny_model):
    with Index.create(tmp_path / "ix", model=tiny_model, ann="ivf") as idx:
        yield idx


def test_plan_is_exact_when_small_and_about_sqrt_lists_when_large():
    assert plan(0, "ivf") == ("flat", 0)
    assert plan(49_999) == ("flat", 0)
    assert plan(50_000) == ("ivf", 256)
    assert plan(1_000_000) == ("ivf", 1024)
    assert plan(1_000_000, "flat") == ("flat", 0)
    assert plan(100, "ivf") == ("ivf", 2)  # at least 39 training vectors per list
    with pytest.raises(ValueError, match="--ann"):
        plan(10, "hnsw")
    assert ANN_CHOICES == ANN  # the CLI names them without importing FAISS


def test_given_vectors_are_stored_normalized_as_float16_and_searched(ivf_index):
    dimension = ivf_index.vectors.dimension
    matrix = clustered(400, dimension) * 3.0  # any length: the index normalizes
    ivf_index.add_texts(texts(400), vectors=matrix, ids=[f"t{i}" for i in range(400)])
    ivf_index.wait_for_rebuilds()
    assert ivf_index.stats()["passages"] == 400  # one passage per text, whatever its length
    blob = ivf_index.store.conn.execute("SELECT vector FROM passages LIMIT 1").fetchone()[0]
    assert len(blob) == dimension * np.dtype(STORED_DTYPE).itemsize
    assert ivf_index.vectors.kind == "ivf" and ivf_index.vectors.lists == plan(400, "ivf")[1]
    assert sorted(ivf_index.vectors.ids()) == sorted(ivf_index.store.passage_ids())
    unit = matrix / np.linalg.norm(matrix, axis=1, keepdims=True)
    ivf_index.embed = lambda text: unit[123]
    best = ivf_index.search("anything", k=1, mode="dense")[0]
    assert best.path == "t123" and best.dense_score == pytest.approx(1.0, abs=2e-3)  # rescored: exact, not SQ8


def test_given_vectors_are_checked(ivf_index):
    dimension = ivf_index.vectors.dimension
    with pytest.raises(ValueError, match="one row"):
        ivf_index.add_texts(texts(2), vectors=np.ones((3, dimension)))
    with pytest.raises(ValueError, match="one row"):
        ivf_index.add_texts(texts(2), vectors=np.ones((2, dimension + 1)))
    with pytest.raises(ValueError, match="not zero"):
        ivf_index.add_texts(texts(2), vectors=np.zeros((2, dimension)))
    assert ivf_index.stats()["passages"] == 0


def test_probing_every_list_finds_what_exact_search_finds(tmp_path, tiny_model):
    dimension = None
    results = {}
    for ann in ("flat", "ivf"):
        with Index.create(tmp_path / ann, model=tiny_model, ann=ann) as idx:
            dimension = idx.vectors.dimension
            matrix = clustered(2000, dimension)
            idx.add_texts(texts(2000), vectors=matrix, ids=[f"t{i}" for i in range(2000)])
            idx.wait_for_rebuilds()  # the IVF is trained in the background
            assert idx.vectors.kind == ann
            queries = clustered(20, dimension, seed=1)
            results[ann] = []
            for q in queries:
                idx.embed = lambda text, q=q: q
                results[ann].append([h.path for h in idx.search("q", k=10, mode="dense", nprobe=idx.vectors.lists or None)])
    assert results["ivf"] == results["flat"]


def test_default_probes_find_most_of_the_exact_neighbours(ivf_index):
    dimension = ivf_index.vectors.dimension
    matrix = clustered(4000, dimension, centres=60)
    ivf_index.add_texts(texts(4000), vectors=matrix, ids=[f"t{i}" for i in range(4000)])
    ivf_index.wait_for_rebuilds()
    unit = ivf_index.store.vectors()[0]
    found = 0
    for q in clustered(30, dimension, seed=2, centres=60):
        truth = {f"t{i}" for i in np.argsort(-(unit @ q))[:10]}
        ivf_index.embed = lambda text, q=q: q
        found += len(truth & {h.path for h in ivf_index.search("q", k=10, mode="dense")})
    assert ivf_index.vectors.lists > vectors_module.default_probes(ivf_index.vectors.lists)  # not every list
    assert found / 300 >= 0.9


def test_deletes_reopen_repair_and_filters_on_ivf(ivf_index, tmp_path):
    dimension = ivf_index.vectors.dimension
    matrix = clustered(300, dimension)
    ivf_index.add_texts(texts(300), vectors=matrix, ids=[f"t{i}" for i in range(300)],
                        metadata=[{"half": str(i % 2)} for i in range(300)])
    ivf_index.wait_for_rebuilds()
    assert ivf_index.delete(["t5", "t6"]) == 2
    ivf_index.embed = lambda text: matrix[5]
    assert "t5" not in {h.path for h in ivf_index.search("q", k=20, mode="dense")}
    odd = ivf_index.search("q", k=20, mode="dense", filters={"half": "1"})
    assert len(odd) == 20 and all(int(h.path[1:]) % 2 for h in odd)  # a filter probes more lists
    path = ivf_index.path
    ivf_index.close()
    with Index.open(path) as again:
        assert again.vectors.kind == "ivf" and len(again.vectors) == 298
        assert again.repair() == 298 and again.vectors.kind == "ivf"
        assert sorted(again.vectors.ids()) == sorted(again.store.passage_ids())


def test_auto_switches_to_ivf_past_the_threshold_and_back(tmp_path, tiny_model, monkeypatch):
    monkeypatch.setattr(vectors_module, "EXACT_UP_TO", 200)
    with Index.create(tmp_path / "ix", model=tiny_model) as idx:
        dimension = idx.vectors.dimension
        idx.add_texts(texts(150), vectors=clustered(150, dimension))
        idx.wait_for_rebuilds()
        assert idx.vectors.kind == "flat"
        idx.add_texts(texts(100, 150), vectors=clustered(100, dimension, seed=3))
        idx.wait_for_rebuilds()
        assert idx.vectors.kind == "ivf"
        assert idx.stats()["vector_index"].startswith("IVF")
        gone = [r[0] for r in idx.store.conn.execute("SELECT path FROM documents LIMIT 160")]
        idx.delete(gone)
        idx.wait_for_rebuilds()
        assert idx.vectors.kind == "flat"  # 90 left: below half the threshold
    with Index.open(tmp_path / "ix") as again:
        assert again.vectors.kind == "flat" and len(again.vectors) == 90


def test_set_ann_rebuilds_an_existing_index(tmp_path, tiny_model):
    with Index.create(tmp_path / "ix", model=tiny_model) as idx:
        idx.add_texts(texts(100), vectors=clustered(100, idx.vectors.dimension))
        assert idx.vectors.kind == "flat"
        idx.set_ann("ivf")
        assert idx.vectors.kind == "ivf" and idx.ann == "ivf"
        with pytest.raises(ValueError, match="--ann"):
            idx.set_ann("hnsw")
    with Index.open(tmp_path / "ix") as again:
        assert again.vectors.kind == "ivf" and again.ann == "ivf"


def test_float32_vectors_of_older_indexes_still_read(tmp_path, tiny_model):
    with Index.create(tmp_path / "ix", model=tiny_model) as idx:
        idx.add_texts(texts(5))
        old = idx.store.vectors()[0]
        with idx.store.conn:  # as an index made before float16 storage holds them
            for pid, vector in zip(idx.store.passage_ids(), old):
                idx.store.conn.execute("UPDATE passages SET vector = ? WHERE id = ?", (vector.astype(np.float32).tobytes(), int(pid)))
        idx.add_texts(texts(3, 5))
        assert idx.repair() == 8
        assert np.array_equal(idx.store.vectors()[0][:5], old)


def test_cli_ann_and_nprobe(run, corpus, tmp_path):
    run("index", str(corpus), "--ann", "ivf")
    out = run("stats").output
    assert "IVF-SQ8" in out and "--ann ivf" in out
    assert "cat" in run("query", "cat", "--nprobe", "1", "--mode", "dense").output.lower()
    run("query", "cat", "--nprobe", "0", ok=False)
    assert "Vector index: flat (exact) (--ann flat)." in run("index", "--ann", "flat").output  # no paths: only the change
    assert "--ann flat" in run("stats").output and "holds your own documents" in run("index", ok=False).output


@pytest.fixture
def small_tantivy_threshold(monkeypatch):
    import search.writer

    monkeypatch.setattr(search.writer, "TANTIVY_FROM", 50)


def lexical_ids(idx, query, k=10):
    return [h.path for h in idx.search(query, k=k, mode="lexical")]


def test_large_indexes_search_words_with_tantivy_in_step_with_sqlite(tmp_path, tiny_model, small_tantivy_threshold):
    with Index.create(tmp_path / "ix", model=tiny_model) as idx:
        idx.add_texts(texts(40), ids=[f"t{i}" for i in range(40)])
        assert idx.lexical is None and idx.stats()["lexical_index"] == "FTS5"
        fts = lexical_ids(idx, "passage number 7")
        idx.add_texts(texts(20, 40), ids=[f"t{i}" for i in range(40, 60)])
        assert idx.lexical is None  # being built in the background: FTS5 meanwhile
        assert lexical_ids(idx, "passage number 7")[0] == "t7"
        idx.wait_for_rebuilds()
        idx.add_texts(["a text while it catches up"], ids=["t60"])  # changes since its snapshot go in
        assert idx.lexical is not None and idx.lexical.generation == idx.store.generation()
        assert idx.stats()["lexical_index"] == "tantivy"
        assert lexical_ids(idx, "passage number 7")[0] == fts[0] == "t7"
        assert lexical_ids(idx, "number 55")[0] == "t55"
        idx.delete(["t55"])
        assert "t55" not in lexical_ids(idx, "number 55")
        idx.add_texts(["a passage about okapis"], ids=["t7"])  # replaced text
        assert lexical_ids(idx, "okapis") == ["t7"]
        assert lexical_ids(idx, "number 7", k=60).count("t7") == 0
        with_filter = idx.search("okapis", mode="lexical", filters={"path": "t7"})  # filters: FTS5
        assert [h.path for h in with_filter] == ["t7"]
    with Index.open(tmp_path / "ix") as again:
        assert again.lexical.generation == again.store.generation()
        assert lexical_ids(again, "okapis") == ["t7"]
        assert again.repair() == 60 and lexical_ids(again, "okapis") == ["t7"]


def test_a_lexical_index_behind_sqlite_is_not_used_and_catches_up(tmp_path, tiny_model, small_tantivy_threshold, monkeypatch):
    from search.lexical import LexicalIndex

    with Index.create(tmp_path / "ix", model=tiny_model) as idx:
        idx.add_texts(texts(60), ids=[f"t{i}" for i in range(60)])
        idx.wait_for_rebuilds()  # the tantivy index, built in the background
        behind = idx.lexical.generation

        def killed(*args, **kwargs):
            raise KeyboardInterrupt  # as a run killed after SQLite's commit, before tantivy's

        monkeypatch.setattr(LexicalIndex, "apply", killed)
        with pytest.raises(KeyboardInterrupt):
            idx.add_texts(["the okapi is a giraffe relative"], ids=["okapi"])
        monkeypatch.undo()
    with Index.open(tmp_path / "ix") as again:
        assert again.lexical.generation == behind < again.store.generation()
        assert lexical_ids(again, "okapi giraffe") == ["okapi"]  # from FTS5 meanwhile
        again.add_texts(["another text"], ids=["other"])
        assert again.lexical.generation == again.store.generation()
        assert lexical_ids(again, "okapi giraffe") == ["okapi"]
        assert lexical_ids(again, "passage number 3")[0] == "t3"


def test_a_run_killed_after_tantivys_commit_leaves_no_passage_twice(tmp_path, tiny_model, small_tantivy_threshold,
                                                                     monkeypatch):
    import search.lexical

    with Index.create(tmp_path / "ix", model=tiny_model) as idx:
        idx.add_texts(texts(60), ids=[f"t{i}" for i in range(60)])
        idx.wait_for_rebuilds()  # the tantivy index, built in the background
        real_replace = search.lexical.os.replace

        def killed(src, dst):
            if str(dst).endswith(search.lexical.GENERATION_FILE):
                raise KeyboardInterrupt  # tantivy committed; the generation is not recorded
            real_replace(src, dst)

        monkeypatch.setattr(search.lexical.os, "replace", killed)
        with pytest.raises(KeyboardInterrupt):
            idx.add_texts(["the okapi is a giraffe relative"], ids=["okapi"])
        monkeypatch.undo()
    with Index.open(tmp_path / "ix") as again:
        assert again.lexical.generation < again.store.generation()
        again.add_texts(["another text"], ids=["other"])  # applies the killed run's changes again
        assert again.lexical.generation == again.store.generation()
        again.lexical.index.reload()
        assert again.lexical.index.searcher().num_docs == again.stats()["passages"] == 62
        assert lexical_ids(again, "okapi giraffe") == ["okapi"]
