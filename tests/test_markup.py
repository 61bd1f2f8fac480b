"""Markdown, reStructuredText and HTML become plain text with sections; passages keep to them."""

import re

import pytest

from search.ingest import load_file
from search.markup import assemble, markdown_blocks, rst_blocks

MARKDOWN = """---
title: front matter is not text
---
(install)=
# Install **search**

Run `pip install search`, or see {ref}`the options <options>` and [the docs](https://example.org).

```bash
pip install search
```

## Options

| flag | meaning |
|---|---|
| `-k` | how *many* |

```{note}
:class: tip
Notes are *prose*.
```
"""

RST = """.. _cli:

Command line
============

Use :func:`search.index` or :meth:`~search.Index.open`; see :ref:`the API <api>`.
A :class:`.Index` holds :file:`.search/` and :mod:`.search`.

.. versionchanged:: 2.1
   The ``--json`` option.

Indexing
--------

Run this::

   search index docs/

.. code-block:: bash

   search query "attention"

.. function:: search(query, k=10)

   Return the *k* best passages.

.. note:: Prose in a note.

.. toctree::

   api
"""


def test_markdown_drops_markup_and_keeps_code_blocks_as_sections():
    parsed = assemble(markdown_blocks(MARKDOWN))
    assert parsed.title == "Install search"
    assert parsed.text == ("Install search\n\nRun pip install search, or see the options and the docs.\n\n"
                           "pip install search\n\nOptions\n\nflag | meaning\n-k | how many\n\nNotes are prose.")
    sections = [(parsed.text[s.start:s.end].split("\n")[0], s.path, s.code) for s in parsed.sections]
    assert sections == [("Install search", "", False), ("pip install search", "", True), ("Options", "Options", False)]


def test_rst_drops_labels_roles_and_directives_and_keeps_their_text():
    parsed = assemble(rst_blocks(RST))
    assert parsed.title == "Command line"
    assert "Use search.index() or open(); see the API." in parsed.text  # :func: and :meth: get () as in Sphinx
    assert "A Index holds .search/ and search." in parsed.text  # a leading dot of a Python role only says where to look
    assert "Changed in version 2.1: The --json option." in parsed.text
    assert "search(query, k=10)\n\nReturn the k best passages." in parsed.text
    assert "Prose in a note." in parsed.text
    assert not re.search(r":\w+:`|``|\.\. |_cli|toctree|\bapi\b", parsed.text)
    code = [parsed.text[s.start:s.end] for s in parsed.sections if s.code]
    assert code == ["search index docs/", 'search query "attention"']
    assert {s.path for s in parsed.sections} == {"", "Indexing"}


def test_an_html_page_is_titled_by_its_h1_rather_than_its_site_suffixed_title(tmp_path):
    page = tmp_path / "page.html"
    page.write_text("<html><head><title>subprocess — Python 3.11.2 documentation</title></head><body>"
                    "<div role='main'><h1>subprocess</h1><p>Run programs.</p></div></body></html>")
    assert load_file(page)[0].title == "subprocess"


def test_html_keeps_the_main_content_and_its_headings(tmp_path):
    page = tmp_path / "page.html"
    page.write_text("<html><head><title>Guide</title></head><body><div class='sphinxsidebar'>Contents</div>"
                    "<div role='main'><h1>Guide<a class='headerlink' href='#g'>¶</a></h1><p>Intro.</p>"
                    "<h2>Setup</h2><p>Install it:</p><pre>pip install x\n</pre></div>"
                    "<footer>© 2026</footer></body></html>")
    (doc,) = load_file(page)
    assert doc.title == "Guide"
    assert doc.text == "Guide\n\nIntro.\n\nSetup\n\nInstall it:\n\npip install x"
    assert [(doc.text[s.start:s.end], s.path, s.code) for s in doc.sections] == [
        ("Guide\n\nIntro.", "", False), ("Setup\n\nInstall it:", "Setup", False), ("pip install x", "Setup", True)]


@pytest.mark.parametrize("name", ["guide.md", "guide.rst", "_sources/guide.rst.txt"])
def test_files_are_read_by_their_format(tmp_path, name):
    path = tmp_path / name
    path.parent.mkdir(exist_ok=True)
    path.write_text(MARKDOWN if name.endswith(".md") else RST)
    (doc,) = load_file(path)
    assert doc.title in ("Install search", "Command line") and "``" not in doc.text and "**" not in doc.text
    assert all(0 <= s.start < s.end <= len(doc.text) for s in doc.sections)


def test_passages_keep_to_their_sections_and_carry_the_path(tmp_path, tiny_model):
    from search import Index

    (tmp_path / "docs").mkdir()
    (tmp_path / "docs" / "guide.rst").write_text(RST)
    with Index.create(tmp_path / "ix", model=tiny_model) as index:
        index.add_paths([tmp_path / "docs"])
        hits = index.search("search index docs", k=20, mode="lexical")
        text = index.store.db["documents"].get(hits[0].document_id)["text"]
        (doc,) = load_file(tmp_path / "docs" / "guide.rst")
        for hit in hits:
            assert text[hit.start:hit.end] == hit.text
            assert any(s.start <= hit.start and hit.end <= s.end and s.path == hit.section and s.code == hit.code
                       for s in doc.sections)
        assert any(h.code and h.text == "search index docs/" and h.section == "Indexing" for h in hits)


def test_sphinx_info_fields_and_line_blocks_read_as_sphinx_shows_them():
    source = """Title
=====

.. function:: connect(database, \\
              timeout=5.0)

   Open a connection.

   :param database: The path.
   :type database: str
   :param float timeout: How long to wait.
   :raises ValueError: When it is wrong.
   :rtype: Connection

| **A**
| :func:`abs`
| :func:`all`
"""
    text = assemble(rst_blocks(source)).text
    assert "connect(database, timeout=5.0)" in text  # the signature's line continuation is gone
    assert "database: The path." in text and "type of database: str" in text
    assert "timeout (float): How long to wait." in text and "Raises ValueError: When it is wrong." in text
    assert "Return type: Connection" in text and "param" not in text
    assert "A abs() all()" in text  # the lines of a line block stay apart
