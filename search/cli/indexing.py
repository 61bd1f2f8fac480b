"""Commands that build and inspect the index: index, rm, stats."""

from __future__ import annotations

import sys
from pathlib import Path

import click

from ..errors import SearchError
from ..models import DEFAULT_MODEL
from .common import (
    ANN_CHOICES,
    ENCODER_KINDS,
    backend_option,
    cli,
    display_path,
    echo_json,
    handle_errors,
    index_option,
    json_option,
    precision_option,
    show_progress,
    wait_option,
    waiting_writer,
)


@cli.command()
@click.argument("paths", nargs=-1, type=click.Path(path_type=Path))
@index_option
@click.option("--model", help=f"Encoder model: bundled alias, local folder or hub id (online). New indexes default to {DEFAULT_MODEL}.")
@click.option("--encoder", type=click.Choice(ENCODER_KINDS), help="How texts become vectors (new indexes: sentence-transformers).")
@click.option("--include", multiple=True, help="Only files matching this glob (repeatable), e.g. '*.md'.")
@click.option("--exclude", multiple=True, help="Skip files matching this glob (repeatable).")
@click.option("--text-field", default="text", show_default=True, help=".jsonl/.csv: field holding the text.")
@click.option("--id-field", default="id", show_default=True, help=".jsonl/.csv: field naming each row.")
@click.option("--title-field", default="title", show_default=True, help=".jsonl/.csv: field holding the title.")
@click.option("--max-tokens", type=int, help="Passage length in tokens (new indexes; default: the model's window).")
@click.option("--ann", type=click.Choice(ANN_CHOICES), help="Vector index: exact (flat), approximate (ivf), or auto:"
              " exact up to 50,000 passages, then ivf (new indexes: auto; given for an existing one, it is rebuilt).")
@click.option("--prune", is_flag=True, help="Drop documents whose files no longer exist.")
@click.option("--repair", is_flag=True, help="Rebuild the vector file from the database, then index PATHS if given.")
@click.option("--enrich", metavar="TASKS", help="Also tag passages: ner, sentiment, classify:MODEL_FOLDER"
              " (comma-separated; remembered for later runs).")
@click.option("--ray", "ray_address", is_flag=False, flag_value="auto", metavar="[auto|ADDRESS]",
              help="Encode on a Ray cluster: the one at ADDRESS, or with auto (or no value) the one this machine"
              " joined with `ray start`, else a local Ray. Needs `pip install 'search[ray]'`.")
@click.option("--ray-workers", type=click.IntRange(1), help="Encoder workers on Ray (default: one per CPU of the cluster).")
@click.option("--verbose", "-v", is_flag=True, help="List the files ignored for their type.")
@precision_option
@backend_option
@wait_option
@json_option
@handle_errors
def index(paths, index_path, model, encoder, include, exclude, text_field, id_field, title_field,
          max_tokens, ann, prune, repair, enrich, ray_address, ray_workers, verbose, precision, backend, wait, as_json):
    """Index files and folders (default: the bundled demo corpus).

    Unchanged files are skipped; changed files are re-indexed. Supported: .txt .md .rst .html .pdf
    .jsonl .csv .tsv (other files named directly are read as text).
    """
    from ..index import Index
    from ..ingest import RowOptions, demo_corpus

    if repair:
        with Index.open(index_path, check=False) as idx:
            count = waiting_writer(idx, wait).repair()
        if not as_json:
            click.echo(f"Repaired: {count} vectors rebuilt from the database.")
        if not paths and not prune:
            if as_json:
                echo_json({"repaired": count})
            return
    demo = not paths and not prune
    if demo:
        paths = (demo_corpus(),)
    options = {"max_tokens": max_tokens} if max_tokens else {}
    with Index.open_or_create(index_path, model=model, encoder=encoder, ann=ann, precision=precision, backend=backend,
                              **options) as idx:
        waiting_writer(idx, wait)
        if ann:
            idx.set_ann(ann)
        if demo and idx.holds_documents_outside(paths[0]):
            if ann:  # `search index --ann X` on an index of one's own: its vector index changed, nothing added
                if as_json:
                    echo_json({"ann": ann, "vector_index": idx.vectors.describe()})
                else:
                    click.echo(f"Vector index: {idx.vectors.describe()} (--ann {ann}).")
                return
            raise SearchError(f"The index at {idx.path} holds your own documents, so the demo corpus is not added to it."
                              " Name the files to index, or give the demo an index of its own (--index DIR).")
        try:
            report = idx.add_paths(
                paths, include=include, exclude=exclude, prune=prune, progress=show_progress(as_json), enrich=enrich,
                rows=RowOptions(text_field=text_field, id_field=id_field, title_field=title_field),
                ray=ray_address, ray_workers=ray_workers,
            )
        except KeyboardInterrupt:
            kept = idx.stats()
            partly = f", {kept['incomplete']} of them partly" if kept["incomplete"] else ""
            documents = f"{kept['documents']} document{'s' if kept['documents'] != 1 else ''}"
            click.secho(f"\nInterrupted. The index keeps what was committed ({documents}{partly});"
                        " run the same command again to continue where it stopped.", fg="yellow", err=True)
            sys.exit(130)
        if report.passages:  # torch is loaded: export the query encoder now rather than at the first query
            idx.prepare_queries()
        stats = idx.stats()
    if as_json:
        echo_json({**report.to_dict(), "index": stats})
        return
    for path, reason in report.skipped:
        click.secho(f"Skipped {display_path(path)}: {reason}", fg="yellow", err=True)
    for path in report.ignored if verbose else ():
        click.secho(f"Ignored {display_path(path)}: not a supported type", err=True)
    for bad in report.bad_rows[:SHOWN_BAD_ROWS]:
        click.secho(f"Left out {display_path(bad.source)} line {bad.line}: {bad.reason}", fg="yellow", err=True)
    if len(report.bad_rows) > SHOWN_BAD_ROWS:
        click.secho(f"... and {len(report.bad_rows) - SHOWN_BAD_ROWS} more bad rows (--json lists them all)",
                    fg="yellow", err=True)
    if report.files == 0:
        click.secho("No supported files found (.txt .md .rst .html .pdf .jsonl .csv .tsv).", fg="yellow", err=True)
    click.echo(
        f"{report.files} files: {report.added} added, {report.updated} updated, {report.unchanged} unchanged, "
        + (f"{report.resumed} finished (begun by an interrupted run), " if report.resumed else "")
        + f"{len(report.skipped)} skipped, {report.removed} removed"
        + (f", {len(report.ignored)} other files ignored (--verbose lists them)" if report.ignored else "")
        + (f", {len(report.bad_rows)} bad rows left out" if report.bad_rows else "")
        + f"; {report.passages} passages encoded "
        f"in {report.seconds:.1f}s. Index: {stats['documents']} documents, {stats['passages']} passages at {stats['path']}"
    )


#: Bad rows of .jsonl/.csv files listed on stderr; --json lists all.
SHOWN_BAD_ROWS = 10


@cli.command()
@click.argument("targets", nargs=-1, required=True)
@index_option
@wait_option
@handle_errors
def rm(targets, index_path, wait):
    """Delete documents by file path, folder, document path or glob."""
    from ..index import Index

    with Index.open(index_path) as idx:
        count = waiting_writer(idx, wait).delete(targets)
    click.echo(f"Deleted {count} documents.")


@cli.command()
@index_option
@json_option
@handle_errors
def stats(index_path, as_json):
    """What is indexed: documents, passages, model, sizes."""
    import datetime

    from ..index import Index

    with Index.open(index_path) as idx:
        data = idx.stats()
    if as_json:
        echo_json(data)
        return
    created = datetime.datetime.fromtimestamp(data["created"]).isoformat(timespec="seconds")
    for label, value in [
        ("Index", data["path"]),
        ("Documents", f"{data['documents']}" + (f" ({data['incomplete']} partly indexed: run `search index` on"
                                                 " them again to finish)" if data["incomplete"] else "")),
        ("Files", data["files"]),
        ("Passages", data["passages"]), ("Vectors", f"{data['vectors']} ({data['vector_index']}; --ann {data['ann']})"),
        ("Model", f"{data['model']} ({data['encoder']}, {data['dimension']} dimensions, {data['max_tokens']} tokens)"),
        ("Size", f"{data['bytes'] / 1e6:.1f} MB"), ("Created", created),
    ]:
        click.echo(f"{label + ':':<11}{value}")
