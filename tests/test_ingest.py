import json

import pytest

from search.errors import UnreadableFile
from search.ingest import RowOptions, find_files, load_file


def make_pdf(path, pages):
    from fpdf import FPDF

    pdf = FPDF()
    for text in pages:
        pdf.add_page()
        pdf.set_font("Helvetica", size=12)
        pdf.multi_cell(0, 8, text)
    pdf.output(str(path))
    return path


def test_text_and_markdown(corpus):
    (doc,) = load_file(corpus / "bert.md")
    assert doc.title == "BERT"
    assert "published in 2018" in doc.text
    assert doc.source == str(corpus / "bert.md") and len(doc.hash) == 64


def test_a_text_files_title_is_its_first_line_with_its_runs_of_blanks_made_one(tmp_path):
    page = tmp_path / "ls.1.txt"  # a man page as `man ls | col -b` writes it
    page.write_text("LS(1)\t\t\t\tUser Commands\t\t\t\tLS(1)\n\nNAME\n       ls - list directory contents\n")
    (doc,) = load_file(page)
    assert doc.title == "LS(1) User Commands LS(1)"


def test_html_strips_markup_and_scripts(corpus):
    (doc,) = load_file(corpus / "sub" / "plant.html")
    assert doc.title == "Plants"
    assert doc.text == "A plant turns sun light and water into energy."


def test_html_blocks_are_paragraphs_and_inline_elements_stay_in_their_sentence(tmp_path):
    path = tmp_path / "page.html"
    path.write_text("<nav><a href='/'>Home</a></nav><h1>FAISS</h1>\n<p>The simplest index, <code>IndexFlatIP</code>,\n"
                    "compares <b>every</b> vector.</p><ul><li>one</li><li>two</li></ul>")
    (doc,) = load_file(path)
    assert doc.text == "FAISS\n\nThe simplest index, IndexFlatIP, compares every vector.\n\none\n\ntwo"
    assert doc.title == "FAISS"  # no <title>: the first heading; the navigation is left out


@pytest.mark.parametrize("encoding, text", [
    ("latin-1", "Le café est une boisson très appréciée en France. On le boit après le déjeuner."),
    ("cp1251", "Москва является столицей России. Это крупнейший город страны."),
    ("utf-16", "A text saved as UTF-16, with its byte order mark."),
])
def test_text_that_is_not_utf8_is_decoded_by_detection(tmp_path, encoding, text):
    path = tmp_path / "legacy.txt"
    path.write_bytes(text.encode(encoding))
    assert load_file(path)[0].text == text


def test_pdf_keeps_pages(tmp_path):
    path = make_pdf(tmp_path / "two.pdf", ["Page one talks about cats.", "Page two talks about dogs."])
    (doc,) = load_file(path)
    assert len(doc.pages) == 2
    second = doc.text[doc.pages[1]:]
    assert "dogs" in second and "cats" not in second


def test_jsonl_rows_become_documents_with_metadata(corpus):
    docs = load_file(corpus / "rows.jsonl")
    assert [d.path for d in docs] == [f"{corpus / 'rows.jsonl'}#m1", f"{corpus / 'rows.jsonl'}#m2"]
    assert docs[0].metadata == {"id": "m1", "topic": "space", "year": 1969}
    assert docs[1].text.startswith("Everest")


def test_csv_with_custom_fields(tmp_path):
    path = tmp_path / "t.csv"
    path.write_text("key,body,lang\nk1,Hello there,en\nk2,,en\nk3,Bonjour,fr\n")
    bad = []
    docs = load_file(path, RowOptions(text_field="body", id_field="key"), bad_rows=bad)
    assert [d.path.split("#")[1] for d in docs] == ["k1", "k3"]  # the empty row is left out ...
    assert docs[1].metadata["lang"] == "fr"
    assert [(b.line, b.reason) for b in bad] == [(3, "no text in its 'body' field")]  # ... and reported


def test_bad_jsonl_rows_are_reported_and_the_good_ones_kept(tmp_path):
    path = tmp_path / "rows.jsonl"
    path.write_text('{"text": "first"}\n{not json\n\n[1, 2]\n{"title": "no text"}\n{"text": "last"}\n')
    bad = []
    docs = load_file(path, bad_rows=bad)
    assert [d.text for d in docs] == ["first", "last"]
    assert [(b.source, b.line) for b in bad] == [(str(path), 2), (str(path), 4), (str(path), 5)]
    assert bad[0].reason.startswith("not JSON") and bad[1].reason == "not an object"


def test_index_reports_bad_rows_and_indexes_the_rest(run, tmp_path, tiny_model):
    path = tmp_path / "rows.jsonl"
    path.write_text("".join(f'{{"id": "r{i}", "text": "row number {i}"}}\n' if i != 3 else "{broken\n" for i in range(6)))
    result = run("index", path, "--model", tiny_model)
    assert "5 documents" in result.output and "1 bad rows left out" in result.output
    assert "line 4: not JSON" in result.output  # stderr, mixed in by CliRunner
    report = json.loads(run("index", path, "--model", tiny_model, "--json").output)  # unchanged file: nothing new
    assert report["unchanged"] == 1 and report["bad_rows"] == []


@pytest.mark.parametrize(
    "name, content, reason",
    [
        ("empty.txt", b"  \n", "empty"),
        ("binary.txt", b"abc\x00\x01\x02def", "binary"),
        ("noise.txt", bytes(range(256)) * 8, "binary"),
        ("broken.pdf", b"%PDF-1.4\nthis is not really a pdf", "PDF"),
        ("bad.jsonl", b'{not json\n', "line 1: not JSON"),
        ("notext.jsonl", b'{"title": "no text field"}\n', "text"),
    ],
)
def test_bad_files_raise_unreadable(tmp_path, name, content, reason):
    path = tmp_path / name
    path.write_bytes(content)
    with pytest.raises(UnreadableFile, match=reason):
        load_file(path)


def test_find_files_recurses_filters_and_skips_hidden(corpus):
    (corpus / ".hidden").mkdir()
    (corpus / ".hidden" / "secret.txt").write_text("hidden")
    (corpus / "image.png").write_bytes(b"\x89PNG")
    names = sorted(p.name for p in find_files([corpus]))
    assert names == ["bert.md", "cat.txt", "plant.html", "rows.jsonl"]
    assert [p.name for p in find_files([corpus], include=["*.md"])] == ["bert.md"]
    assert "plant.html" not in [p.name for p in find_files([corpus], exclude=["sub/*"])]


def test_find_files_yields_each_file_once(corpus):
    files = list(find_files([corpus, corpus / "cat.txt", corpus]))
    assert len(files) == len(set(files)) == 4


def test_find_files_missing_path(tmp_path):
    with pytest.raises(FileNotFoundError, match="nope"):
        list(find_files([tmp_path / "nope"]))
