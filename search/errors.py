"""Errors a user can act on. The CLI prints their message; nothing else is caught."""


class SearchError(Exception):
    """Base class of every error this package raises on purpose."""


class ModelNotFound(SearchError):
    """No model could be loaded from the given name."""


class ModelMismatch(SearchError):
    """The index was built with another model than the one asked for."""


class IndexNotFound(SearchError):
    """No index exists at the given location."""


class IndexCorrupt(SearchError):
    """The SQLite store and the FAISS vectors disagree, or a file is damaged."""


class UnreadableFile(SearchError):
    """A file cannot be turned into text: binary, empty, undecodable or damaged."""


class IndexWriteError(SearchError):
    """A write to the index failed (disk full, read-only folder...); its committed state is kept."""
