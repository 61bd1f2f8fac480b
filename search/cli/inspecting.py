"""Commands that show how a model sees a text: similarity, tokenize, fill-mask."""

from __future__ import annotations

import click

from ..models import DEFAULT_MODEL
from .common import ENCODER_KINDS, cli, echo_json, handle_errors, json_option


@cli.command()
@click.argument("text_a")
@click.argument("text_b")
@click.option("--model", default=DEFAULT_MODEL, show_default=True, help="Encoder model.")
@click.option("--encoder", type=click.Choice(ENCODER_KINDS), default="sentence-transformers", show_default=True)
@json_option
@handle_errors
def similarity(text_a, text_b, model, encoder, as_json):
    """Cosine similarity of two texts."""
    from ..encoders import load_encoder

    vectors = load_encoder(model, encoder).encode([text_a, text_b], prompt="query")  # e5: "query: " for symmetric tasks
    score = float(vectors[0] @ vectors[1])
    if as_json:
        echo_json({"similarity": score, "model": model})
    else:
        click.echo(f"{score:.4f}")


@cli.command()
@click.argument("text")
@click.option("--model", default=DEFAULT_MODEL, show_default=True,
              help="Any model the project can load: bundled alias, model folder (the shipped reader's too) or hub id (online).")
@click.option("--no-special", is_flag=True, help="Leave out the special tokens ([CLS], [SEP]).")
@json_option
@handle_errors
def tokenize(text, model, no_special, as_json):
    """The word pieces of TEXT: piece, id and character offsets, then the ids decoded."""
    from ..tokenization import tokenize as run

    result = run(text, model, special_tokens=not no_special)
    if as_json:
        echo_json(result.to_dict())
        return
    for t in result.tokens:
        where = "" if t.special else f"{t.start}-{t.end}"
        click.echo(f"{t.piece:<16} {t.id:>7}  {where}")
    click.echo(f"{len(result.tokens)} tokens; decoded: {result.decoded}")


@cli.command(name="fill-mask")
@click.argument("text")
@click.option("--model", help="A masked-language model folder, or a hub id while online (none ships offline).")
@click.option("--top", default=5, show_default=True, help="How many fillers.")
@json_option
@handle_errors
def fill_mask(text, model, top, as_json):
    """The words a masked-language model puts in place of [MASK] in TEXT, most likely first."""
    from ..fill_mask import MaskFiller

    fillers = MaskFiller(model).fill(text, top)
    if as_json:
        echo_json([f.to_dict() for f in fillers])
        return
    for f in fillers:
        click.echo(f"{f.score:.3f}  {f.token:<15} {f.text}")
