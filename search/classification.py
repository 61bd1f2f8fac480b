"""Text classification: one label and its probability per text (sentiment by default)."""

from __future__ import annotations

from dataclasses import dataclass
from functools import cached_property
from pathlib import Path
from typing import Sequence

import numpy as np

from .exported import inputs_of
from .runner import ModelRunner, softmax

#: The sentiment model this project trains and ships (its finetuned.json has data, recipe and metrics).
DEFAULT_SENTIMENT = Path(__file__).resolve().parent / "sentiment_model"


@dataclass
class Label:
    label: str
    score: float

    def to_dict(self) -> dict:
        return dict(self.__dict__)


class TextClassifier(ModelRunner):
    """``TextClassifier(model).classify(texts)``: one label and its probability per text (sentiment by default)."""

    auto_class = "AutoModelForSequenceClassification"
    what = "sentiment model"
    train_hint = "search train sentiment --data train.tsv --dev dev.tsv --output DIR"

    def __init__(self, model: str | Path | None = None, batch_size: int = 32, max_length: int = 256,
                 precision: str = "auto", backend: str = "auto"):
        super().__init__(model, precision, backend)
        self.batch_size, self.max_length = batch_size, max_length

    @classmethod
    def default_model(cls) -> Path:
        return DEFAULT_SENTIMENT

    @property
    def labels(self) -> list[str]:
        return [self.id2label[i] for i in range(len(self.id2label))]

    def classify(self, texts: Sequence[str]) -> list[Label]:
        order = sorted(range(len(texts)), key=lambda i: len(texts[i]))
        results: dict[int, Label] = {}
        for b in range(0, len(order), self.batch_size):
            chunk = order[b : b + self.batch_size]
            probs = softmax(self._logits([texts[i] for i in chunk]))
            for row, i in enumerate(chunk):
                best = int(probs[row].argmax())
                results[i] = Label(self.id2label[best], float(probs[row][best]))
        return [results[i] for i in range(len(texts))]

    def _logits(self, texts: list[str]) -> np.ndarray:
        if self.session is not None:
            return self.session.run(inputs_of(self._fast_tokenizer.encode_batch(texts)))[0]
        import torch

        batch = self.tokenizer(texts, truncation=True, max_length=self.max_length, padding=True, return_tensors="pt")
        with torch.inference_mode():
            return self.model(**batch).logits.float().numpy()

    @cached_property
    def _fast_tokenizer(self):
        return self.fast_tokenizer.truncated(max_length=self.max_length)
