"""BM25 for large indexes: a tantivy index of the passages, beside SQLite's FTS5.

FTS5 (in ``index.db``) computes BM25 for every passage that holds a query word, about 2.5 µs
each: instant on thousands of passages, but 26 ms at p50 at 100,000 and 390 ms at a million.
Tantivy (Lucene's design, in Rust) keeps score bounds per block of postings and skips the blocks
that cannot reach the top n (block-max WAND): 4.9 ms at a million (docs/scale.md). An index of ``TANTIVY_FROM`` passages or more keeps one in ``lexical/``;
smaller ones, and lexical searches with filters (which are SQL), use FTS5.

Like the vector file, it is derived from SQLite, which keeps every passage's text: it records the
store generation it matches (``lexical/generation``, written after each tantivy commit). The
writer brings it up to date after each SQLite commit, from the changes since that generation
(rebuilding it when those are no longer kept); a reader uses it only while it matches the state
the reader sees, and FTS5 otherwise (for the moment between two commits, or after a killed run).
"""

from __future__ import annotations

import os
import re
from pathlib import Path

#: From this many passages on, an index keeps a tantivy index for lexical search.
TANTIVY_FROM = 100_000
FOLDER = "lexical"
GENERATION_FILE = "generation"
INTENT_FILE = "applying"
#: More segments than this at the end of a run, and it waits for tantivy's merges (a million passages
#: settle at 10 to 20 under its merge policy; a search over 14 took 3 ms).
MAX_SEGMENTS = 32
#: Memory tantivy's writer may fill before it writes a segment (it needs 15 MB at least).
WRITER_HEAP = 64_000_000
_NOT_ALPHANUMERIC = re.compile(r"[\W_]+")


def _schema():
    import tantivy

    builder = tantivy.SchemaBuilder()
    builder.add_integer_field("id", stored=False, indexed=True, fast=True)
    # English stemming, as FTS5's porter tokenizer; term frequencies without positions (BM25 needs no more)
    builder.add_text_field("text", stored=False, tokenizer_name="en_stem", index_option="freq")
    return builder.build()


class LexicalIndex:
    """The tantivy index of one index folder."""

    def __init__(self, folder: Path):
        import tantivy

        self.folder = Path(folder)
        self.folder.mkdir(exist_ok=True)
        self.index = tantivy.Index(_schema(), path=str(self.folder), reuse=True)
        self._writer = None
        self._seen = None  # the generation the searcher was last reloaded at

    @staticmethod
    def path(index_folder: Path) -> Path:
        return Path(index_folder) / FOLDER

    @property
    def generation(self) -> int:
        """The store generation this index matches; -1 when none is recorded (being built)."""
        try:
            return int((self.folder / GENERATION_FILE).read_text())
        except (OSError, ValueError):
            return -1

    def apply(self, removed: list[int], added, generation: int, rebuild: bool = False) -> None:
        """Remove passages ``removed``, add ``(id, text)`` pairs (an id in both: removed, then
        added), commit, and record that this is ``generation`` (``rebuild``: start from nothing).

        Tantivy's commit is atomic and the generation is recorded after it: a run killed in between
        leaves an older generation recorded, so readers keep to FTS5 until the next run applies the
        changes since that generation again. That run finds the intent file of the killed one and
        removes each id before adding it, so that none is there twice."""
        import tantivy

        intent = self.folder / INTENT_FILE
        again = intent.exists() and not rebuild  # a killed run may have committed some of these
        intent.write_text(str(generation))
        writer = self._writer_or_new()
        if rebuild:
            writer.delete_all_documents()
        for i in removed:
            writer.delete_documents_by_term("id", int(i))
        for i, text in added:
            if again:
                writer.delete_documents_by_term("id", int(i))
            writer.add_document(tantivy.Document(id=int(i), text=text))
        writer.commit()
        pending = self.folder / (GENERATION_FILE + ".pending")
        pending.write_text(str(generation))
        os.replace(pending, self.folder / GENERATION_FILE)
        intent.unlink()

    def _writer_or_new(self):
        if self._writer is None:
            self._writer = self.index.writer(heap_size=WRITER_HEAP, num_threads=1)
        return self._writer

    def close(self) -> None:
        """Let go of tantivy's writer lock, for the next run of any process (a process that dies
        lets go of it too). Segment merges still running stop there, unless the segments have
        grown many: then they are waited for, which keeps searches and deletions quick."""
        if self._writer is None:
            return
        if self.index.searcher().num_segments > MAX_SEGMENTS:
            self._writer.wait_merging_threads()
        self._writer = None

    def search(self, words: list[str], n: int) -> list[tuple[int, float]]:
        """The top ``n`` passages holding any of ``words`` (content words, ``terms``) by BM25, as
        (id, score)."""
        if not words or n <= 0:
            return []
        generation = self.generation
        if generation != self._seen:
            self.index.reload()
            self._seen = generation
        searcher = self.index.searcher()
        # words split where tantivy's tokenizer splits them (it would make a phrase of "a_b", which
        # needs positions), lower-cased so that none is an operator
        tokens = [t for w in words for t in _NOT_ALPHANUMERIC.split(w.lower()) if t]
        if not tokens:
            return []
        query = self.index.parse_query(" OR ".join(tokens), ["text"])
        hits = searcher.search(query, n, count=False).hits  # count=False: the skipping works
        ids = searcher.fast_field_values("id", [address for _, address in hits])
        return [(int(i), float(score)) for i, (score, _) in zip(ids, hits)]
