"""An indexing run killed with SIGKILL leaves the last committed, consistent state."""

import os
import signal
import sqlite3
import subprocess
import sys
import textwrap
import time

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


def _committed_documents(db):
    try:
        with sqlite3.connect(f"file:{db}?mode=ro", uri=True, timeout=1) as conn:
            return conn.execute("SELECT count(*) FROM documents").fetchone()[0]
    except sqlite3.Error:
        return 0


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
