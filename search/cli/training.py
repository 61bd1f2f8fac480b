"""search train: fine-tuning recipes."""

from __future__ import annotations

import sys
from pathlib import Path

import click

from ..models import DEFAULT_MODEL
from .common import cli, handle_errors


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
@handle_errors
def train_reader_command(data, output, dev, dev_questions, base_model, epochs, batch_size, learning_rate,
                         max_length, stride, init, checkpoint_minutes, max_minutes):
    """Train an extractive QA reader (resumable: run it again to continue)."""
    from ..training import ReaderRecipe, train_reader

    recipe = ReaderRecipe(base_model=base_model, epochs=epochs, batch_size=batch_size,
                          learning_rate=learning_rate, max_length=max_length, stride=stride)
    state = train_reader(data, output, recipe, dev=dev, dev_questions=dev_questions,
                         checkpoint_minutes=checkpoint_minutes, max_minutes=max_minutes,
                         progress=sys.stderr.isatty(), log=click.echo, init=init)
    click.echo(f"Stopped at step {state['step']}; best dev {state['metric']} {state['best']:.1f}. Reader: {output / 'best'}")

