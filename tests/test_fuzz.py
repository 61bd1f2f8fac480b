"""Property tests: whatever bytes a file holds, every loader and the splitter either read it or say
why not, and every stored passage's offsets slice exactly its text out of its stored document."""

import shutil
import tempfile
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from search import Index
from search.errors import UnreadableFile
from search.ingest import LOADERS, load_file

SUFFIXES = sorted(LOADERS) + [".unknown"]
ODD_CHARACTERS = ["\u200b", "\u200c", "\u200d", "\ufeff", "\u202e", "\u202d", "\u2066", "\u0301", "\x00", "\r",
                  "\u2028", "\t", "😀", "ف", "א", "Я", "中", "\ud7ff", "\U0010fffd"]
MARKUP = ["# Title\n", "## Sub\n", "```\ncode()\n```\n", "    indented\n", ".. note::\n", ".. _label:\n",
          ":param x: the x\n", "=====\n", "* item\n", "| a | b |\n|---|---|\n", "<div>", "</div>", "<p>", "<pre>",
          "</pre>", "<script>x()</script>", "<h1>H</h1>", "<!--", "-->", "&amp;", "&#0;", "{\"text\": \"a\"}\n",
          "\"a\",\"b\"\n", "text,id\n", "`role`", ":ref:`x`", "**bold**", "[link](http://x)", "\n\n", "word "]

texts = st.text(alphabet=st.one_of(st.characters(), st.sampled_from(ODD_CHARACTERS)), max_size=400)
marked_up = st.lists(st.one_of(st.sampled_from(MARKUP), texts), max_size=30).map("".join)
encodings = st.sampled_from(["utf-8", "utf-8-sig", "utf-16", "latin-1", "cp1252", "koi8-r", "shift_jis"])


@st.composite
def file_bytes(draw):
    """Random bytes, or (marked-up) text in one or two encodings, sometimes cut mid-character."""
    kind = draw(st.sampled_from(["bytes", "text", "mixed"]))
    if kind == "bytes":
        return draw(st.binary(max_size=2000))
    data = b"".join(draw(marked_up).encode(draw(encodings), errors="replace") for _ in range(1 if kind == "text" else 2))
    return data[: draw(st.integers(0, len(data)))] if draw(st.booleans()) else data


@pytest.fixture(scope="module")
def fuzz_index(tmp_path_factory, tiny_model):
    with Index.create(tmp_path_factory.mktemp("fuzz") / "ix", model=tiny_model) as index:
        yield index


def _offsets_hold(index: Index) -> None:
    conn = index.store.conn
    for doc_id, document in conn.execute("SELECT id, text FROM documents"):  # each document read once
        for text, start, end in conn.execute(
                "SELECT text, start_char, end_char FROM passages WHERE document_id = ?", (doc_id,)):
            assert document[start:end] == text


FUZZ = settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture,
                                                                      HealthCheck.too_slow])


@FUZZ
@given(data=file_bytes(), suffix=st.sampled_from(SUFFIXES))
def test_every_loader_reads_or_refuses_any_bytes(fuzz_index, data, suffix):
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / f"file{suffix}"
        path.write_bytes(data)
        try:
            docs = load_file(path, data=data, bad_rows=[])
        except UnreadableFile:
            return
        for doc in docs:
            assert all(0 <= s.start <= s.end <= len(doc.text) for s in doc.sections)
            assert all(0 <= page <= len(doc.text) for page in doc.pages)
            for p in fuzz_index.writer._passages_of(doc):
                assert doc.text[p.start : p.end] == p.text


@FUZZ
@given(files=st.lists(st.tuples(file_bytes(), st.sampled_from(SUFFIXES)), min_size=1, max_size=4))
def test_indexing_any_folder_never_fails_and_keeps_offsets_exact(fuzz_index, files):
    with tempfile.TemporaryDirectory() as folder:
        for i, (data, suffix) in enumerate(files):
            (Path(folder) / f"f{i}{suffix}").write_bytes(data)
        report = fuzz_index.add_paths([folder])
        assert report.files == len([s for _, s in files if s != ".unknown"])
        assert report.added + len({p for p, _ in report.skipped}) >= report.files - report.unchanged
        _offsets_hold(fuzz_index)
        fuzz_index.delete([str(Path(folder).resolve())])
    stats = fuzz_index.stats()
    assert stats["vectors"] == stats["passages"]


@pytest.mark.parametrize("name, data", [
    ("one-line.txt", ("word " * 400_000).encode()),  # 2 MB without a line break
    ("one-line.md", ("word " * 400_000).encode()),
    ("nested.html", b"<div>" * 5000 + b"<p>deep text</p>" + b"</div>" * 5000),
    ("nested.md", b"> " * 2000 + b"quoted\n" + b"* " * 2000 + b"item\n"),
    ("nul.txt", b"text\x00" * 100),
    ("rtl.txt", "\u202eright to left \u200b zero\u200dwidth \ufeff".encode() * 200),
    ("rows.jsonl", b'{"text": "ok"}\n{"text": \n\xff\xfe\n[1,2]\n{"text": 5}\n'),
    ("rows.csv", b'text,id\n"unclosed,1\nfine,2\n\x00,3\n'),
])
def test_hard_inputs(fuzz_index, tmp_path, name, data):
    (tmp_path / name).write_bytes(data)
    report = fuzz_index.add_paths([tmp_path])
    assert report.files == 1 and report.added + len(report.skipped) == 1
    _offsets_hold(fuzz_index)


def test_unreadable_files_folders_and_link_loops_are_skipped_and_counted(fuzz_index, tmp_path, monkeypatch):
    docs = tmp_path / "docs"
    (docs / "sub").mkdir(parents=True)
    (docs / "ok.txt").write_text("a readable note")
    (docs / "locked.txt").write_text("cannot be read")
    (docs / "sub" / "loop").symlink_to(docs, target_is_directory=True)  # a link back up
    (docs / "broken.txt").symlink_to(tmp_path / "gone.txt")
    (docs / "closed").mkdir()
    real_read, real_scandir = Path.read_bytes, __import__("os").scandir

    def read_bytes(self):  # root reads every file, so permissions are simulated
        if self.name == "locked.txt":
            raise PermissionError(13, "Permission denied")
        return real_read(self)

    def scandir(path):
        if isinstance(path, (str, Path)) and Path(path).name == "closed":  # shutil.rmtree passes descriptors
            raise PermissionError(13, "Permission denied")
        return real_scandir(path)

    monkeypatch.setattr(Path, "read_bytes", read_bytes)
    monkeypatch.setattr("search.ingest.os.scandir", scandir)
    report = fuzz_index.add_paths([docs])
    reasons = {Path(p).name: r for p, r in report.skipped}
    assert report.added == 1
    assert reasons["locked.txt"] == "cannot read: Permission denied"
    assert reasons["closed"] == "cannot read folder: Permission denied"
    assert reasons["broken.txt"] == "broken link"
    assert "already visited" in reasons["loop"]
    shutil.rmtree(docs / "sub")
