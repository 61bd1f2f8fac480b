"""Dense, lexical and hybrid ranking of passages.

Hybrid retrieval takes the union of the dense and BM25 candidates, gives every candidate its exact
cosine score (lexical-only candidates included), and fuses the two score lists. Two fusions are
available; the default was chosen by measurement on five test collections (docs/results.md).
BM25 judges only passages written in the query's script (Latin or not): across scripts it matches
nothing but numbers and names spelt alike, so passages in another script rank by their dense score.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from functools import partial
from typing import Callable, NamedTuple

import numpy as np

from .filters import Condition
from .language import SAMPLE_CHARS, script
from .lexical import LexicalIndex
from .store import Store
from .terms import content_words, words
from .vectors import VectorIndex

MODES = ("hybrid", "dense", "lexical")
DEFAULT_FUSION = "weighted"
#: Weight of the dense score in the weighted fusion (1 - it for BM25).
DEFAULT_ALPHA = 0.7
RRF_K = 60
#: An approximate vector index brings at least this many candidates more than asked.
APPROXIMATE_EXTRA = 20


@dataclass
class Hit:
    """One retrieved passage, with enough to show it and find it in its document."""

    rank: int
    score: float
    passage_id: int
    document_id: int
    path: str
    title: str
    text: str
    start: int
    end: int
    page: int | None = None
    section: str = ""  # heading path of the passage in its document
    code: bool = False  # the passage is a code block
    language: str = ""  # ISO 639-1 code of the passage's language, "" when unknown
    source: str = ""
    metadata: dict = field(default_factory=dict)
    dense_score: float | None = None
    lexical_score: float | None = None
    rerank_score: float | None = None  # a Reranker's score, when one ordered the hits

    def to_dict(self) -> dict:
        return dict(self.__dict__)


class Ranked(NamedTuple):
    """A passage id with its fused score and the dense and BM25 scores it came from (None: not a candidate there)."""

    passage_id: int
    score: float
    dense: float | None
    lexical: float | None


def minmax(scores: dict[int, float]) -> dict[int, float]:
    if not scores:
        return {}
    lo, hi = min(scores.values()), max(scores.values())
    span = hi - lo
    return {i: (s - lo) / span if span > 0 else 1.0 for i, s in scores.items()}


def weighted_fusion(dense: dict[int, float], lexical: dict[int, float], alpha: float = DEFAULT_ALPHA,
                    unjudged: frozenset[int] = frozenset()) -> dict[int, float]:
    """alpha * min-max(dense) + (1 - alpha) * min-max(BM25); a missing BM25 score counts as 0,
    except for the ``unjudged`` passages (those BM25 cannot read), which count their dense one."""
    d, lex = minmax(dense), minmax(lexical)
    return {i: d[i] if i in unjudged else alpha * d.get(i, 0.0) + (1 - alpha) * lex.get(i, 0.0)
            for i in set(d) | set(lex)}


def rrf_fusion(dense: dict[int, float], lexical: dict[int, float], k: int = RRF_K,
               unjudged: frozenset[int] = frozenset()) -> dict[int, float]:
    """Reciprocal rank fusion: sum of 1 / (k + rank) over the two rankings; the ``unjudged``
    passages count their dense rank twice."""
    out: dict[int, float] = {}
    for scores in (dense, lexical):
        for rank, i in enumerate(sorted(scores, key=scores.get, reverse=True), 1):
            out[i] = out.get(i, 0.0) + (2.0 if i in unjudged else 1.0) / (k + rank)
    return out


@dataclass
class Retriever:
    """Ranks passage ids for a query over one store and its vectors."""

    store: Store
    vectors: VectorIndex
    embed: Callable[[str], np.ndarray]
    fusion: str = DEFAULT_FUSION
    alpha: float = DEFAULT_ALPHA
    nprobe: int | None = None  # lists an approximate (IVF) vector index searches (default: vectors.default_probes)
    lexical_index: LexicalIndex | None = None  # tantivy, for large indexes (lexical)

    def rank(self, query: str, n: int, mode: str = "hybrid", filters: list[Condition] = ()) -> list[Ranked]:
        """The top ``n`` passages, best first."""
        if mode not in MODES:
            raise ValueError(f"Unknown mode {mode!r}; choose one of {', '.join(MODES)}")
        allowed = self.store.allowed_passages(filters) if filters else None
        lexical = self.lexical_scores(query, n, filters) if mode != "dense" else {}
        if mode == "lexical":
            return [Ranked(i, s, None, s) for i, s in sorted(lexical.items(), key=lambda x: -x[1])]
        qvec = self.embed(query)
        dense = self.dense(qvec, n, allowed)
        if mode == "dense":
            return [Ranked(i, s, s, None) for i, s in sorted(dense.items(), key=lambda x: -x[1])]
        lexical, unjudged = self.judged_by_script(query, dense, lexical)
        missing = [i for i in lexical if i not in dense]
        if missing:
            dense.update(self.exact_scores(qvec, missing))
        fuse = rrf_fusion if self.fusion == "rrf" else partial(weighted_fusion, alpha=self.alpha)
        fused = fuse(dense, lexical, unjudged=unjudged)
        top = sorted(fused, key=fused.get, reverse=True)[:n]
        return [Ranked(i, fused[i], dense.get(i), lexical.get(i)) for i in top]

    def judged_by_script(self, query: str, dense: dict[int, float],
                         lexical: dict[int, float]) -> tuple[dict[int, float], frozenset[int]]:
        """Split the candidates by whether BM25 can judge them: the BM25 scores of the passages
        written in ``query``'s script (or without letters), and the dense candidates in another
        script, which fusion then ranks by their dense score alone. Across scripts BM25 matches
        nothing but numbers and names spelt alike, and counting it as a zero buried them under
        any weak match in the query's script: on XQuAD in two languages, English questions found
        their Russian paragraph first 0.085 of the time that way, 0.611 now (docs/results.md)."""
        asked = script(query)
        if not asked or not lexical:
            return lexical, frozenset()
        starts = self.store.text_starts(list(dense.keys() | lexical.keys()), SAMPLE_CHARS)
        other = {i for i, text in starts.items() if script(text) not in (asked, "")}
        return {i: s for i, s in lexical.items() if i not in other}, frozenset(other & dense.keys())

    def dense(self, qvec: np.ndarray, n: int, allowed) -> dict[int, float]:
        """The ``n`` nearest passages with their cosine. An approximate index brings more
        candidates than asked, which the exact vectors then rank."""
        if self.vectors.exact:
            return dict(self.vectors.search(qvec, n, allowed))
        found = self.vectors.search(qvec, max(2 * n, n + APPROXIMATE_EXTRA), allowed, self.nprobe)
        scores = self.exact_scores(qvec, [i for i, _ in found])
        return dict(sorted(scores.items(), key=lambda x: -x[1])[:n])

    def exact_scores(self, qvec: np.ndarray, ids: list[int]) -> dict[int, float]:
        """The cosine of passages ``ids`` to the query, from their stored vectors (of those that
        exist: the lexical index may be a commit ahead of what this search reads)."""
        if not ids:
            return {}
        present, matrix = self.store.vectors_of(ids)
        return dict(zip(present, (matrix @ qvec.reshape(-1)).tolist()))

    def lexical_scores(self, query: str, n: int, filters: list[Condition]) -> dict[int, float]:
        """The top ``n`` passages by BM25: from the tantivy index when there is one and no filter, else FTS5."""
        if self.lexical_index is not None and not filters:
            return dict(self.lexical_index.search(content_words(query) or words(query), n))
        return dict(self.store.lexical(query, n, filters))
