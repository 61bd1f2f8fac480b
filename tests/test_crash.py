"""An indexing run killed with SIGKILL leaves the last committed, consistent state."""

import os
import signal
import sqlite3
import subprocess
import sys
import textwrap
import time

import pytest

from search import Index

TOTAL = 1500

CHILD = textwrap.dedent("""
    import sys
    from search import Index
    index = Index.open_or_create(sys.argv[1], model=sys.argv[2])
    index.writer.checkpoint_seconds = 0.0   # commit after every batch
    index.writer.batch_passages = 8
    texts = [f"the cat number {i} sat on the mat in the park" for i in range(int(sys.argv[3]))]
    index.add_texts(texts, ids=[f"doc{i}" for i in range(len(texts))])
    print("finished", flush=True)
""")


def _committed_paths(db) -> set[str]:
    """The documents another process has committed so far (none while there is no database)."""
    try:
        with sqlite3.connect(f"file:{db}?mode=ro", uri=True, timeout=1) as conn:
            return {r[0] for r in conn.execute("SELECT path FROM documents")}
    except sqlite3.Error:
        return set()


def _committed_documents(db):
    return len(_committed_paths(db))


def test_sigkill_mid_run_leaves_a_consistent_index(tmp_path, tiny_model):
    path = tmp_path / "ix"
    child = subprocess.Popen(
        [sys.executable, "-c", CHILD, str(path), tiny_model, str(TOTAL)],
        stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, env={**os.environ, "HF_HUB_OFFLINE": "1"},
    )
    deadline = time.monotonic() + 120
    while _committed_documents(path / "index.db") < 40:
        assert child.poll() is None, "the indexing run ended before it could be killed"
        assert time.monotonic() < deadline
        time.sleep(0.05)
    child.send_signal(signal.SIGKILL)
    child.wait()

    with Index.open(path) as index:  # opens without error: the check on open passed
        stats = index.stats()
        assert 40 <= stats["documents"] < TOTAL
        assert stats["vectors"] == stats["passages"] == stats["documents"]
        assert index.search("cat number 5 sat", k=3, mode="dense")
        index.add_texts([f"the cat number {i} sat on the mat in the park" for i in range(TOTAL)],
                        ids=[f"doc{i}" for i in range(TOTAL)])
        assert index.stats()["documents"] == TOTAL


RUN = textwrap.dedent("""
    import sys
    from search.cli import cli
    from search.writer import IndexWriter
    IndexWriter.checkpoint_seconds = 0.0   # commit after every batch: many commits, renames and FAISS writes
    IndexWriter.batch_passages = 16
    IndexWriter.compact_min = int(sys.argv[4])  # 0: the vector file is rewritten at every commit
    cli(["index", sys.argv[3], "--index", sys.argv[1], "--model", sys.argv[2]])  # `search index`, in this process
""")
FILES, TRIALS = 300, 32


def _run(path, tiny_model, folder, compact_min=0):
    return subprocess.Popen([sys.executable, "-c", RUN, str(path), tiny_model, str(folder), str(compact_min)],
                            stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, env={**os.environ, "HF_HUB_OFFLINE": "1"})


@pytest.mark.slow
def test_sigkill_at_random_moments_never_leaves_an_index_that_does_not_open(tmp_path, tiny_model):
    import random

    folder = tmp_path / "docs"
    folder.mkdir()
    for i in range(FILES):
        (folder / f"note{i:03d}.txt").write_text(f"Note {i}. The cat number {i} sat on the mat in park {i % 17}.")
    started, created = time.monotonic(), None
    first = _run(tmp_path / "whole", tiny_model, folder)
    while first.poll() is None:  # when the index appears (after imports and model loading), and the end
        if created is None and (tmp_path / "whole" / "index.db").exists():
            created = time.monotonic() - started
        time.sleep(0.005)
    assert first.returncode == 0 and created is not None
    whole = time.monotonic() - started
    rng, failures, opened = random.Random(7), [], 0
    for trial in range(TRIALS):
        path = tmp_path / f"ix{trial}"
        child = _run(path, tiny_model, folder, compact_min=0 if trial % 2 else 2000)  # file rewrites, or changes in SQLite
        time.sleep(rng.uniform(max(0.0, created - 0.1), whole))  # from index creation to the last commit
        committed = _committed_paths(path / "index.db")  # just before the kill
        child.send_signal(signal.SIGKILL)
        child.wait()
        try:
            if (path / "index.db").exists():
                with Index.open(path) as index:  # no --repair
                    stats = index.stats()
                    assert stats["vectors"] == stats["passages"] == stats["documents"] <= FILES
                    kept = {r[0] for r in index.store.conn.execute("SELECT path FROM documents")}
                    assert committed <= kept, f"{len(committed - kept)} committed documents lost"
                    for doc in rng.sample(sorted(kept), min(3, len(kept))):
                        number = int(doc.rsplit("note", 1)[1][:3])
                        assert index.search(f"note {number}", k=1, mode="lexical")[0].path == doc
                    opened += 1
            with Index.open_or_create(path, model=tiny_model) as index:  # the next run completes the work
                index.add_paths([folder])
                assert index.stats()["documents"] == FILES
        except Exception as exc:  # count every failure, then report them all
            failures.append(f"trial {trial}: {exc!r}")
    print(f"{TRIALS} kills of `search index`, {opened} left an index, {len(failures)} failures")
    assert not failures, failures
    assert opened >= TRIALS // 3  # many kills landed while the index was being written (timing varies)
