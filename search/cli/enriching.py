"""Enrichment commands: enrich an index, list its entities, tag or classify a text."""

from __future__ import annotations

from pathlib import Path

import click

from ..errors import SearchError

from .common import (
    cli,
    echo_json,
    handle_errors,
    index_option,
    json_option,
    show_progress,
    wait_option,
    waiting_writer,
)


@cli.command()
@index_option
@click.option("--enrich", "tasks", metavar="TASKS",
              help="Tasks to add: ner, sentiment, classify:MODEL_FOLDER (default: the index's own).")
@wait_option
@json_option
@handle_errors
def enrich(index_path, tasks, wait, as_json):
    """Run enrichment on every passage that lacks it (tasks are remembered for later indexing)."""
    from ..index import Index

    with Index.open(index_path) as idx:
        waiting_writer(idx, wait)
        if not tasks and not idx.enrichers:
            raise click.UsageError("This index has no enrichment tasks yet: name some with --enrich ner,sentiment")
        done = idx.enrich(tasks, progress=show_progress(as_json))
        names = [e.task for e in idx.enrichers]
    if as_json:
        echo_json({"tasks": names, "processed": done})
    else:
        click.echo(f"Enriched {done} passage-task pairs ({', '.join(names)}).")


@cli.command()
@index_option
@click.option("--label", help="Only entities of this type (PER, ORG, LOC, MISC).")
@click.option("--top", default=20, show_default=True, help="How many.")
@json_option
@handle_errors
def entities(index_path, label, top, as_json):
    """The most frequent named entities in the index, with counts."""
    from ..index import Index

    with Index.open(index_path) as idx:
        rows = idx.entities(label, top)
    if as_json:
        echo_json(rows)
        return
    if not rows:
        click.echo("No entities. Index with --enrich ner (or run `search enrich --enrich ner`).")
    for r in rows:
        click.echo(f"{r['mentions']:>6}  {r['label']:<5} {r['text']}  ({r['documents']} document{'' if r['documents'] == 1 else 's'})")


def model_option(func):
    return click.option("--model", type=click.Path(exists=True, file_okay=False, path_type=Path),
                        help="Model folder (default: the shipped one).")(func)


@cli.command()
@click.argument("text")
@model_option
@json_option
@handle_errors
def ner(text, model, as_json):
    """Named entities in TEXT: whole entities with their type and character offsets (English with
    the shipped model, Russian with natasha)."""
    from ..russian_ner import LANGUAGES, RussianEntityTagger
    from ..tagging import EntityTagger

    language = _language_read(text, model, "NER", also=LANGUAGES)
    (found,) = (RussianEntityTagger() if not model and language in LANGUAGES else EntityTagger(model)).tag([text])
    if as_json:
        echo_json([e.to_dict() for e in found])
        return
    if not found:
        click.echo("No entities.")
    for e in found:
        score = f", {e.score:.2f}" if e.score is not None else ""
        click.echo(f"{e.label:<5} {e.text}  (characters {e.start}-{e.end}{score})")


@cli.command()
@click.argument("text")
@model_option
@json_option
@handle_errors
def sentiment(text, model, as_json):
    """Sentiment of TEXT (or the label of any classifier given with --model)."""
    from ..classification import TextClassifier

    _language_read(text, model, "sentiment")
    (result,) = TextClassifier(model).classify([text])
    if as_json:
        echo_json(result.to_dict())
    else:
        click.echo(f"{result.label} ({result.score:.2f})")


def _language_read(text: str, model: str | None, what: str, also: frozenset[str] = frozenset()) -> str | None:
    """The language of ``text``; an error when no shipped model reads it (``also``: other languages
    a default model reads) rather than tagging it with an English model."""
    from ..enrich import SHIPPED_LANGUAGES
    from ..language import detect_language, named

    language = detect_language(text)
    if not model and language and language not in SHIPPED_LANGUAGES | also:
        raise SearchError(f"This text looks like {language!r}; the shipped {what} model reads"
                          f" {named(SHIPPED_LANGUAGES | also)} only (--model takes a model of your own).")
    return language
