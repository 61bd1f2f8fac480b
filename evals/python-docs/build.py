"""Build questions.json, the Python-documentation QA set, from questions.py and the documents, and
heldout.json from heldout.py (questions written later, to check what was chosen on the first).

    python evals/python-docs/build.py CORPUS_FOLDER

CORPUS_FOLDER is the ``_sources`` folder of Debian's python3.11-doc package (see SOURCE.txt). Every
answer must appear verbatim in its document as search parses it; its context is the paragraph that
holds it (of several, the one sharing the most words with the question). An unanswerable question
gets the paragraph of the corpus that shares the most words with it, as a near miss.
"""

from __future__ import annotations

import json
import re
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))
sys.path.insert(0, str(Path(__file__).resolve().parent))

import heldout  # noqa: E402
import questions  # noqa: E402

from search.ingest import load_file  # noqa: E402
from search.terms import content_words  # noqa: E402

HERE = Path(__file__).resolve().parent
LIBRARY = "venv json csv pathlib sqlite3 functions zipfile tempfile shutil random statistics argparse".split()


def corpus_files(folder: Path) -> list[Path]:
    """The documents of the set: the tutorial, the HOWTOs and twelve library pages."""
    files = sorted((folder / "tutorial").glob("*.rst.txt")) + sorted((folder / "howto").glob("*.rst.txt"))
    return files + [folder / "library" / f"{name}.rst.txt" for name in LIBRARY]


def paragraphs(text: str) -> list[tuple[int, int]]:
    """(start, end) of each paragraph (text between blank lines)."""
    return [(m.start(), m.end()) for m in re.finditer(r"[^\n]+(?:\n(?!\n)[^\n]*)*", text)]


def best_paragraph(question: str, text: str, spans: list[tuple[int, int]]) -> tuple[int, int]:
    words = set(content_words(question))
    return max(spans, key=lambda s: len(words & set(content_words(text[s[0]:s[1]]))))


IDENTIFIER = re.compile(r"[A-Za-z_][\w.]*(?:\(\))?")


def code_forms(answer: str, context: str) -> list[str]:
    """Other ways the context writes a code identifier answer, which count as the same answer (the
    SQuAD scorer strips punctuation, so ``Path.cwd()`` would score 0 against ``cwd``): with a
    qualifier (``Path.cwd``), with parentheses and arguments (``shuffle(x)``), or without them."""
    if not IDENTIFIER.fullmatch(answer):
        return []
    base = re.escape(answer.removesuffix("()").rsplit(".", 1)[-1])
    forms = re.finditer(rf"(?<![\w.])(?:\w+\.)*{base}(?:\([^()\n]{{0,40}}\))?(?![\w(])", context)
    return sorted({m.group(0) for m in forms} - {answer})


def build(folder: Path, docs: dict[str, str], answerable: list, unanswerable: list, output: str, prefix: str) -> None:
    articles: dict[str, list[dict]] = {}
    for number, (name, question, answer, *near) in enumerate(answerable, 1):
        text = docs[name]
        found = [m.start() for m in re.finditer(re.escape(answer), text)]
        if not found:
            raise SystemExit(f"{name}: {answer!r} is not in the text")
        holding = [p for p in paragraphs(text) if any(p[0] <= at and at + len(answer) <= p[1] for at in found)]
        lo, hi = best_paragraph(" ".join([question, *near]), text, holding)
        context = text[lo:hi]
        at = next(at for at in found if lo <= at and at + len(answer) <= hi) - lo
        articles.setdefault(name, []).append({"context": context, "qas": [{
            "id": f"{prefix}-{number:03d}", "question": question, "is_impossible": False,
            "answers": [{"text": answer, "answer_start": at}] +
                       [{"text": form, "answer_start": context.index(form)} for form in code_forms(answer, context)]}]})
    everything = [(name, text[lo:hi]) for name, text in docs.items() for lo, hi in paragraphs(text)]
    for number, question in enumerate(unanswerable, 1):
        words = set(content_words(question))
        name, context = max(everything, key=lambda p: len(words & set(content_words(p[1]))))
        articles.setdefault(name, []).append({"context": context, "qas": [{
            "id": f"{prefix}-none-{number:03d}", "question": question, "is_impossible": True, "answers": []}]})
    data = {"version": "v2.0", "corpus": {"source": "Debian python3.11-doc 3.11.2-6+deb12u8, usr/share/doc/python3.11/html/_sources",
                                          "files": [f.relative_to(folder).as_posix() for f in corpus_files(folder)]},
            "data": [{"title": name, "paragraphs": paragraphs_} for name, paragraphs_ in articles.items()]}
    (HERE / output).write_text(json.dumps(data, indent=1, ensure_ascii=False) + "\n")
    print(f"{output}: {len(answerable)} answerable and {len(unanswerable)} unanswerable questions over {len(docs)} documents")


def main(folder: Path) -> None:
    docs = {f.relative_to(folder).as_posix().removesuffix(".rst.txt"): load_file(f)[0].text for f in corpus_files(folder)}
    build(folder, docs, questions.ANSWERABLE, questions.UNANSWERABLE, "questions.json", "pydocs")
    build(folder, docs, heldout.ANSWERABLE, heldout.UNANSWERABLE, "heldout.json", "pydocs-h")


if __name__ == "__main__":
    main(Path(sys.argv[1]))
