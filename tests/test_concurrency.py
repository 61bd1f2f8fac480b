"""Readers see one committed state while a writer in another process adds, updates and deletes;
a second writer is told, or waits."""

import os
import subprocess
import sys
import textwrap
import threading
import time
from pathlib import Path

import pytest

from search import Index
from search.errors import SearchError

SEARCH = str(Path(sys.executable).with_name("search"))  # the installed command


def _notes(folder, count, version):
    folder.mkdir(exist_ok=True)
    for i in range(count):
        (folder / f"note{i:03d}.txt").write_text(f"Note {i} version {version}. The cat number {i} sat on mat {i % 7}.")


@pytest.mark.parametrize("compact_min", [0, 2000])  # the vector file rewritten at every commit, or changes read from SQLite
def test_an_open_index_follows_commits_of_another_writer(tmp_path, tiny_model, compact_min):
    folder = tmp_path / "docs"
    _notes(folder, 20, 1)
    with Index.create(tmp_path / "ix", model=tiny_model) as writer:
        writer.writer.compact_min = compact_min
        writer.add_paths([folder])
        reader = Index.open(tmp_path / "ix")
        assert len(reader.search("cat", k=50, mode="dense")) == 20
        _notes(folder, 20, 2)
        (folder / "note000.txt").unlink()
        writer.add_paths([folder], prune=True)
        hits = reader.search("cat", k=50, mode="dense")  # caught up: updated passages, the deleted one gone
        assert len(hits) == 19 and all("version 2" in h.text for h in hits)
        assert reader.stats()["vectors"] == reader.stats()["passages"] == 19
        reader.close()
    with Index.open(tmp_path / "ix") as again:  # a fresh open agrees
        assert sorted(h.passage_id for h in again.search("cat", k=50, mode="dense")) == sorted(h.passage_id for h in hits)


def test_the_vector_file_is_rewritten_only_when_changes_grow_large(tmp_path, tiny_model):
    with Index.create(tmp_path / "ix", model=tiny_model) as index:
        live = index.vectors_path
        before = live.stat().st_mtime_ns
        index.add_texts([f"text number {i}" for i in range(10)])
        assert live.stat().st_mtime_ns == before  # 10 changes: only SQLite was written
        index.writer.compact_min = 5
        index.add_texts([f"more text {i}" for i in range(10)])
        index.wait_for_rebuilds()  # the file is rewritten beside the commits
        assert live.stat().st_mtime_ns != before
    with Index.open(tmp_path / "ix") as again:
        assert again.vectors.generation == again.store.generation() and len(again.vectors) == 20


def test_a_second_writer_gets_a_clear_message_or_waits(tmp_path, tiny_model):
    path = tmp_path / "ix"
    Index.create(path, model=tiny_model).close()
    done = threading.Event()

    def second_writer(wait: bool):
        with Index.open(path) as second:
            second.writer.wait = wait
            second.add_texts(["a text"])
            done.set()

    with Index.open(path) as first, first.writer.exclusive():
        with pytest.raises(SearchError, match="Another process is writing.*--wait"):
            second_writer(wait=False)
        worker = threading.Thread(target=second_writer, args=(True,))
        worker.start()
        time.sleep(0.5)
        assert not done.is_set()  # waiting for the first writer
    worker.join(30)
    assert done.is_set()
    with Index.open(path) as index:
        assert index.stats()["documents"] == 1


WRITER = textwrap.dedent("""
    import pathlib, sys
    from search import Index
    folder = pathlib.Path(sys.argv[3])
    index = Index.open_or_create(sys.argv[1], model=sys.argv[2])
    index.writer.checkpoint_seconds = 0.0  # a commit after every batch
    index.writer.batch_passages = 16
    index.writer.compact_min = int(sys.argv[4])
    def notes(version):
        for i in range(300):
            (folder / f"note{i:03d}.txt").write_text(f"Note {i} version {version}. The cat number {i} sat on mat {i % 7}.")
    for round in range(3):
        notes(2 * round); index.add_paths([folder])          # adds (or brings back)
        notes(2 * round + 1); index.add_paths([folder])      # updates
        for i in range(0, 300, 2):
            (folder / f"note{i:03d}.txt").unlink()
        index.add_paths([folder], prune=True)                # deletes
    print("finished", flush=True)
""")

READER = textwrap.dedent("""
    import os, sys, traceback
    from search import Index
    path, stop = sys.argv[1], sys.argv[2]
    searches = errors = 0
    kept = None
    while not os.path.exists(stop):
        try:
            fresh = Index.open(path)
            kept = kept or fresh
            for index in {fresh, kept}:
                for mode in ("hybrid", "dense", "lexical"):
                    with index.store.reading():  # the search and the check see one committed state
                        for hit in index.search("cat number sat", k=20, mode=mode):
                            doc = index.store.conn.execute("SELECT text FROM documents WHERE id = ?", (hit.document_id,)).fetchone()
                            assert doc[0][hit.start:hit.end] == hit.text, "a hit not of its document"
                    searches += 1
                with index.store.reading():  # in one snapshot, vectors and passages agree
                    index.vectors = index.catch_up(index.vectors)
                    assert len(index.vectors) == index.store.counts()["passages"], "vectors and passages disagree"
            if fresh is not kept:
                fresh.close()
        except Exception as exc:
            errors += 1
            print("error", repr(exc), traceback.format_exc(), flush=True)
    print("searches", searches, "errors", errors, flush=True)
""")


@pytest.mark.slow
@pytest.mark.parametrize("compact_min", [0, 2000])
def test_readers_in_other_processes_never_fail_while_a_writer_adds_updates_and_deletes(tmp_path, tiny_model, compact_min):
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "OMP_NUM_THREADS": "1"}
    path, folder = tmp_path / "ix", tmp_path / "docs"
    folder.mkdir()
    Index.create(path, model=tiny_model).close()
    writer = subprocess.Popen([sys.executable, "-c", WRITER, str(path), tiny_model, str(folder), str(compact_min)],
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env)
    stop = tmp_path / "stop"
    reader = subprocess.Popen([sys.executable, "-c", READER, str(path), str(stop)], stdout=subprocess.PIPE, text=True, env=env)
    cli_runs = []
    while writer.poll() is None:  # meanwhile, whole CLI commands
        command = ("query", "ask")[len(cli_runs) % 2]
        cli_runs.append(subprocess.run([SEARCH, command, "cat number", "--index", str(path), "--json"],
                                       capture_output=True, text=True, env=env))
    out, err = writer.communicate()
    assert writer.returncode == 0 and "finished" in out, err
    stop.touch()
    report = reader.communicate(timeout=120)[0]
    assert "error" not in report.replace("errors 0", ""), report
    failed = [r.stderr for r in cli_runs if r.returncode != 0]
    assert not failed and cli_runs, failed
    print(f"{report.strip()}; {len(cli_runs)} CLI queries and questions, 0 failed")
    with Index.open(path) as index:
        assert index.stats()["documents"] == 150 and index.stats()["vectors"] == index.stats()["passages"]
