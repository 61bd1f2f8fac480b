"""Documents -> passages that fit the encoder's window, cut at sentence boundaries where possible.

Splitting happens in token space with the encoder's own tokenizer, so a passage never exceeds the
model's window; every passage keeps the character offsets of its text in the document.
"""

from __future__ import annotations

import bisect
import re
from dataclasses import dataclass

# A sentence starts after ., ! or ? (and closing quotes/brackets) followed by white space, or
# after a blank line or a line break that precedes a list item or heading.
_SENTENCE_BREAK = re.compile(r"""(?<=[.!?])["')\]]*\s+|\n\s*\n\s*|\n(?=\s*(?:[-*+#]|\d+[.)])\s)""")


@dataclass(frozen=True)
class Passage:
    text: str
    start: int
    end: int
    page: int | None = None
    section: str | None = None  # heading path in a document with sections (Markdown, reST, HTML), else None
    code: bool = False  # a code block


def sentence_starts(text: str) -> list[int]:
    """Character offsets where sentences begin (always including 0)."""
    return [0] + [m.end() for m in _SENTENCE_BREAK.finditer(text) if m.end() < len(text)]


def token_offsets(tokenizer, text: str) -> list[tuple[int, int]]:
    """The character offsets of the tokens of ``text``, without special tokens, by a
    ``tokenizers.Tokenizer`` (without truncation) or a transformers tokenizer."""
    if hasattr(tokenizer, "encode_batch"):  # tokenizers.Tokenizer: no transformers import
        return tokenizer.encode(text, add_special_tokens=False).offsets
    return tokenizer(text, add_special_tokens=False, return_offsets_mapping=True, verbose=False)["offset_mapping"]


def split_passages(text: str, tokenizer, max_tokens: int = 254, overlap: int = 32) -> list[Passage]:
    """Split ``text`` into passages of at most ``max_tokens`` tokens of ``tokenizer`` (see
    ``token_offsets``).

    A passage ends at the last sentence start in its second half when there is one, else before
    a word: never inside one (SentencePiece tokenizers cut "Дюпон" into "▁Д", "ю", "пон").
    """
    if max_tokens < 8:
        raise ValueError("max_tokens must be at least 8")
    overlap = max(0, min(overlap, max_tokens // 2))
    offsets = [(s, e) for s, e in token_offsets(tokenizer, text) if e > s]
    n = len(offsets)
    if n == 0:
        return []
    token_starts = [s for s, _ in offsets]
    boundaries = sorted({bisect.bisect_left(token_starts, c) for c in sentence_starts(text)} - {n})
    words = [t for t, s in enumerate(token_starts) if t == 0 or text[s].isspace() or text[s - 1].isspace()]
    passages, i = [], 0
    while i < n:
        end = min(i + max_tokens, n)
        if end < n:
            lo = bisect.bisect_right(boundaries, i + max_tokens // 2)
            hi = bisect.bisect_right(boundaries, end)
            end = boundaries[hi - 1] if hi > lo else _word_start(words, end, i + 1)
        start_char, end_char = offsets[i][0], offsets[end - 1][1]
        start_char += len(text[start_char:end_char]) - len(text[start_char:end_char].lstrip())  # "▁Д" holds the space
        passages.append(Passage(text[start_char:end_char], start_char, end_char))
        if end >= n:
            break
        i = max(_word_start(words, _next_start(boundaries, end, overlap), i + 1), i + 1)
    return passages


def _word_start(words: list[int], token: int, lowest: int) -> int:
    """The last token that starts a word at or before ``token``, if it is above ``lowest``; else ``token``."""
    k = bisect.bisect_right(words, token) - 1
    return words[k] if k >= 0 and words[k] >= lowest else token


def _next_start(boundaries: list[int], end: int, overlap: int) -> int:
    """Where the passage after one ending at token ``end`` begins.

    At the first sentence start within the last ``overlap`` tokens (whole sentences overlap);
    else at ``end`` when the cut fell on a sentence start; else ``overlap`` tokens back.
    """
    j = bisect.bisect_left(boundaries, end - overlap)
    if j < len(boundaries) and boundaries[j] < end:
        return boundaries[j]
    k = bisect.bisect_left(boundaries, end)
    if k < len(boundaries) and boundaries[k] == end:
        return end
    return end - overlap
