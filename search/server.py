"""``search serve``: the HTTP API and the web page over an index, a thin layer over ``Index`` (FastAPI).

Index calls run one at a time on one worker thread: an SQLite connection belongs to the thread that
opened it, and on a small CPU one search at a time is faster than several fighting for the cores.
The event loop stays free meanwhile for /health and the page's files.

The server only reads. Another process may write to the index while it serves: every request sees
the last committed state (``Index.search`` catches up with each commit), a replaced or new index is
opened on the next request, and a missing or damaged one answers 503 until it is back.
"""

from __future__ import annotations

import asyncio
import logging
import sqlite3
from concurrent.futures import ThreadPoolExecutor
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Annotated, Callable, Literal

from fastapi import FastAPI, Query, Request, Response
from fastapi.exceptions import RequestValidationError
from fastapi.openapi.docs import get_swagger_ui_html
from fastapi.responses import FileResponse, JSONResponse
from fastapi.staticfiles import StaticFiles
from starlette.exceptions import HTTPException

from .errors import IndexCorrupt, IndexNotFound, ModelNotFound, SearchError
from .exported import set_threads, sustained_backend
from .filters import from_options
from .index import DB_NAME, Index, default_index_path
from .terms import highlight_spans

__all__ = ["ServedIndex", "create_app"]

log = logging.getLogger("search.server")

#: Limits on what one request may ask for.
MAX_QUERY_CHARS = 1000
MAX_K = 100
MAX_ANSWERS = 10

WEB = Path(__file__).parent / "web"


class Unavailable(SearchError):
    """The index cannot be served now (missing, damaged, its model absent): HTTP 503."""


class NotFound(SearchError):
    """HTTP 404."""


class ServedIndex:
    """The index a server reads: opened on first need, reopened when its database file is
    replaced, every call on one worker thread."""

    def __init__(self, path=None, reader: str | None = None, precision: str = "auto", backend: str = "auto",
                 threads: int | None = None, reranker: str | None = None, rerank_depth: int = 30):
        """``threads``: how many threads the models use for one request (None: the runtime's
        default, one per core). ``reranker``: a cross-encoder that reorders every request's hits
        (unless the request says ``rerank=false``)."""
        if threads:
            set_threads(threads)
        self.path = Path(path) if path else default_index_path()
        self.reader_model = reader
        self.reranker_model, self.rerank_depth = reranker, rerank_depth
        self.precision = precision
        self.backend = sustained_backend(backend, precision)  # a server starts once: the fastest when warm
        self._index: Index | None = None
        self._inode: int | None = None
        self._reader = None  # (what it was chosen by, the Reader)
        self._reranker = None
        self._worker = ThreadPoolExecutor(1, thread_name_prefix="search-index")

    async def run(self, work: Callable):
        """``work(index)`` on the worker thread."""
        return await asyncio.get_running_loop().run_in_executor(self._worker, self._call, work)

    def _call(self, work: Callable):
        index = self._current()
        try:
            return work(index)
        except (IndexCorrupt, ModelNotFound, sqlite3.DatabaseError) as exc:
            self._drop()
            raise Unavailable(f"The index at {self.path} cannot be read: {exc}") from exc

    def _current(self) -> Index:
        try:
            inode = (self.path / DB_NAME).stat().st_ino
        except FileNotFoundError:
            self._drop()
            raise Unavailable(f"No index at {self.path}. Create one with `search index PATHS`.") from None
        if self._index is None or inode != self._inode:
            self._drop()
            try:
                self._index = Index.open(self.path, precision=self.precision, backend=self.backend)
            except (IndexNotFound, IndexCorrupt) as exc:
                raise Unavailable(str(exc)) from exc
            self._inode = inode
        self._index.refresh()
        return self._index

    def _drop(self) -> None:
        if self._index is not None:
            self._index.close()
            self._index = None

    def reader_for(self, index: Index):
        """The reader ``--reader`` named, or the index's default (``Index.default_reader``), each
        loaded once (on the worker thread)."""
        from .reader import Reader

        key = self.reader_model or index.meta["model"]
        if self._reader is None or self._reader[0] != key:
            options = dict(precision=self.precision, backend=self.backend)
            reader = Reader(self.reader_model, **options) if self.reader_model else index.default_reader(**options)
            self._reader = (key, reader)
        return self._reader[1]

    @property
    def reranker(self):
        """The reranker (None without one), loaded once (on the worker thread)."""
        if self._reranker is None and self.reranker_model:
            from .reranker import Reranker

            self._reranker = Reranker(self.reranker_model, depth=self.rerank_depth, precision=self.precision,
                                      backend=self.backend)
        return self._reranker

    def warm(self) -> None:
        """Load the encoder, the reader and the reranker now rather than at the first request (when the index exists)."""
        self._worker.submit(self._call, lambda index: index.ask("warm up", k=1, reader=self.reader_for(index),
                                                                threshold=None, reranker=self.reranker)).result()

    def close(self) -> None:
        self._worker.submit(self._drop).result()
        self._worker.shutdown()


def _threshold(value: str | None) -> float | str | None:
    """``off`` (always answer), a confidence from 0 to 1, or absent (the reader's default)."""
    if value is None or value == "default":
        return "default"
    if value == "off":
        return None
    try:
        number = float(value)
    except ValueError:
        raise ValueError(f"threshold is a confidence from 0 to 1, 'off' or 'default', not {value!r}") from None
    if not 0 <= number <= 1:
        raise ValueError(f"threshold {number} is not between 0 and 1")
    return number


# The query parameters /search and /ask share.
Q = Annotated[str, Query(min_length=1, max_length=MAX_QUERY_CHARS, description="What to search for, in plain language.")]
Mode = Annotated[Literal["hybrid", "dense", "lexical"], Query(description="hybrid: meaning and words; dense: meaning; lexical: words (BM25).")]
Filters = Annotated[list[str], Query(description="FIELD=VALUE: path/title/source glob, metadata field, or language=ru (repeatable).")]
Entities = Annotated[list[str], Query(description="[LABEL=]TEXT: passages mentioning this entity (repeatable).")]
EntityLabels = Annotated[list[str], Query(description="PER, ORG, LOC, MISC: passages mentioning any entity of this type.")]
Sentiment = Annotated[Literal["positive", "negative"] | None, Query(description="Passages of this sentiment.")]
Labels = Annotated[list[str], Query(description="TASK=LABEL: passages a classifier gave this label (repeatable).")]
Rerank = Annotated[bool, Query(description="Reorder the hits with the server's reranker (`search serve --rerank`;"
                                           " without one, no effect).")]


def _error(status: int, message: str) -> JSONResponse:
    return JSONResponse({"error": message, "status": status}, status_code=status)


def _describe(exc: RequestValidationError) -> str:
    parts = []
    for e in exc.errors():
        where = ".".join(str(x) for x in e.get("loc", ())[1:]) or "request"
        parts.append(f"{where}: {e.get('msg', 'invalid')}")
    return "; ".join(parts)


def create_app(served: ServedIndex) -> FastAPI:
    """The FastAPI application over ``served`` (which it closes at shut-down)."""

    @asynccontextmanager
    async def lifespan(app):
        yield
        served.close()

    app = FastAPI(title="search", summary="Semantic search and answers over an index of your documents.",
                  docs_url=None, redoc_url=None, lifespan=lifespan)

    @app.exception_handler(RequestValidationError)
    async def bad_request(request: Request, exc: RequestValidationError):
        return _error(400, _describe(exc))

    @app.exception_handler(HTTPException)
    async def http_error(request: Request, exc: HTTPException):
        return _error(exc.status_code, str(exc.detail))

    @app.exception_handler(SearchError)
    @app.exception_handler(ValueError)
    async def refused(request: Request, exc: Exception):
        status = 503 if isinstance(exc, Unavailable) else 404 if isinstance(exc, NotFound) else 400
        return _error(status, str(exc))

    @app.exception_handler(Exception)
    async def failed(request: Request, exc: Exception):
        log.error("Error serving %s", request.url.path, exc_info=exc)
        return _error(500, "Internal error: the server's log says more.")

    @app.get("/search", summary="The k best passages for q, as `search query --json`, each with `highlights`"
                                " (the query words' offsets in its text).")
    async def search(q: Q, k: Annotated[int, Query(ge=1, le=MAX_K)] = 10, mode: Mode = "hybrid",
                     filter: Filters = [], entity: Entities = [], entity_label: EntityLabels = [],
                     sentiment: Sentiment = None, label: Labels = [], per_doc: bool = False, rerank: Rerank = True):
        conditions = from_options(filter, entity, entity_label, sentiment, label)
        hits = await served.run(lambda index: index.search(q, k=k, mode=mode, filters=conditions, per_doc=per_doc,
                                                           reranker=served.reranker if rerank else None))
        return [h.to_dict() | {"highlights": highlight_spans(h.text, q)} for h in hits]

    @app.get("/ask", summary="Answers to q with their spans, as `search ask --json`: an empty list when none is"
                             " confident enough, with the header X-Search-Note when the reader does not read the"
                             " question's language or the passages'.")
    async def ask(response: Response, q: Q,
                  k: Annotated[int, Query(ge=1, le=MAX_K, description="Passages to read.")] = 5,
                  answers: Annotated[int, Query(ge=1, le=MAX_ANSWERS)] = 1,
                  threshold: Annotated[str | None, Query(description="A confidence from 0 to 1 below which there is"
                                                         " no answer; 'off' always answers.")] = None,
                  mode: Mode = "hybrid", filter: Filters = [], entity: Entities = [],
                  entity_label: EntityLabels = [], sentiment: Sentiment = None, label: Labels = [],
                  rerank: Rerank = True):
        conditions = from_options(filter, entity, entity_label, sentiment, label)
        limit = _threshold(threshold)

        def answer(index):
            from .reader import answers_from_hits

            reader = served.reader_for(index)
            hits = index.search(q, k=k, mode=mode, filters=conditions, reranker=served.reranker if rerank else None)
            found = answers_from_hits(reader, q, hits, answers, threshold=limit)
            return found, None if found else reader.unread_language(q, hits)

        found, note = await served.run(answer)
        if note:
            response.headers["X-Search-Note"] = note
        return [f.to_dict() for f in found]

    @app.get("/documents/{document_id}", summary="A document's text and metadata; `highlight` is the span of"
                                                  " `passage` (one of its passages) or `start`-`end`.")
    async def document(document_id: int, passage: int | None = None,
                       start: Annotated[int | None, Query(ge=0)] = None, end: Annotated[int | None, Query(ge=0)] = None):
        found = await served.run(lambda index: index.document(document_id, passage))
        if found is None:
            raise NotFound(f"No document {document_id} in the index.")
        if start is not None and end is not None:
            if not start <= end <= len(found["text"]):
                raise ValueError(f"start and end must satisfy 0 <= start <= end <= {len(found['text'])}")
            found["highlight"] = {"start": start, "end": end}
        return found

    @app.get("/facets", summary="What results can be filtered by, with counts: metadata fields, languages,"
                                " labels (sentiment...) and the most frequent entities.")
    async def facets():
        return await served.run(lambda index: index.facets())

    @app.get("/stats", summary="The index's counts, model and size, as `search stats --json`.")
    async def stats():
        return await served.run(lambda index: index.stats())

    @app.get("/health", summary="200 when the index can be searched, else 503.")
    async def health():
        counts = await served.run(lambda index: index.stats())
        return {"status": "ok", "index": str(served.path), "documents": counts["documents"],
                "passages": counts["passages"]}

    @app.get("/", include_in_schema=False)
    async def page():
        return FileResponse(WEB / "index.html")

    @app.get("/docs", include_in_schema=False)
    async def api_page():
        return get_swagger_ui_html(openapi_url=app.openapi_url, title="search API",
                                   swagger_js_url="/static/swagger/swagger-ui-bundle.js",
                                   swagger_css_url="/static/swagger/swagger-ui.css",
                                   swagger_favicon_url="/static/favicon.svg")

    from swagger_ui_bundle import swagger_ui_path

    app.mount("/static/swagger", StaticFiles(directory=swagger_ui_path), name="swagger")
    app.mount("/static", StaticFiles(directory=WEB), name="static")
    return app
