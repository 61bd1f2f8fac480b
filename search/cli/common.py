"""What every command shares: the group, options, error handling and output helpers."""

from __future__ import annotations

import functools
import json
import os
import sqlite3
from pathlib import Path

import click

from ..errors import SearchError
from ..store import damaged
from ..exported import BACKENDS
from ..precision import PRECISIONS

__all__ = [
    "ENCODER_KINDS", "backend_option", "cli", "echo_table", "filter_options", "index_option", "json_option",
    "reader_option", "rerank_options", "make_reranker", "precision_option", "wait_option", "waiting_writer", "display_path", "echo_json", "handle_errors", "show_progress",
]

ENCODER_KINDS = ("sentence-transformers", "mean-pooling")


def handle_errors(func):
    """Turn the errors a user can act on into one clear line instead of a traceback."""

    @functools.wraps(func)
    def wrapper(*args, **kwargs):
        try:
            return func(*args, **kwargs)
        except (SearchError, FileNotFoundError, FileExistsError, ValueError) as exc:
            raise click.ClickException(str(exc)) from exc
        except sqlite3.DatabaseError as exc:  # damage found by a query, past the check on open
            raise click.ClickException(damaged(kwargs.get("index_path") or "of the index", exc)) from exc

    return wrapper


def index_option(func):
    return click.option(
        "--index", "index_path", type=click.Path(file_okay=False, path_type=Path), envvar="SEARCH_INDEX",
        help="Index folder. Default: $SEARCH_INDEX, else ~/.local/share/search/index.",
    )(func)


def wait_option(func):
    return click.option("--wait", is_flag=True,
                        help="If another process is writing to the index, wait for it instead of failing.")(func)


def waiting_writer(index, wait: bool):
    """Set an index's writer to wait (and say so) when another process is writing."""
    index.writer.wait = wait
    index.writer.on_wait = lambda: click.echo(f"Waiting for another process writing to {index.path}...", err=True)
    return index


def json_option(func):
    return click.option("--json", "as_json", is_flag=True, help="Print JSON for scripts.")(func)


def echo_json(data) -> None:
    click.echo(json.dumps(data, indent=2, ensure_ascii=False, default=str))


def echo_table(rows: list[dict], columns: list[tuple[str, str, int, str]]) -> None:
    """Rows as a text table; ``columns`` are (heading, key, width, format); a negative width aligns
    left; a column widens to its longest cell and a space; a row without a key leaves its cell blank."""
    table = [[heading for heading, *_ in columns]]
    table += [["" if row.get(key) is None else format(row[key], spec) for _, key, _, spec in columns] for row in rows]
    widths = [max(abs(width), *(len(line[c]) + 1 for line in table)) for c, (_, _, width, _) in enumerate(columns)]
    for line in table:
        click.echo("".join(text.ljust(w) if width < 0 else text.rjust(w)
                           for text, w, (_, _, width, _) in zip(line, widths, columns)).rstrip())


def show_progress(as_json: bool) -> bool:
    """Progress on stderr: a bar on a terminal, a line every few seconds elsewhere (not with --json)."""
    return not as_json


def display_path(path: str) -> str:
    """A path relative to the working directory when it lies below it."""
    cwd = os.getcwd() + os.sep
    return path[len(cwd):] if path.startswith(cwd) else path


@click.group()
@click.version_option(package_name="search")
def cli():
    """Offline semantic search over your documents: index a folder, then query it in plain language."""
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")


class ConfidenceThreshold(click.ParamType):
    """A confidence from 0 to 1, ``off`` (None: always answer) or ``default`` (the reader's own)."""

    name = "CONFIDENCE|off"

    def convert(self, value, param, ctx):
        if value in (None, "default", "off") or isinstance(value, float):
            return None if value == "off" else value
        try:
            number = float(value)
        except ValueError:
            self.fail(f"{value!r} is not a confidence from 0 to 1 or 'off'", param, ctx)
        if not 0 <= number <= 1:
            self.fail(f"{value} is not between 0 and 1", param, ctx)
        return number


threshold_option = click.option(
    "--threshold", type=ConfidenceThreshold(), default="default",
    help="Say 'no answer' when the best answer's confidence is below this (0 to 1); 'off' always answers."
         "  [default: the reader's calibrated threshold]")


def reader_option(func):
    return click.option("--reader", "reader_model", help="Reader: a model folder, or `english` or `multilingual`"
                        " (default: the multilingual one for an index built with --model multilingual, else English).")(func)


def rerank_options(func):
    """``--rerank MODEL`` and ``--rerank-depth N``."""
    func = click.option("--rerank-depth", type=click.IntRange(1), default=30, show_default=True,
                        help="With --rerank: how many retrieved passages it reads and reorders.")(func)
    return click.option("--rerank", "rerank_model", metavar="MODEL",
                        help="Reorder the retrieved passages with this cross-encoder (a model folder, e.g. one"
                             " `search train reranker` made, or a hub id online).")(func)


def make_reranker(rerank_model, rerank_depth, precision="auto", backend="auto"):
    """The ``Reranker`` that ``--rerank`` names, or None."""
    if not rerank_model:
        return None
    from ..reranker import Reranker

    return Reranker(rerank_model, depth=rerank_depth, precision=precision, backend=backend)


backend_option = click.option(
    "--backend", type=click.Choice(BACKENDS), default="auto", show_default=True,
    help="What runs the encoder and the reader: onnx (ONNX Runtime: starts in a fraction of a second; the"
         " models are exported at first use) or torch; auto runs queries and answers on ONNX, and long work"
         " (indexing, a server) on torch where it runs bfloat16 (CPUs with bfloat16 instructions), else on ONNX.")

precision_option = click.option(
    "--precision", type=click.Choice(PRECISIONS), default="auto", show_default=True,
    help="How the model's weights run: auto is int8 on ONNX Runtime (about twice as fast as float32 and as"
         " accurate, on any x86 CPU) and, on torch, bfloat16 on CPUs with bfloat16 instructions (AVX512-BF16,"
         " AMX), else float32.")


def filter_options(func):
    """--filter, --entity, --entity-label, --sentiment and --label: the filters of query and ask."""
    options = [
        click.option("--filter", "filters", multiple=True, metavar="FIELD=VALUE",
                     help="Documents whose path/title (glob) or metadata field matches, or passages in a"
                          " language (language=ru) (repeatable)."),
        click.option("--entity", "entities", multiple=True, metavar="[LABEL=]TEXT",
                     help="Passages mentioning this entity, e.g. ORG=Tesla (needs --enrich ner)."),
        click.option("--entity-label", "entity_labels", multiple=True, metavar="LABEL",
                     help="Passages mentioning any entity of this type: PER, ORG, LOC, MISC."),
        click.option("--sentiment", type=click.Choice(["positive", "negative"]),
                     help="Passages of this sentiment (needs --enrich sentiment)."),
        click.option("--label", "labels", multiple=True, metavar="TASK=LABEL",
                     help="Passages a classifier (--enrich classify:MODEL) gave this label."),
    ]
    for option in reversed(options):
        func = option(func)
    return func


#: vectors.ANN, named here so that the CLI starts without importing FAISS (a test checks they agree).
ANN_CHOICES = ("auto", "flat", "ivf")

nprobe_option = click.option(
    "--nprobe", type=click.IntRange(1), help="Approximate (IVF) indexes: how many lists to search; more is slower and"
    " finds more of the exact nearest passages (default: a sixteenth of the lists, at least 16; `search stats`"
    " shows the index).")
