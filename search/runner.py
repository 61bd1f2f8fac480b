"""What Reader, EntityTagger and TextClassifier share: a model folder loaded on first use, run on
torch or on ONNX Runtime."""

from __future__ import annotations

import json
import os
from functools import cached_property
from pathlib import Path

import numpy as np

from .errors import ModelNotFound
from .exported import Session, check_backend, fast_tokenizer, open_session
from .finetuned import load_finetuned, tokenizer_folder
from .models import quiet_transformers, resolve_model
from .precision import resolve_precision, to_precision


class ModelRunner:
    """What Reader, EntityTagger and TextClassifier share: a model folder loaded on first use, on
    ONNX Runtime (``session``, exported at first use) or torch (``model``), as ``backend`` says.

    Subclasses name the transformers ``auto_class``, the ``outputs`` of its exported model and,
    through ``default_model()``, the folder this project ships; ``train_hint`` says how to make one
    when it is missing.
    """

    auto_class = ""  # e.g. "AutoModelForQuestionAnswering"
    outputs: tuple[str, ...] = ("logits",)
    what = "model"
    train_hint = ""

    def __init__(self, model: str | os.PathLike | None = None, precision: str = "auto", backend: str = "auto"):
        self.model_name = str(model or self.default_model())
        self.precision = resolve_precision(precision)  # on torch
        self.asked_precision = precision  # on ONNX Runtime: exported.onnx_precision
        self.backend = check_backend(backend)

    @classmethod
    def default_model(cls) -> Path | None:
        """The folder this project ships for the task (None: no default)."""
        return None

    @classmethod
    def from_model(cls, model, tokenizer, **options):
        """Run an already loaded model and tokenizer (used during training)."""
        runner = cls("<in memory>", **options)
        runner.__dict__.update(model=model, tokenizer=tokenizer, session=None)
        return runner

    @classmethod
    def shipped_models(cls) -> list[Path]:
        """The folders this project ships for the task."""
        return [cls.default_model()] if cls.default_model() else []

    @cached_property
    def path(self) -> str:
        if any(self.model_name == str(f) and not f.is_dir() for f in self.shipped_models()):
            raise ModelNotFound(f"The {self.what} {self.model_name} is not installed. Train one with"
                                f" `{self.train_hint}`, then pass its best/ folder.")
        return resolve_model(self.model_name, bundled={})

    def _float32_model(self):
        import transformers

        quiet_transformers()
        return load_finetuned(self.path, getattr(transformers, self.auto_class))

    @cached_property
    def model(self):
        """The torch model in eval mode, in ``self.precision``."""
        return to_precision(self._float32_model().eval(), self.precision)

    @cached_property
    def session(self) -> Session | None:
        """The ONNX Runtime session the model runs on (exported at first use), or None for torch."""
        return open_session(self.path, type(self).__name__.lower(), self.backend, self.asked_precision,
                            self._float32_model, list(self.outputs), name=self.what, tokenizer=self.tokenizer_path)

    @cached_property
    def tokenizer_path(self) -> str:
        """The folder with the model's tokenizer (its base model's, for a folder saved without one)."""
        return tokenizer_folder(self.path)

    @cached_property
    def fast_tokenizer(self):
        """The model's tokenizer.json through ``tokenizers`` alone (``exported.FastTokenizer``)."""
        return fast_tokenizer(self.tokenizer_path)

    @cached_property
    def config(self) -> dict:
        """The folder's config.json (labels, options), read without transformers."""
        return json.loads((Path(self.path) / "config.json").read_text())

    @cached_property
    def id2label(self) -> dict[int, str]:
        if self.session is None:
            return dict(self.model.config.id2label)
        return {int(i): label for i, label in self.config["id2label"].items()}

    @cached_property
    def tokenizer(self):
        from transformers import AutoTokenizer

        return AutoTokenizer.from_pretrained(self.tokenizer_path)


def softmax(logits: np.ndarray) -> np.ndarray:
    shifted = np.exp(logits - logits.max(-1, keepdims=True))
    return shifted / shifted.sum(-1, keepdims=True)
