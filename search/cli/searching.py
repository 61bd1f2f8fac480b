"""Commands that find things: query and ask."""

from __future__ import annotations

import re

import click

from .common import (
    backend_option,
    cli,
    display_path,
    echo_json,
    filter_options,
    handle_errors,
    index_option,
    json_option,
    make_reranker,
    nprobe_option,
    precision_option,
    reader_option,
    rerank_options,
    threshold_option,
)


def snippet(text: str, query: str, width: int = 500) -> str:
    """About ``width`` characters of ``text`` around the query's words, with those words in bold."""
    from ..terms import highlight_pattern

    text = " ".join(text.split())
    pattern = highlight_pattern(query)
    first = pattern.search(text) if pattern else None
    start = max(0, (first.start() if first else 0) - width // 4)
    if start:
        start = text.find(" ", start) + 1 or start
    piece = ("..." if start else "") + text[start : start + width] + ("..." if start + width < len(text) else "")
    return pattern.sub(lambda m: click.style(m.group(0), bold=True, fg="red"), piece) if pattern else piece


mode_option = click.option(
    "--mode", type=click.Choice(["hybrid", "dense", "lexical"]), default="hybrid", show_default=True,
    help="hybrid: meaning and words, score 0 to 1 (0.7 x the dense score + 0.3 x BM25, each scaled so that the"
         " best candidate scores 1; passages in another script than the query's: the dense score alone);"
         " dense: meaning only, cosine similarity (-1 to 1); lexical: words only, BM25"
         " (0 up, grows with the number and rarity of matching words). Scores of different modes do not compare.")


def heading(title: str, section: str) -> str:
    """A hit's title and, when it has one, the section path of its passage."""
    return f"{title} > {section}" if section else title


@cli.command()
@click.argument("text")
@index_option
@click.option("-k", "k", default=5, show_default=True, help="How many results.")
@mode_option
@filter_options
@click.option("--per-doc", is_flag=True, help="Only the best passage of each document.")
@rerank_options
@nprobe_option
@backend_option
@json_option
@handle_errors
def query(text, index_path, k, mode, per_doc, rerank_model, rerank_depth, nprobe, backend, as_json, **filters):
    """Search the index for TEXT."""
    from ..filters import from_options
    from ..index import Index

    reranker = make_reranker(rerank_model, rerank_depth, backend=backend)
    with Index.open(index_path, backend=backend) as idx:
        hits = idx.search(text, k=k, mode=mode, filters=from_options(**filters), per_doc=per_doc, nprobe=nprobe,
                          reranker=reranker)
    if as_json:
        echo_json([h.to_dict() for h in hits])
        return
    if not hits:
        click.echo("No results.")
    echo_hits(hits, text)


def echo_hits(hits, query: str) -> None:
    for h in hits:
        where = display_path(h.path) + (f", page {h.page}" if h.page else "")
        score = h.score if h.rerank_score is None else h.rerank_score
        click.echo(click.style(f"{h.rank}. {score:.3f}  {heading(h.title, h.section)}", bold=True) + f"  ({where})")
        click.echo("   " + snippet(h.text, query) + "\n")


@cli.command()
@click.argument("question")
@index_option
@click.option("-k", "k", default=5, show_default=True, help="Passages to read.")
@click.option("--answers", default=1, show_default=True, help="How many answers.")
@mode_option
@filter_options
@threshold_option
@reader_option
@rerank_options
@nprobe_option
@precision_option
@backend_option
@json_option
@handle_errors
def ask(question, index_path, k, answers, mode, threshold, reader_model, rerank_model, rerank_depth, nprobe, precision,
        backend, as_json, **filters):
    """Answer QUESTION with a span from the indexed documents."""
    from ..filters import from_options
    from ..index import Index
    from ..reader import Reader, answers_from_hits

    conditions = from_options(**filters)
    reranker = make_reranker(rerank_model, rerank_depth, precision, backend)
    with Index.open(index_path, precision=precision, backend=backend) as idx:
        options = dict(precision=precision, backend=backend)
        reader = Reader(reader_model, **options) if reader_model else idx.default_reader(**options)
        hits = idx.search(question, k=k, mode=mode, filters=conditions, nprobe=nprobe, reranker=reranker)
        found = answers_from_hits(reader, question, hits, answers, threshold=threshold)
    closest = [] if found or as_json else hits[:3]
    if as_json:
        echo_json([f.to_dict() for f in found])
        return
    if not found:
        click.echo(reader.unread_language(question, closest) or (
            "No answer found." if threshold is None else
            "No answer found with enough confidence (--threshold off shows the best guess)."))
    if closest:
        click.echo("The passages that come closest:\n")
        echo_hits(closest, question)
    for f in found:
        where = display_path(f.path) + (f", page {f.page}" if f.page else "") + f", characters {f.start}-{f.end}"
        agree = f", {f.sources} passages agree" if f.sources > 1 else ""
        click.echo(click.style(f.text, bold=True) + f"  (confidence {f.score:.2f}{agree})")
        o, n = f.sentence_offset, len(f.text)
        before, span, after = (re.sub(r"\s+", " ", x) for x in (f.sentence[:o], f.sentence[o : o + n], f.sentence[o + n :]))
        click.echo(f"   {before}" + click.style(span, bold=True, fg="red") + after)
        click.echo(f"   {heading(f.title, f.section)} ({where})\n")

