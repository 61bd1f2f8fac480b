"""Rebuilds beside the commits (search/background.py): commits go on meanwhile, nothing they do is lost
when the rebuilt structure is taken, and other writers wait for the rebuild as for a run."""

import threading

import numpy as np
import pytest

import search.background
from search import Index, SearchError
from search.vectors import VectorIndex


def clustered(n, dimension, seed=0):
    rng = np.random.default_rng(seed)
    centres = rng.normal(size=(8, dimension))
    return (centres[rng.integers(8, size=n)] + 0.3 * rng.normal(size=(n, dimension))).astype(np.float32)


@pytest.fixture
def held_build(monkeypatch):
    """``VectorIndex.build`` in rebuilds waits until the test lets it go."""
    go, started = threading.Event(), threading.Event()
    real = VectorIndex.build

    def build(*args, **kwargs):
        started.set()
        assert go.wait(60)
        return real(*args, **kwargs)

    monkeypatch.setattr(search.background.VectorIndex, "build", build)
    yield started, go
    go.set()


@pytest.mark.parametrize("left", [0, 1000])  # what the writer does meanwhile: applied by the rebuild, or by the writer
def test_commits_go_on_while_the_vectors_are_rebuilt_and_none_is_lost(tmp_path, tiny_model, held_build, monkeypatch, left):
    monkeypatch.setattr(search.background, "LEFT_FOR_THE_WRITER", left)
    started, go = held_build
    path = tmp_path / "ix"
    with Index.create(path, model=tiny_model, ann="ivf") as idx:
        dimension = idx.vectors.dimension
        idx.add_texts([f"text {i}" for i in range(300)], vectors=clustered(300, dimension), ids=[f"t{i}" for i in range(300)])
        assert started.wait(30) and idx.vectors.kind == "flat"  # an IVF is due: it is trained beside the commits
        snapshot = idx.store.generation()
        during = clustered(40, dimension, seed=1)
        idx.add_texts([f"new {i}" for i in range(40)], vectors=during, ids=[f"n{i}" for i in range(40)])
        idx.delete(["t1", "t2", "n3"])
        idx.embed = lambda text: during[5]
        assert idx.search("q", k=1, mode="dense")[0].path == "n5"
        with Index.open(path) as reader:  # another reader sees every commit
            reader.embed = lambda text: during[5]
            assert reader.search("q", k=1, mode="dense")[0].path == "n5" and len(reader.vectors) == 337
        other = Index.open(path)
        other.writer.lock_grace = 0.2
        with pytest.raises(SearchError, match="Another process is writing"):
            other.add_texts(["a text"])  # the rebuild holds the writer lock, as a run does
        go.set()
        idx.wait_for_rebuilds()
        assert idx.vectors.kind == "ivf"
        assert sorted(idx.vectors.ids()) == sorted(idx.store.passage_ids())  # what came meanwhile is in
        assert VectorIndex.file_generation(path / "vectors.faiss") == snapshot
        assert idx.search("q", k=1, mode="dense")[0].path == "n5"
        other.add_texts(["a text"], vectors=during[:1], ids=["other"])  # the lock is free again
        other.close()
    with Index.open(path) as again:
        assert again.vectors.kind == "ivf" and len(again.vectors) == 338
        again.embed = lambda text: during[5]
        assert again.search("q", k=1, mode="dense")[0].path == "n5"


def test_close_waits_for_a_rebuild(tmp_path, tiny_model, held_build):
    started, go = held_build
    idx = Index.create(tmp_path / "ix", model=tiny_model, ann="ivf")
    idx.add_texts([f"text {i}" for i in range(200)], vectors=clustered(200, idx.vectors.dimension))
    assert started.wait(30)
    threading.Timer(0.5, go.set).start()
    idx.close()
    with Index.open(tmp_path / "ix") as again:
        assert again.vectors.kind == "ivf" and len(again.vectors) == 200
