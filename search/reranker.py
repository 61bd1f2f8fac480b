"""Reranking: a cross-encoder reads the query and each retrieved passage together and orders them.

Retrieval scores a passage by its vector and its words, each made without seeing the query; a
cross-encoder sees both at once, which ranks the top of a list better and costs a forward pass per
passage, so it reorders only the first ``depth`` hits. Any sequence-classification model scoring
(query, passage) pairs works: one output (MS MARCO cross-encoders: a relevance logit) or two (the
second is "relevant"), such as ``search train reranker`` makes.
"""

from __future__ import annotations

from dataclasses import replace
from functools import cached_property
from typing import Sequence

import numpy as np

from .exported import inputs_of
from .reader import length_batches
from .runner import ModelRunner

#: Hits a reranker reads by default: the cost grows with it, and past the first few dozen
#: retrieval rarely leaves the relevant passage for a reranker to find.
DEPTH = 30


class Reranker(ModelRunner):
    """``Reranker(model).rerank(query, hits)``: the hits ordered by a cross-encoder's score of each
    (query, passage) pair, each with its ``rerank_score``; ``scores(query, passages)`` gives the
    scores alone. ``model`` is a model folder or a hub id (online only)."""

    auto_class = "AutoModelForSequenceClassification"
    what = "reranker"
    train_hint = "search train reranker --data train-v1.1.json --output DIR"

    def __init__(self, model: str, depth: int = DEPTH, batch_size: int = 16, max_length: int = 256,
                 precision: str = "auto", backend: str = "auto"):
        super().__init__(model, precision, backend)
        self.depth, self.batch_size, self.max_length = depth, batch_size, max_length

    def scores(self, query: str, passages: Sequence[str]) -> np.ndarray:
        """The relevance of each passage to ``query`` (a logit: higher is more relevant)."""
        if not passages:
            return np.zeros(0, dtype=np.float32)
        encoded = self._encode(query, passages)
        lengths = [int(mask.sum()) for mask in encoded["attention_mask"]]
        out = np.zeros(len(passages), dtype=np.float32)
        for batch in length_batches(lengths, self.batch_size):
            longest = lengths[batch[0]]
            out[batch] = relevance(self._logits({n: v[batch, :longest] for n, v in encoded.items()}))
        return out

    def rerank(self, query: str, hits: Sequence) -> list:
        """The first ``depth`` of ``hits`` by the reranker's score (ranks renumbered, each with its
        ``rerank_score``), then the rest as they were."""
        head, tail = list(hits[: self.depth]), list(hits[self.depth :])
        scored = self.scores(query, [h.text for h in head])
        order = sorted(range(len(head)), key=lambda i: -scored[i])
        ranked = [replace(head[i], rerank_score=float(scored[i])) for i in order] + tail
        return [replace(h, rank=r) for r, h in enumerate(ranked, 1)]

    def _encode(self, query: str, passages: Sequence[str]) -> dict[str, np.ndarray]:
        if self.session is not None:
            return inputs_of(self._fast_tokenizer.encode_batch([(query, p) for p in passages]))
        batch = self.tokenizer([query] * len(passages), list(passages), truncation="only_second",
                               max_length=self._length, padding=True, return_tensors="np")
        return {n: batch[n].astype(np.int64) for n in ("input_ids", "attention_mask", "token_type_ids") if n in batch}

    def _logits(self, inputs: dict[str, np.ndarray]) -> np.ndarray:
        if self.session is not None:
            return self.session.run(inputs)[0]
        import torch

        with torch.inference_mode():
            return self.model(**{n: torch.from_numpy(v) for n, v in inputs.items()}).logits.float().numpy()

    @cached_property
    def _length(self) -> int:
        """Tokens of a pair: ``max_length``, or fewer where the model has fewer positions."""
        config = self.config if self.session is not None else self.model.config.to_dict()
        return min(self.max_length, config.get("max_position_embeddings", self.max_length))

    @cached_property
    def _fast_tokenizer(self):
        return self.fast_tokenizer.truncated(max_length=self._length, strategy="only_second")


def relevance(logits: np.ndarray) -> np.ndarray:
    """One score per row: the logit of a one-output model, else log-odds of the last ("relevant") class."""
    if logits.shape[-1] == 1:
        return logits[:, 0]
    rest = np.logaddexp.reduce(logits[:, :-1], axis=-1)
    return logits[:, -1] - rest
