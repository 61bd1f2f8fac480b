"""search: offline-first semantic search over your documents.

The public API::

    from search import Index
    with Index.create("my-index") as index:
        index.add_paths(["docs/"])
        for hit in index.search("when was BERT published?", k=5):
            print(hit.score, hit.path, hit.text)
"""

from .classification import Label, TextClassifier
from .encoders import MeanPoolingEncoder, SentenceTransformerEncoder, load_encoder
from .errors import (
    IndexCorrupt,
    IndexNotFound,
    IndexWriteError,
    ModelMismatch,
    ModelNotFound,
    SearchError,
    UnreadableFile,
)
from .filters import EntityFilter, Filter, LabelFilter
from .index import Index, default_index_path
from .ingest import Document, RowOptions
from .passages import Passage, split_passages
from .reader import Answer, FoundAnswer, Reader
from .reranker import Reranker
from .retrieval import Hit
from .tagging import Entity, EntityTagger
from .writer import IndexReport

__all__ = [
    "Answer", "FoundAnswer", "Reader", "Reranker", "Document", "Entity", "EntityFilter", "EntityTagger", "Label", "LabelFilter",
    "TextClassifier", "Filter", "Hit", "Index", "IndexCorrupt", "IndexNotFound", "IndexReport", "IndexWriteError", "MeanPoolingEncoder",
    "ModelMismatch", "ModelNotFound", "Passage", "RowOptions", "SearchError", "SentenceTransformerEncoder",
    "UnreadableFile", "default_index_path", "load_encoder", "split_passages",
]
__version__ = "0.1.0"
