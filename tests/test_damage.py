"""A full disk, a damaged file or a failed write: one clear line, and the last committed index intact."""

import errno
import random
import shutil
import sqlite3
import subprocess

import pytest

from search import Index, IndexCorrupt, IndexWriteError
from search.vectors import VectorIndex

LEFTOVERS = ("*.pending", "*.creating*")


@pytest.fixture
def index(tmp_path, tiny_model):
    with Index.create(tmp_path / "ix", model=tiny_model) as idx:
        idx.writer.checkpoint_seconds = 1e9  # each failing write is one transaction, however slow the machine
        yield idx


def _no_leftovers(folder):
    return not [p for pattern in LEFTOVERS for p in folder.glob(pattern)]


def _intact(path, documents):
    with Index.open(path) as index:
        stats = index.stats()
        assert stats["documents"] == documents and stats["vectors"] == stats["passages"]
        assert index.search("cat number 3", k=1, mode="dense")
    assert _no_leftovers(path)


@pytest.fixture
def tmpfs(tmp_path):
    """A 2 MB file system (an empty index takes 0.4 MB), where the machine allows mounting one (root in a
    container, as CI is)."""
    mount = tmp_path / "small"
    mount.mkdir()
    if subprocess.run(["mount", "-t", "tmpfs", "-o", "size=2m", "tmpfs", str(mount)], capture_output=True).returncode:
        pytest.skip("cannot mount a tmpfs here; the injected failures below cover the same paths")
    yield mount
    subprocess.run(["umount", "-l", str(mount)])


@pytest.mark.parametrize("compact_min", [0, 2000])  # the vector file rewritten with the commit, or not
def test_a_full_disk_is_one_clear_error_and_keeps_the_index(tmpfs, tiny_model, compact_min):
    path = tmpfs / "ix"
    with Index.create(path, model=tiny_model) as index:
        index.writer.compact_min = compact_min
        index.writer.checkpoint_seconds = 1e9  # the failing write is one transaction, however slow the machine
        index.add_texts([f"the cat number {i} sat on the mat" for i in range(20)])
        filler = "the cat sat on the mat " * 2_000  # 60 of them are more than the disk holds
        with pytest.raises(IndexWriteError, match="the disk is full.*last committed state"):
            index.add_texts([filler + str(i) for i in range(60)])
        assert index.stats()["documents"] == 20  # the same object goes on working
    _intact(path, 20)


def test_a_failed_vector_file_rewrite_loses_nothing_and_is_tried_again(index, monkeypatch):
    index.add_texts([f"the cat number {i} sat on the mat" for i in range(5)])
    index.writer.compact_min = 0  # a rewrite after every commit

    def full(self, path):
        self.pending_path(path).write_bytes(b"partial")
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(VectorIndex, "write_pending", full)
    index.add_texts(["a new text about the cat"])  # committed; the rewrite beside it fails
    with pytest.warns(UserWarning, match="Could not rebuild the vector file.*the disk is full. Nothing is lost"):
        index.wait_for_rebuilds()
    assert _no_leftovers(index.path)
    assert index.search("a new text about the cat", k=1, mode="dense")[0].text == "a new text about the cat"
    monkeypatch.undo()
    index.add_texts(["another text"])
    index.close()
    with Index.open(index.path) as again:
        assert VectorIndex.file_generation(index.path / "vectors.faiss") == again.store.generation()
    _intact(index.path, 7)


def test_a_full_database_keeps_the_index(index):
    index.add_texts([f"the cat number {i} sat on the mat" for i in range(5)])
    pages = index.store.conn.execute("PRAGMA page_count").fetchone()[0]
    index.store.conn.execute(f"PRAGMA max_page_count = {pages}")  # SQLite's own 'database or disk is full'
    with pytest.raises(IndexWriteError, match="the disk is full"):
        index.add_texts([f"another text {i} " * 200 for i in range(50)])
    index.close()
    _intact(index.path, 5)


def _built(tmp_path, tiny_model, name="ix"):
    path = tmp_path / name
    with Index.create(path, model=tiny_model) as index:
        index.writer.compact_min = 0  # the vector file holds every vector
        index.add_texts([f"the cat number {i} sat on the mat" for i in range(30)])
    return path


def test_every_bit_flip_in_the_vector_file_is_caught_and_repaired(tmp_path, tiny_model):
    pristine = _built(tmp_path, tiny_model)
    data = (pristine / "vectors.faiss").read_bytes()
    rng = random.Random(3)
    for trial in range(30):
        path = tmp_path / f"flip{trial}"
        shutil.copytree(pristine, path)
        flipped = bytearray(data)
        at = rng.randrange(len(flipped)) if trial else 3  # the first trial hits the magic
        flipped[at] ^= 1 << rng.randrange(8)
        (path / "vectors.faiss").write_bytes(bytes(flipped))
        try:
            Index.open(path).close()
            assert 10 <= at < 26, f"byte {at}: a flip outside the generation field went unnoticed"
        except IndexCorrupt as exc:
            assert "search index --repair" in str(exc)
        with Index.open(path, check=False) as broken:
            assert broken.repair() == 30
        _intact(path, 30)


def test_bit_flips_in_the_database_give_a_clear_error_or_a_working_index(tmp_path, tiny_model, run):
    pristine = _built(tmp_path, tiny_model, "pristine")
    data = (pristine / "index.db").read_bytes()
    rng, outcomes = random.Random(5), {"works": 0, "clear error": 0}
    for trial in range(40):
        path = tmp_path / "ix"  # the index the `run` fixture's CLI uses
        shutil.rmtree(path, ignore_errors=True)
        shutil.copytree(pristine, path)
        flipped = bytearray(data)
        for _ in range(8):
            flipped[rng.randrange(len(flipped))] ^= 0xFF
        (path / "index.db").write_bytes(bytes(flipped))
        for command in (("stats",), ("query", "cat number 3"), ("query", "cat", "--mode", "lexical"), ("rm", "nothing")):
            result = run(*command, ok=False)
            assert result.exception is None or isinstance(result.exception, SystemExit), (trial, command, result.output)
            assert "Traceback" not in result.output
            outcomes["works" if result.exit_code == 0 else "clear error"] += 1
    print(outcomes)
    assert outcomes["clear error"] > 0


def test_a_truncated_database_names_what_to_do(tmp_path, tiny_model):
    path = _built(tmp_path, tiny_model)
    db = path / "index.db"
    db.write_bytes(db.read_bytes()[:3000])
    with pytest.raises(IndexCorrupt, match="damaged.*search index PATHS --index"):
        Index.open(path)


def test_a_failed_write_reports_the_database_error_for_anything_else(index):
    index.add_texts(["the cat sat"])
    index.store.conn.execute("CREATE TRIGGER no_more BEFORE INSERT ON documents BEGIN SELECT RAISE(ABORT, 'refused'); END")
    with pytest.raises(IndexWriteError, match="refused"):
        index.add_texts(["the dog ran"])
    assert index.stats()["documents"] == 1
    assert isinstance(index.writer.conn, sqlite3.Connection) and not index.writer.conn.in_transaction
