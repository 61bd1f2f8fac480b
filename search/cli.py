"""The `search` command line: a thin layer over the Python API."""

from __future__ import annotations

import functools
import json
import os
import re
import sys
from pathlib import Path

import click

from .errors import SearchError
from .models import DEFAULT_MODEL

DEMO_CORPUS = Path(__file__).resolve().parent.parent / "index_data"
ENCODER_KINDS = ("sentence-transformers", "mean-pooling")


def _handle_errors(func):
    """Turn the errors a user can act on into one clear line instead of a traceback."""

    @functools.wraps(func)
    def wrapper(*args, **kwargs):
        try:
            return func(*args, **kwargs)
        except (SearchError, FileNotFoundError, FileExistsError, ValueError) as exc:
            raise click.ClickException(str(exc)) from exc

    return wrapper


def index_option(func):
    return click.option(
        "--index", "index_path", type=click.Path(file_okay=False, path_type=Path), envvar="SEARCH_INDEX",
        help="Index folder. Default: $SEARCH_INDEX, else ~/.local/share/search/index.",
    )(func)


def json_option(func):
    return click.option("--json", "as_json", is_flag=True, help="Print JSON for scripts.")(func)


def _echo_json(data) -> None:
    click.echo(json.dumps(data, indent=2, ensure_ascii=False, default=str))


def _show_progress(as_json: bool) -> bool:
    return not as_json and sys.stderr.isatty()


def _display_path(path: str) -> str:
    """A path relative to the working directory when it lies below it."""
    cwd = os.getcwd() + os.sep
    return path[len(cwd):] if path.startswith(cwd) else path


@click.group()
@click.version_option(package_name="search")
def cli():
    """Offline semantic search over your documents: index a folder, then query it in plain language."""
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")


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
@click.option("--prune", is_flag=True, help="Drop documents whose files no longer exist.")
@click.option("--repair", is_flag=True, help="Rebuild the vector file from the database, then index PATHS if given.")
@json_option
@_handle_errors
def index(paths, index_path, model, encoder, include, exclude, text_field, id_field, title_field,
          max_tokens, prune, repair, as_json):
    """Index files and folders (default: the bundled demo corpus).

    Unchanged files are skipped; changed files are re-indexed. Supported: .txt .md .rst .html .pdf
    .jsonl .csv .tsv (other files named directly are read as text).
    """
    from .index import Index
    from .ingest import RowOptions

    if repair:
        with Index.open(index_path, check=False) as idx:
            count = idx.repair()
        if not as_json:
            click.echo(f"Repaired: {count} vectors rebuilt from the database.")
        if not paths and not prune:
            if as_json:
                _echo_json({"repaired": count})
            return
    if not paths and not prune:
        paths = (DEMO_CORPUS,)
    options = {"max_tokens": max_tokens} if max_tokens else {}
    with Index.open_or_create(index_path, model=model, encoder=encoder, **options) as idx:
        try:
            report = idx.add_paths(
                paths, include=include, exclude=exclude, prune=prune, progress=_show_progress(as_json),
                rows=RowOptions(text_field=text_field, id_field=id_field, title_field=title_field),
            )
        except KeyboardInterrupt:
            kept = idx.stats()["documents"]
            click.secho(f"\nInterrupted. The index keeps its last committed state ({kept} documents);"
                        " run the same command again to continue.", fg="yellow", err=True)
            sys.exit(130)
        stats = idx.stats()
    if as_json:
        _echo_json({**report.to_dict(), "index": stats})
        return
    for path, reason in report.skipped:
        click.secho(f"Skipped {_display_path(path)}: {reason}", fg="yellow", err=True)
    if report.files == 0:
        click.secho("No supported files found (.txt .md .rst .html .pdf .jsonl .csv .tsv).", fg="yellow", err=True)
    click.echo(
        f"{report.files} files: {report.added} added, {report.updated} updated, {report.unchanged} unchanged, "
        f"{len(report.skipped)} skipped, {report.removed} removed; {report.passages} passages encoded "
        f"in {report.seconds:.1f}s. Index: {stats['documents']} documents, {stats['passages']} passages at {stats['path']}"
    )


def _query_pattern(query: str) -> re.Pattern | None:
    """Words that share a crude stem with a content word of ``query``."""
    from .store import STOPWORDS

    stems = {re.sub(r"(ing|ed|es|s|ly)$", "", w) for w in re.findall(r"\w+", query.lower()) if w not in STOPWORDS}
    stems = sorted((s for s in stems if len(s) >= 2), key=len, reverse=True)
    return re.compile(r"\b(" + "|".join(map(re.escape, stems)) + r")\w*", re.I) if stems else None


def snippet(text: str, query: str, width: int = 500) -> str:
    """About ``width`` characters of ``text`` around the query's words, with those words in bold."""
    text = " ".join(text.split())
    pattern = _query_pattern(query)
    first = pattern.search(text) if pattern else None
    start = max(0, (first.start() if first else 0) - width // 4)
    if start:
        start = text.find(" ", start) + 1 or start
    piece = ("..." if start else "") + text[start : start + width] + ("..." if start + width < len(text) else "")
    return pattern.sub(lambda m: click.style(m.group(0), bold=True, fg="red"), piece) if pattern else piece


@cli.command()
@click.argument("text")
@index_option
@click.option("-k", "k", default=5, show_default=True, help="How many results.")
@click.option("--mode", type=click.Choice(["hybrid", "dense", "lexical"]), default="hybrid", show_default=True)
@click.option("--filter", "filters", multiple=True, metavar="FIELD=VALUE",
              help="Keep documents whose path/title (glob) or metadata field matches (repeatable).")
@click.option("--per-doc", is_flag=True, help="Only the best passage of each document.")
@json_option
@_handle_errors
def query(text, index_path, k, mode, filters, per_doc, as_json):
    """Search the index for TEXT."""
    from .index import Index

    with Index.open(index_path) as idx:
        hits = idx.search(text, k=k, mode=mode, filters=filters, per_doc=per_doc)
    if as_json:
        _echo_json([h.to_dict() for h in hits])
        return
    if not hits:
        click.echo("No results.")
    for h in hits:
        where = _display_path(h.path) + (f", page {h.page}" if h.page else "")
        click.echo(click.style(f"{h.rank}. {h.score:.3f}  {h.title}", bold=True) + f"  ({where})")
        click.echo("   " + snippet(h.text, text) + "\n")


def reader_option(func):
    return click.option("--reader", "reader_model", help="Reader model folder (default: the shipped reader).")(func)


@cli.command()
@click.argument("question")
@index_option
@click.option("-k", "k", default=5, show_default=True, help="Passages to read.")
@click.option("--answers", default=1, show_default=True, help="How many answers.")
@click.option("--mode", type=click.Choice(["hybrid", "dense", "lexical"]), default="hybrid", show_default=True)
@click.option("--filter", "filters", multiple=True, metavar="FIELD=VALUE", help="As for `search query`.")
@click.option("--threshold", type=float, help="Say no answer unless the best span beats the reader's"
              " no-answer score by this many logits.")
@reader_option
@json_option
@_handle_errors
def ask(question, index_path, k, answers, mode, filters, threshold, reader_model, as_json):
    """Answer QUESTION with a span from the indexed documents."""
    from .index import Index
    from .reader import Reader

    with Index.open(index_path) as idx:
        found = idx.ask(question, k=k, answers=answers, reader=Reader(reader_model), no_answer_threshold=threshold,
                        mode=mode, filters=filters)
    if as_json:
        _echo_json([f.to_dict() for f in found])
        return
    if not found:
        click.echo("No answer found.")
    for f in found:
        where = _display_path(f.path) + (f", page {f.page}" if f.page else "") + f", characters {f.start}-{f.end}"
        click.echo(click.style(f.text, bold=True) + f"  (confidence {f.score:.2f})")
        s, o = " ".join(f.sentence[: f.sentence_offset].split()), f.sentence_offset
        span = f.sentence[o : o + len(f.text)]
        after = " ".join(f.sentence[o + len(f.text) :].split())
        click.echo(f"   {s} " + click.style(span, bold=True, fg="red") + f" {after}".rstrip())
        click.echo(f"   {f.title} ({where})\n")


@cli.command()
@click.argument("targets", nargs=-1, required=True)
@index_option
@_handle_errors
def rm(targets, index_path):
    """Delete documents by file path, folder, document path or glob."""
    from .index import Index

    with Index.open(index_path) as idx:
        count = idx.delete(targets)
    click.echo(f"Deleted {count} documents.")


@cli.command()
@index_option
@json_option
@_handle_errors
def stats(index_path, as_json):
    """What is indexed: documents, passages, model, sizes."""
    import datetime

    from .index import Index

    with Index.open(index_path) as idx:
        data = idx.stats()
    if as_json:
        _echo_json(data)
        return
    created = datetime.datetime.fromtimestamp(data["created"]).isoformat(timespec="seconds")
    for label, value in [
        ("Index", data["path"]), ("Documents", data["documents"]), ("Files", data["files"]),
        ("Passages", data["passages"]), ("Vectors", data["vectors"]),
        ("Model", f"{data['model']} ({data['encoder']}, {data['dimension']} dimensions, {data['max_tokens']} tokens)"),
        ("Size", f"{data['bytes'] / 1e6:.1f} MB"), ("Created", created),
    ]:
        click.echo(f"{label + ':':<11}{value}")


@cli.command()
@click.argument("text_a")
@click.argument("text_b")
@click.option("--model", default=DEFAULT_MODEL, show_default=True, help="Encoder model.")
@click.option("--encoder", type=click.Choice(ENCODER_KINDS), default="sentence-transformers", show_default=True)
@json_option
@_handle_errors
def similarity(text_a, text_b, model, encoder, as_json):
    """Cosine similarity of two texts."""
    from .encoders import load_encoder

    vectors = load_encoder(model, encoder).encode([text_a, text_b])
    score = float(vectors[0] @ vectors[1])
    if as_json:
        _echo_json({"similarity": score, "model": model})
    else:
        click.echo(f"{score:.4f}")


@cli.group(name="eval")
def eval_group():
    """Measure quality on test collections."""


@eval_group.command(name="retrieval")
@click.argument("collections", nargs=-1, required=True, type=click.Path(exists=True, file_okay=False, path_type=Path))
@click.option("--mode", "modes", multiple=True, type=click.Choice(["hybrid", "dense", "lexical"]),
              help="Modes to evaluate (repeatable; default: all three).")
@click.option("--model", default=DEFAULT_MODEL, show_default=True)
@click.option("--encoder", type=click.Choice(ENCODER_KINDS), default="sentence-transformers", show_default=True)
@click.option("--cache", type=click.Path(file_okay=False, path_type=Path),
              help="Keep each collection's index in this folder and reuse it next time.")
@json_option
@_handle_errors
def eval_retrieval(collections, modes, model, encoder, cache, as_json):
    """nDCG@10, Recall@100 and MAP on test collections (SMART, TREC or BEIR folders)."""
    import tempfile

    from .evaluation import evaluate_retrieval, index_collection, load_collection
    from .index import Index

    modes = modes or ("lexical", "dense", "hybrid")
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        for folder in collections:
            collection = load_collection(folder)
            slug = re.sub(r"\W+", "-", f"{collection.name}-{model}-{encoder}")
            where = (cache or Path(tmp)) / slug
            with Index.open_or_create(where, model=model, encoder=encoder) as idx:
                if idx.stats()["documents"] != len(collection.documents):
                    index_collection(idx, collection, progress=_show_progress(as_json))
                for mode in modes:
                    scores = evaluate_retrieval(idx, collection, mode)
                    rows.append({"collection": collection.name, "mode": mode, **scores})
    if as_json:
        _echo_json(rows)
        return
    click.echo(f"{'collection':<12}{'mode':<9}{'nDCG@10':>9}{'R@100':>8}{'MAP':>8}{'queries':>9}{'ms/q':>8}")
    for r in rows:
        click.echo(f"{r['collection']:<12}{r['mode']:<9}{r['ndcg@10']:>9.3f}{r['recall@100']:>8.3f}"
                   f"{r['map']:>8.3f}{r['queries']:>9}{r['ms_per_query']:>8.1f}")
    for mode in modes:
        values = [r["ndcg@10"] for r in rows if r["mode"] == mode]
        if len(values) > 1:
            click.echo(f"{'mean':<12}{mode:<9}{sum(values) / len(values):>9.3f}")


@eval_group.command(name="qa")
@click.option("--data", required=True, type=click.Path(exists=True, dir_okay=False, path_type=Path),
              help="SQuAD-format JSON file.")
@click.option("--mode", "modes", multiple=True, type=click.Choice(["reader", "open"]),
              help="reader: the gold paragraph is given; open: all paragraphs indexed, found by retrieval.")
@click.option("--limit", type=int, help="Only the first N questions.")
@click.option("-k", "k", default=5, show_default=True, help="Open mode: passages to read.")
@click.option("--cache", type=click.Path(file_okay=False, path_type=Path),
              help="Open mode: keep the paragraph index in this folder and reuse it next time.")
@reader_option
@json_option
@_handle_errors
def eval_qa(data, modes, limit, k, cache, reader_model, as_json):
    """Exact match and F1 (official SQuAD normalisation) of the reader."""
    from .evaluation import evaluate_qa
    from .reader import Reader

    rows = evaluate_qa(data, Reader(reader_model), modes or ("reader",), limit=limit, k=k,
                       progress=_show_progress(as_json), index_folder=cache)
    if as_json:
        _echo_json(rows)
        return
    click.echo(f"{'mode':<8}{'EM':>7}{'F1':>7}{'questions':>11}{'ms/q':>8}")
    for r in rows:
        click.echo(f"{r['mode']:<8}{r['exact_match']:>7.1f}{r['f1']:>7.1f}{r['questions']:>11}{r['ms_per_question']:>8.1f}")


@cli.group()
def train():
    """Fine-tune the project's models on your data."""


@train.command(name="reader")
@click.option("--data", required=True, type=click.Path(exists=True, dir_okay=False, path_type=Path),
              help="SQuAD-format training file.")
@click.option("--output", required=True, type=click.Path(file_okay=False, path_type=Path),
              help="Folder for checkpoint/ (resumed when present) and best/ (the reader to use).")
@click.option("--dev", type=click.Path(exists=True, dir_okay=False, path_type=Path), help="SQuAD-format dev file.")
@click.option("--dev-questions", default=600, show_default=True)
@click.option("--base-model", default=DEFAULT_MODEL, show_default=True)
@click.option("--epochs", default=2.0, show_default=True)
@click.option("--batch-size", default=32, show_default=True)
@click.option("--learning-rate", default=1e-4, show_default=True)
@click.option("--max-length", default=256, show_default=True, help="Window in tokens (question + passage).")
@click.option("--stride", default=96, show_default=True, help="Tokens shared by consecutive windows of a long passage.")
@click.option("--init", type=click.Path(exists=True, file_okay=False), help="Start from this reader's weights.")
@click.option("--checkpoint-minutes", default=15.0, show_default=True)
@click.option("--max-minutes", type=float, help="Stop (after a checkpoint) after this long.")
@_handle_errors
def train_reader_command(data, output, dev, dev_questions, base_model, epochs, batch_size, learning_rate,
                         max_length, stride, init, checkpoint_minutes, max_minutes):
    """Train an extractive QA reader (resumable: run it again to continue)."""
    from .training import ReaderRecipe, train_reader

    recipe = ReaderRecipe(base_model=base_model, epochs=epochs, batch_size=batch_size,
                          learning_rate=learning_rate, max_length=max_length, stride=stride)
    state = train_reader(data, output, recipe, dev=dev, dev_questions=dev_questions,
                         checkpoint_minutes=checkpoint_minutes, max_minutes=max_minutes,
                         progress=sys.stderr.isatty(), log=click.echo, init=init)
    click.echo(f"Stopped at step {state['step']}; best dev {state['metric']} {state['best']:.1f}. Reader: {output / 'best'}")
