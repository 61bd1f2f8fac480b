"""Query words: what lexical search matches (FTS5) and what a result highlights."""

from __future__ import annotations

import re

#: English function words dropped from lexical queries (unless a query has nothing else).
STOPWORDS = frozenset("""
a about above after again against all am an and any are as at be because been before being below between
both but by can could did do does doing down during each few for from further had has have having he her
here hers herself him himself his how i if in into is it its itself just me more most my myself no nor not
now of off on once only or other our ours ourselves out over own same she should so some such than that the
their theirs them themselves then there these they this those through to too under until up very was we
were what when where which while who whom why will with would you your yours yourself yourselves
""".split())

_WORD = re.compile(r"\w+", re.UNICODE)
_SUFFIX = re.compile(r"(ing|ed|es|s|ly)$")


def words(text: str) -> list[str]:
    """The distinct lower-cased words of ``text``, in order."""
    return list(dict.fromkeys(w.lower() for w in _WORD.findall(text)))


def content_words(text: str) -> list[str]:
    """The words of ``text`` that are not stopwords."""
    return [w for w in words(text) if w not in STOPWORDS]


def fts_query(text: str) -> str:
    """An FTS5 query that ORs the content words of ``text`` (all its words when it has only
    stopwords), each quoted: user input never becomes FTS syntax."""
    terms = content_words(text) or words(text)
    return " OR ".join(f'"{t}"' for t in terms)


def highlight_pattern(query: str) -> re.Pattern | None:
    """Words that share a crude stem with a content word of ``query`` (a display aid; the FTS
    index stems with Porter's algorithm)."""
    stems = {_SUFFIX.sub("", w) for w in content_words(query)}
    stems = sorted((s for s in stems if len(s) >= 2), key=len, reverse=True)
    return re.compile(r"\b(" + "|".join(map(re.escape, stems)) + r")\w*", re.I) if stems else None


def highlight_spans(text: str, query: str) -> list[tuple[int, int]]:
    """Where ``highlight_pattern(query)`` matches in ``text``: (start, end) offsets."""
    pattern = highlight_pattern(query)
    return [m.span() for m in pattern.finditer(text)] if pattern else []
