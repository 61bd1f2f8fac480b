"""Files -> documents. One loader per format; a file that cannot be read raises UnreadableFile."""

from __future__ import annotations

import csv
import fnmatch
import hashlib
import io
import json
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Iterable, Iterator

from .errors import UnreadableFile
from .markup import Section, Structured, assemble, html_blocks, markdown_blocks, rst_blocks


@dataclass
class Document:
    """A unit of text with where it came from.

    ``path`` is the document's unique key: the file path, or ``file#row-id`` for a row of a
    .jsonl/.csv file. ``pages`` holds the character offset where each page starts (PDF only);
    ``sections`` the spans of text under each heading, and the code blocks (Markdown, reST, HTML).
    """

    path: str
    text: str
    title: str = ""
    source: str = ""
    metadata: dict = field(default_factory=dict)
    pages: list[int] = field(default_factory=list)
    sections: list[Section] = field(default_factory=list)
    hash: str = ""
    mtime: float = 0.0


@dataclass
class RowOptions:
    """How rows of .jsonl and .csv files become documents."""

    text_field: str = "text"
    id_field: str = "id"
    title_field: str = "title"


def _read_bytes(path: Path) -> bytes:
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise UnreadableFile(f"cannot read: {exc.strerror or exc}") from exc
    if not data.strip():
        raise UnreadableFile("empty file")
    return data


def _decode(data: bytes) -> str:
    """UTF-8 text, or text in the encoding charset-normalizer detects (Latin-1, cp1252, UTF-16...)."""
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError:
        text = _detected_text(data)
    if "\x00" in text[:8192]:
        raise UnreadableFile("binary file (NUL bytes)")
    return text


_BOMS = (b"\xff\xfe", b"\xfe\xff")


def _detected_text(data: bytes) -> str:
    """``data`` decoded in the encoding charset-normalizer finds least chaotic. Among equally calm
    ones cp1252, the usual legacy encoding of Western text, wins: on short French or German text
    cp1250 ties with it and turns "è" into "č". UTF-16 only with its byte order mark."""
    from charset_normalizer import from_bytes

    matches = [m for m in from_bytes(data) if not m.encoding.startswith("utf_16") or data.startswith(_BOMS)]
    if not matches:
        raise UnreadableFile("binary file (no text encoding fits)")
    least = min(m.chaos for m in matches)
    calm = [m for m in matches if m.chaos <= least + 0.01]
    best = next((m for m in calm if m.encoding == "cp1252"), None) or max(calm, key=lambda m: m.coherence)
    return str(best)


def first_line_title(text: str, fallback: str) -> str:
    """The first non-empty line, its runs of spaces and tabs made one space (a rendered man page's
    first line is "LS(1)<tabs>User Commands<tabs>LS(1)"); ``fallback`` when it is over 120 characters."""
    for line in text.splitlines():
        line = " ".join(line.strip().lstrip("#").split())
        if line:
            return line if len(line) <= 120 else fallback
    return fallback


def load_text(path: Path, data: bytes, options: RowOptions) -> list[Document]:
    text = _decode(data)
    return [Document(path=str(path), text=text, title=first_line_title(text, path.stem))]


def _structured_document(path: Path, parsed: Structured, title: str = "") -> list[Document]:
    if not parsed.text.strip():
        raise UnreadableFile("no text in it")
    return [Document(path=str(path), text=parsed.text, sections=parsed.sections,
                     title=title or parsed.title or first_line_title(parsed.text, path.stem))]


def load_markdown(path: Path, data: bytes, options: RowOptions) -> list[Document]:
    """Markdown as text: headings give the title and section paths, code blocks are sections of their own."""
    return _structured_document(path, assemble(markdown_blocks(_decode(data))))


def load_rst(path: Path, data: bytes, options: RowOptions) -> list[Document]:
    """reStructuredText (Sphinx's roles and directives included) as text, with its sections."""
    return _structured_document(path, assemble(rst_blocks(_decode(data))))


def load_html(path: Path, data: bytes, options: RowOptions) -> list[Document]:
    """Visible text of the page's main content: each block element its own paragraph, inline elements
    inside their sentence; no scripts, styles, navigation or permalinks; headings give sections."""
    import html_text

    tree = html_text.parse_html(_decode(data))  # lxml in recovery mode, as browsers read broken HTML
    blocks = html_blocks(tree)
    # the page's own <h1> over its <title>, which sites suffix with their name ("... — Python 3.11.2 documentation")
    heading = next((b.text for b in blocks if b.kind == "heading" and b.level == 1), "")
    title = heading or " ".join((tree.findtext(".//title") or "").split())
    return _structured_document(path, assemble(blocks), title)


def load_pdf(path: Path, data: bytes, options: RowOptions) -> list[Document]:
    from pypdf import PdfReader
    from pypdf.errors import PyPdfError

    try:
        reader = PdfReader(io.BytesIO(data))
        page_texts = [page.extract_text() or "" for page in reader.pages]
        info = reader.metadata
        title = (info.title if info else None) or ""
    except (PyPdfError, ValueError, KeyError, TypeError, OSError) as exc:
        raise UnreadableFile(f"damaged PDF ({exc})") from exc
    text, pages = "", []
    for page_text in page_texts:
        pages.append(len(text))
        text += page_text.strip() + "\n\n"
    if not text.strip():
        raise UnreadableFile("PDF has no text layer")
    return [Document(path=str(path), text=text.rstrip(), title=str(title) or path.stem, pages=pages)]


@dataclass
class BadRow:
    """A row of a .jsonl or .csv file that could not become a document; the file's other rows still do."""

    source: str
    line: int
    reason: str


def _row_document(path: Path, row: dict, number: int, options: RowOptions) -> Document | None:
    text = row.get(options.text_field)
    if not isinstance(text, str) or not text.strip():
        return None
    key = row.get(options.id_field)
    key = str(key) if key not in (None, "") else str(number)
    metadata = {
        k: v for k, v in row.items()
        if k not in (options.text_field,) and isinstance(v, (str, int, float, bool)) and v != ""
    }
    title = str(row.get(options.title_field) or key)
    return Document(path=f"{path}#{key}", text=text, title=title, metadata=metadata)


def _rows_to_documents(path: Path, rows: Iterable[tuple[int, object]], options: RowOptions,
                       bad_rows: list[BadRow]) -> list[Document]:
    """Documents of the (line, row) pairs; a row that is an error, not an object or without text is
    added to ``bad_rows`` instead. A file with no good row at all is unreadable."""
    docs, seen, bad = [], set(), []
    for number, (line, row) in enumerate(rows, 1):
        if isinstance(row, BadRow):
            bad.append(row)
            continue
        doc = _row_document(path, row, number, options) if isinstance(row, dict) else None
        if doc is None:
            what = "not an object" if not isinstance(row, dict) else f"no text in its {options.text_field!r} field"
            bad.append(BadRow(str(path), line, what))
        elif doc.path not in seen:
            seen.add(doc.path)
            docs.append(doc)
    if not docs:
        raise UnreadableFile(f"no row has a non-empty {options.text_field!r} field"
                             + (f" (line {bad[0].line}: {bad[0].reason})" if bad else ""))
    bad_rows.extend(bad)
    return docs


def load_jsonl(path: Path, data: bytes, options: RowOptions, bad_rows: list[BadRow]) -> list[Document]:
    def rows():
        for number, line in enumerate(_decode(data).splitlines(), 1):
            if line.strip():
                try:
                    yield number, json.loads(line)
                except json.JSONDecodeError as exc:
                    yield number, BadRow(str(path), number, f"not JSON ({exc.msg})")

    return _rows_to_documents(path, rows(), options, bad_rows)


def load_csv(path: Path, data: bytes, options: RowOptions, bad_rows: list[BadRow]) -> list[Document]:
    dialect = csv.excel_tab if path.suffix.lower() == ".tsv" else csv.excel
    reader = csv.DictReader(io.StringIO(_decode(data)), dialect=dialect)

    def rows():
        while True:
            try:
                row = next(reader)
            except StopIteration:
                return
            except csv.Error as exc:
                yield reader.line_num, BadRow(str(path), reader.line_num, f"bad CSV ({exc})")
                continue
            yield reader.line_num, row

    try:
        return _rows_to_documents(path, rows(), options, bad_rows)
    except csv.Error as exc:  # the header itself
        raise UnreadableFile(f"bad CSV ({exc})") from exc


Loader = Callable[..., list[Document]]  # (path, data, options), and bad_rows for ROW_LOADERS

#: Formats with one document per row: their loaders also take the list that collects bad rows.
ROW_LOADERS = (load_jsonl, load_csv)

LOADERS: dict[str, Loader] = {
    ".txt": load_text,
    ".text": load_text,
    ".md": load_markdown,
    ".markdown": load_markdown,
    ".rst": load_rst,
    ".rst.txt": load_rst,  # Sphinx copies its sources into the built site as _sources/*.rst.txt
    ".md.txt": load_markdown,
    ".html": load_html,
    ".htm": load_html,
    ".pdf": load_pdf,
    ".jsonl": load_jsonl,
    ".ndjson": load_jsonl,
    ".csv": load_csv,
    ".tsv": load_csv,
}


def demo_corpus() -> Path:
    """The bundled demo corpus: inside the installed package (``search/index_data``), or, in a
    checkout, ``index_data/`` beside the package."""
    package = Path(__file__).resolve().parent
    for folder in (package / "index_data", package.parent / "index_data"):
        if folder.is_dir():
            return folder
    raise FileNotFoundError(f"The demo corpus is not installed (no {package / 'index_data'}); name the files to index.")


def file_hash(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def load_file(path: Path, options: RowOptions | None = None, data: bytes | None = None,
              bad_rows: list[BadRow] | None = None) -> list[Document]:
    """Read one file (or its already-read ``data``) into documents (several for .jsonl/.csv, whose
    rows that cannot be read are appended to ``bad_rows``).

    Unknown suffixes are read as text.
    """
    options = options or RowOptions()
    if data is None or not data.strip():
        data = _read_bytes(path)
    loader = LOADERS.get("".join(path.suffixes[-2:]).lower()) or LOADERS.get(path.suffix.lower(), load_text)
    if loader in ROW_LOADERS:
        docs = loader(path, data, options, [] if bad_rows is None else bad_rows)
    else:
        docs = loader(path, data, options)
    digest, mtime = file_hash(data), path.stat().st_mtime
    for doc in docs:
        doc.source, doc.hash, doc.mtime = str(path), digest, mtime
    return docs


def _matches(path: Path, root: Path, patterns: Iterable[str]) -> bool:
    rel = path.relative_to(root).as_posix() if path != root else path.name
    return any(fnmatch.fnmatch(rel, p) or fnmatch.fnmatch(path.name, p) for p in patterns)


def find_files(
    paths: Iterable[str | os.PathLike],
    include: Iterable[str] = (),
    exclude: Iterable[str] = (),
    ignored: list[Path] | None = None,
    skipped: list[tuple[str, str]] | None = None,
) -> Iterator[Path]:
    """Yield the files under ``paths`` (recursively) that have a loader and pass the globs.

    A file named directly is always yielded (unknown suffixes are read as text); inside folders,
    hidden entries are passed over, and files without a loader too (appended to ``ignored``);
    folders that cannot be read, links in a loop and broken links go to ``skipped`` with the
    reason. Missing paths raise FileNotFoundError.
    """
    include, exclude = list(include), list(exclude)
    skipped = [] if skipped is None else skipped
    seen: set[Path] = set()
    for given in paths:
        root = Path(given).expanduser().resolve()
        if not root.exists():
            raise FileNotFoundError(f"No such file or folder: {given}")
        if root.is_file():
            candidates = [root]
        else:
            visible = _files_below(root, skipped)
            candidates = [p for p in visible if p.suffix.lower() in LOADERS]
            if ignored is not None:
                ignored.extend(p for p in visible if p.suffix.lower() not in LOADERS)
        for path in candidates:
            base = root if root.is_dir() else root.parent
            if include and not _matches(path, base, include):
                continue
            if exclude and _matches(path, base, exclude) or path in seen:
                continue
            seen.add(path)
            yield path


def _files_below(root: Path, skipped: list[tuple[str, str]]) -> list[Path]:
    """The files under ``root`` in name order, hidden entries passed over. Links are followed, each
    folder visited once (a link back up would loop); what cannot be read goes to ``skipped``."""
    files: list[Path] = []
    visited: set[Path] = set()

    def walk(folder: Path) -> None:
        real = folder.resolve()
        if real in visited:
            skipped.append((str(folder), f"link to {real}, a folder already visited"))
            return
        visited.add(real)
        try:
            entries = sorted(os.scandir(folder), key=lambda e: e.name)
        except OSError as exc:
            skipped.append((str(folder), f"cannot read folder: {exc.strerror or exc}"))
            return
        for entry in entries:
            if entry.name.startswith("."):
                continue
            path = Path(entry.path)
            try:
                if entry.is_dir():
                    walk(path)
                elif entry.is_file():
                    files.append(path)
                elif entry.is_symlink():
                    skipped.append((str(path), "broken link"))
            except OSError as exc:  # a link loop on itself, a file gone meanwhile...
                skipped.append((str(path), f"cannot read: {exc.strerror or exc}"))

    walk(root)
    return files
