"""What an entity filter matches and entity counts group by: an entity's key.

Case is folded in every script (SQLite's ``NOCASE`` folds ASCII letters only, so "москва" did not
find "Москва"), and each Russian word is put in its dictionary form (pymorphy3's most likely reading
as a noun or an adjective: names are one or the other), so that "Москва" finds "в Москве" and
"Путин" finds "Путина". Keys need not be grammatical, only the same for every form of a name:
"Российской Федерации" and "Российская Федерация" are both "российский федерация". The stored
entities and the filter's text go through the same function. Without context a name pymorphy3 does
not know can be misread ("Джареда" is taken for a nominative): on the 1,814 entities natasha finds
in XQuAD-ru, 97.8% have the key of the nominative natasha gives them, 94.6% of those not written in
the nominative (docs/results.md).
"""

from __future__ import annotations

import re
from functools import lru_cache

CYRILLIC = re.compile("[\u0400-\u04ff]")


def entity_key(text: str) -> str:
    """``text``'s words, case folded, Russian ones in their dictionary form, 'ё' read as 'е'."""
    return " ".join(_russian_lemma(w) if CYRILLIC.search(w) else w for w in text.casefold().split())


@lru_cache(maxsize=65536)
def _russian_lemma(word: str) -> str:
    readings = _analyzer().parse(word)
    best = next((r for r in readings if r.tag.POS in ("NOUN", "ADJF")), readings[0])
    return best.normal_form.replace("ё", "е")


@lru_cache(maxsize=1)
def _analyzer():
    import pymorphy3

    return pymorphy3.MorphAnalyzer()
