"""search train: fine-tuning recipes (resumable: run the same command again to continue)."""

from __future__ import annotations

import json
from pathlib import Path

import click

from ..models import DEFAULT_MODEL
from .common import cli, handle_errors

FILE = click.Path(exists=True, dir_okay=False, path_type=Path)


def recipe_options(task: str):
    """The options every recipe shares, with the defaults of ``training.RECIPES[task]``."""
    from ..training import RECIPES

    recipe = RECIPES[task]

    def decorate(func):
        options = [
            click.option("--data", required=True, type=FILE, help="Training file."),
            click.option("--output", required=True, type=click.Path(file_okay=False, path_type=Path),
                         help="Folder for checkpoint/ (resumed when present), best/ (the model to use) and, at the end of"
                              " the schedule, last/."),
            click.option("--dev", type=FILE, help="Dev file, scored at every checkpoint to keep the best model."),
            click.option("--base-model", default=DEFAULT_MODEL, show_default=True),
            click.option("--epochs", default=recipe.epochs, show_default=True),
            click.option("--batch-size", default=recipe.batch_size, show_default=True),
            click.option("--learning-rate", default=recipe.learning_rate, show_default=True),
            click.option("--warmup", default=recipe.warmup, show_default=True,
                         help="Share of the steps over which the learning rate rises from 0."),
            click.option("--train-embeddings/--freeze-embeddings", default=False, show_default=True,
                         help="Train the word embeddings too (the model folder then stores the rows the data touched)."),
            click.option("--max-length", default=recipe.max_length, show_default=True, help="Tokens per example."),
            click.option("--init", type=click.Path(exists=True, file_okay=False),
                         help="Start from this model folder's weights instead of the base model."),
            click.option("--checkpoint-minutes", default=15.0, show_default=True),
            click.option("--max-minutes", type=float, help="Stop (after a checkpoint) after this long."),
            click.option("--seed", default=recipe.seed, show_default=True,
                         help="Order of the examples; change it when continuing from --init so the run sees others first."),
        ]
        for option in reversed(options):
            func = option(func)
        return handle_errors(func)

    return decorate


def _run(train, data, output, dev, base_model, epochs, batch_size, learning_rate, warmup, train_embeddings,
         max_length, init, checkpoint_minutes, max_minutes, seed, **task_options) -> None:
    from ..training import Recipe

    recipe = Recipe(base_model=base_model, epochs=epochs, batch_size=batch_size, learning_rate=learning_rate,
                    warmup=warmup, freeze_word_embeddings=not train_embeddings, max_length=max_length,
                    stride=task_options.pop("stride", Recipe.stride), seed=seed)
    state = train(data, output, recipe, dev=dev, init=init, checkpoint_minutes=checkpoint_minutes,
                  max_minutes=max_minutes, progress=True, log=click.echo, **task_options)
    best = f"best dev {state['metric']} {state['best']:.1f}" if state["best"] >= 0 else "no dev score"
    card = output / "last" / "finetuned.json"
    ended = card.is_file() and json.loads(card.read_text())["step"] == state["step"]
    last = f" (the end of the schedule: {output / 'last'})" if ended else ""
    click.echo(f"Stopped at step {state['step']}; {best}. Model: {output / 'best'}{last}")


@cli.group()
def train():
    """Fine-tune the project's models on your data."""


@train.command(name="reader")
@recipe_options("reader")
@click.option("--stride", default=96, show_default=True, help="Tokens shared by consecutive windows of a long passage.")
@click.option("--dev-questions", default=600, show_default=True)
@click.option("--unanswerable", default=0.0, show_default=True,
              help="Unanswerable pairs per question (a paragraph of the same article without the answer) to teach 'no answer'.")
@click.option("--held-out-articles", default=0, show_default=True,
              help="Leave the data's last N articles out of training (to calibrate the no-answer score on).")
def train_reader_command(**options):
    """An extractive QA reader, on a SQuAD-format file."""
    from ..training import train_reader

    _run(train_reader, **options)


@train.command(name="reranker")
@recipe_options("reranker")
@click.option("--dev-questions", default=600, show_default=True)
def train_reranker_command(**options):
    """A cross-encoder for `--rerank`, on a SQuAD-format file: each question's paragraph against a near miss."""
    from ..training import train_reranker

    _run(train_reranker, **options)


@train.command(name="ner")
@recipe_options("ner")
@click.option("--case-feature/--no-case-feature", default=True, show_default=True,
              help="Give the (uncased) model capitals through its token types.")
def train_ner_command(**options):
    """A named-entity tagger, on a CoNLL file (word ... tag per line; IOB1 or BIO)."""
    from ..training import train_ner

    _run(train_ner, **options)


@train.command(name="sentiment")
@recipe_options("sentiment")
@click.option("--labels", default="negative,positive", show_default=True,
              help="Names of the labels, in the order of their values in the file (0, 1...).")
def train_sentiment_command(labels, **options):
    """A sentiment classifier, on a TSV/CSV file of text and label (SST-2 style)."""
    from ..training import train_classifier

    _run(train_classifier, label_names=labels.split(","), **options)


@train.command(name="classifier")
@recipe_options("classifier")
@click.option("--labels", help="Names of the labels in the order of their values (default: the values as found).")
@click.option("--text-column", help="Column with the text (default: text, sentence or the first one).")
@click.option("--label-column", default="label", show_default=True)
def train_classifier_command(labels, text_column, label_column, **options):
    """Any text classifier, on a TSV/CSV file; use it with `search index --enrich classify:OUTPUT/best`."""
    from ..training import train_classifier

    _run(train_classifier, label_names=labels.split(",") if labels else None, text_column=text_column,
         label_column=label_column, **options)


@train.command(name="calibrate")
@click.option("--reader", "reader_folder", required=True, type=click.Path(exists=True, file_okay=False, path_type=Path),
              help="The reader folder; its calibration.json is written.")
@click.option("--data", required=True, type=FILE, help="The reader's SQuAD-format training file.")
@click.option("--held-out-articles", default=12, show_default=True,
              help="The last N articles, which training left out (train reader --held-out-articles).")
@handle_errors
def train_calibrate_command(reader_folder, data, held_out_articles):
    """Fit a reader's confidence and its no-answer threshold on held-out questions."""
    from ..training import calibrate_reader

    calibrate_reader(reader_folder, data, held_out_articles, log=click.echo, progress=True)
