"""What Reader, EntityTagger and TextClassifier share: a model folder loaded on first use."""

from __future__ import annotations

import os
from functools import cached_property
from pathlib import Path

from .errors import ModelNotFound
from .finetuned import load_finetuned
from .models import quiet_transformers, resolve_model
from .precision import resolve_precision, to_precision


class ModelRunner:
    """What Reader, EntityTagger and TextClassifier share: a model folder loaded on first use.

    Subclasses name the transformers ``auto_class`` and, through ``default_model()``, the folder this
    project ships; ``train_hint`` says how to make one when it is missing.
    """

    auto_class = ""  # e.g. "AutoModelForQuestionAnswering"
    what = "model"
    train_hint = ""

    def __init__(self, model: str | os.PathLike | None = None, precision: str = "auto"):
        self.model_name = str(model or self.default_model())
        self.precision = resolve_precision(precision)

    @classmethod
    def default_model(cls) -> Path | None:
        """The folder this project ships for the task (None: no default)."""
        return None

    @classmethod
    def from_model(cls, model, tokenizer, **options):
        """Run an already loaded model and tokenizer (used during training)."""
        runner = cls("<in memory>", **options)
        runner.__dict__.update(model=model, tokenizer=tokenizer)
        return runner

    @cached_property
    def path(self) -> str:
        default = self.default_model()
        if default is not None and self.model_name == str(default) and not default.is_dir():
            raise ModelNotFound(f"The default {self.what} is not installed ({default} is missing). Train one with"
                                f" `{self.train_hint}`, then pass its best/ folder.")
        return resolve_model(self.model_name)

    @cached_property
    def model(self):
        """The model in eval mode, in ``self.precision``."""
        import transformers

        quiet_transformers()
        return to_precision(load_finetuned(self.path, getattr(transformers, self.auto_class)).eval(), self.precision)

    @cached_property
    def tokenizer(self):
        from transformers import AutoTokenizer

        return AutoTokenizer.from_pretrained(self.path)
