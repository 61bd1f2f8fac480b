"""search: offline-first semantic search over your documents.

The public API::

    from search import Index
    with Index.create("my-index") as index:
        index.add_paths(["docs/"])
        for hit in index.search("when was BERT published?", k=5):
            print(hit.score, hit.path, hit.text)
"""

from .encoders import MeanPoolingEncoder, SentenceTransformerEncoder, load_encoder
from .enrich import Entity, EntityTagger, Label, TextClassifier
from .errors import (
    IndexCorrupt,
    IndexNotFound,
    ModelMismatch,
    ModelNotFound,
    SearchError,
    UnreadableFile,
)
from .index import Index, IndexReport, default_index_path
from .ingest import Document, RowOptions
from .passages import Passage, split_passages
from .reader import Answer, FoundAnswer, Reader
from .retrieval import Hit
from .store import EntityFilter, Filter, LabelFilter

__all__ = [
    "Answer", "FoundAnswer", "Reader", "Document", "Entity", "EntityFilter", "EntityTagger", "Label", "LabelFilter",
    "TextClassifier", "Filter", "Hit", "Index", "IndexCorrupt", "IndexNotFound", "IndexReport", "MeanPoolingEncoder",
    "ModelMismatch", "ModelNotFound", "Passage", "RowOptions", "SearchError", "SentenceTransformerEncoder",
    "UnreadableFile", "default_index_path", "load_encoder", "split_passages",
]
__version__ = "0.1.0"
