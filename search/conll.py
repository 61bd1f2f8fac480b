"""CoNLL-2003 NER data: reading, IOB1 -> BIO, sentences packed into runs of their document, and
raw text split into words as CoNLL splits them."""

from __future__ import annotations

import re
from pathlib import Path

from .errors import SearchError

#: A CoNLL sentence: its words and their BIO tags.
Sentence = tuple[list[str], list[str]]


def iob1_to_bio(tags: list[str]) -> list[str]:
    """IOB1 (I- inside, B- only between two adjacent entities of a type) -> BIO (B- starts every entity)."""
    out = []
    for i, tag in enumerate(tags):
        if tag.startswith("I-"):
            previous = out[i - 1] if i else "O"
            if previous == "O" or previous[2:] != tag[2:]:
                tag = "B-" + tag[2:]
        out.append(tag)
    return out


def read_conll_documents(path: str | Path) -> list[list[Sentence]]:
    """Documents (split at ``-DOCSTART-`` lines) of sentences (words, BIO tags) from a CoNLL file
    (word first, tag last on each line, a blank line after each sentence)."""
    documents, sentences, words, tags = [], [], [], []
    try:
        lines = Path(path).read_text(encoding="utf-8").splitlines()
    except (OSError, UnicodeDecodeError) as exc:
        raise SearchError(f"Cannot read {path}: {exc}") from exc
    for line in lines + ["-DOCSTART-"]:
        parts = line.split()
        if not parts or parts[0] == "-DOCSTART-":
            if words:
                sentences.append((words, iob1_to_bio(tags)))
            if parts and sentences:
                documents.append(sentences)
                sentences = []
            words, tags = [], []
            continue
        words.append(parts[0])
        tags.append(parts[-1])
    if not documents:
        raise SearchError(f"{path} has no CoNLL sentences (one 'word ... tag' per line, blank lines between)")
    return documents


def pack_sentences(tokenizer, documents: list[list[Sentence]],
                   max_length: int) -> list[Sentence]:
    """Runs of consecutive sentences of a document joined while they fit in ``max_length`` tokens.

    The tagger then sees each sentence in its context, as it sees multi-sentence passages at index
    time (CoNLL test: docs/results.md). A sentence longer than the window stays alone (and is cut).
    """
    packed = []
    for document in documents:
        sizes = [len(ids) for ids in tokenizer([w for w, _ in document], is_split_into_words=True,
                                               add_special_tokens=False)["input_ids"]]
        words, tags, size = [], [], 0
        for (w, t), n in zip(document, sizes):
            if words and size + n > max_length - 2:
                packed.append((words, tags))
                words, tags, size = [], [], 0
            words, tags, size = words + w, tags + t, size + n
        packed.append((words, tags))
    return packed


def unpack_tags(documents: list[list[Sentence]], packed_tags: list[list[str]]) -> list[list[str]]:
    """Per-sentence tags back from the tags of ``pack_sentences``' runs (same documents, same order)."""
    flat = iter(tag for tags in packed_tags for tag in tags)
    return [[next(flat) for _ in words] for document in documents for words, _ in document]


#: Words as CoNLL splits them: acronyms with their dots (U.S.), words joined by - & or an apostrophe
#: (Anglo-Dutch, AT&T, O'Neill) but 's on its own, and every other character that is not a space alone.
WORD = re.compile(r"(?:[A-Z]\.){2,}|\w+(?:[-&]\w+|['’](?![sS]\b)\w+)*|['’][sS]\b|\S")


def split_words(text: str) -> list[tuple[int, str]]:
    """The words of raw text (``WORD``) with their character offsets, as the tagger was trained on them."""
    return [(m.start(), m.group()) for m in WORD.finditer(text)]
