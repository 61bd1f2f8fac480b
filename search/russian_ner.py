"""Russian named entities: natasha's news NER (slovnet, on navec word vectors; both ship inside the
natasha wheel, no download), for the passages whose language is Russian. It tags PER, LOC and ORG
and gives no probabilities (``Entity.score`` is None).
"""

from __future__ import annotations

from functools import cached_property
from typing import Sequence

from .tagging import Entity

#: The languages this tagger reads.
LANGUAGES = frozenset({"ru"})


class RussianEntityTagger:
    """``RussianEntityTagger().tag(texts)``: whole entities with character offsets, as ``EntityTagger``."""

    @cached_property
    def _tagger(self):
        from natasha import NewsEmbedding, NewsNERTagger

        return NewsNERTagger(NewsEmbedding())

    def tag(self, texts: Sequence[str]) -> list[list[Entity]]:
        markups = self._tagger.map([text if text.strip() else "" for text in texts])
        return [[Entity(text[s.start : s.stop], s.type, s.start, s.stop, None) for s in markup.spans]
                for text, markup in zip(texts, markups)]
