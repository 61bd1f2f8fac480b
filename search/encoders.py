"""Texts -> L2-normalised float32 vectors.

Two encoders with one interface: ``SentenceTransformerEncoder`` (the default) and
``MeanPoolingEncoder`` (attention-mask-weighted mean of any transformers ``AutoModel``'s last
hidden state). A sentence-transformers folder that is just that (all-MiniLM-L6-v2 is) runs as a
``MeanPoolingEncoder``. Both load lazily: the tokenizer alone is enough to split passages.
"""

from __future__ import annotations

import json
from functools import cached_property
from pathlib import Path
from typing import Callable, Protocol, Sequence

import numpy as np

from .exported import Session, check_backend, fast_tokenizer, inputs_of, open_session
from .models import DEFAULT_MODEL, quiet_transformers, resolve_model
from .precision import resolve_precision, to_precision


class Encoder(Protocol):
    kind: str
    model_name: str

    @property
    def tokenizer(self): ...

    @property
    def max_tokens(self) -> int: ...

    @property
    def dimension(self) -> int: ...

    def encode(self, texts: Sequence[str], batch_size: int = 32, on_batch: Callable[[int], None] | None = None,
               prompt: str = "passage") -> np.ndarray:
        """Unit vectors of ``texts``; ``on_batch(n)`` is called after each batch of ``n`` texts.

        ``prompt`` names the texts' role, ``"query"`` or ``"passage"``: models trained with a prefix
        for each (e5: "query: ", "passage: ") get it; others ignore it."""
        ...


def _json_or_empty(path: Path) -> dict:
    return json.loads(path.read_text()) if path.is_file() else {}


def _configured_max_length(path: str) -> int | None:
    """The window a sentence-transformers folder declares (sentence_bert_config.json)."""
    value = _json_or_empty(Path(path) / "sentence_bert_config.json").get("max_seq_length")
    return int(value) if value else None


class _Base:
    kind = ""

    def __init__(self, model: str = DEFAULT_MODEL, device: str = "cpu", precision: str = "auto", backend: str = "auto"):
        self.model_name = str(model)
        self.path = resolve_model(model)
        self.device = device
        self.precision = resolve_precision(precision)
        self.backend = check_backend(backend)
        self.asked_precision = precision  # on ONNX Runtime: exported.onnx_precision

    @cached_property
    def tokenizer(self):
        from transformers import AutoTokenizer

        quiet_transformers()
        return AutoTokenizer.from_pretrained(self.path)

    @cached_property
    def _plain_tokenizer(self):
        """tokenizer.json through ``tokenizers`` (``exported.FastTokenizer``; None without one), uncut."""
        return fast_tokenizer(self.path) if Path(self.path).is_dir() else None

    @cached_property
    def splitting_tokenizer(self):
        """What splits documents into passages (``passages.split_passages``): the folder's
        tokenizer.json through ``tokenizers`` alone, without truncation or padding (no transformers
        import, which cost ``search index`` about 3 s), else the transformers tokenizer."""
        return self._plain_tokenizer or self.tokenizer

    @cached_property
    def prompts(self) -> dict[str, str]:
        """The prefix of each role of text, as sentence-transformers folders declare them."""
        return dict(_json_or_empty(Path(self.path) / "config_sentence_transformers.json").get("prompts") or {})

    def prompted(self, texts: Sequence[str], prompt: str) -> list[str]:
        prefix = self.prompts.get(prompt, "")
        return [prefix + t for t in texts] if prefix else list(texts)

    @cached_property
    def max_tokens(self) -> int:
        """Tokens per text, special tokens included, less the longest prompt's (read from the
        folder's files when it has a tokenizer.json: no transformers import)."""
        fast = self._plain_tokenizer
        if fast is None:
            limit = getattr(self.tokenizer, "model_max_length", None)
            count = lambda p: len(self.tokenizer(p, add_special_tokens=False)["input_ids"])  # noqa: E731
        else:
            limit = _json_or_empty(Path(self.path) / "tokenizer_config.json").get("model_max_length")
            count = lambda p: len(fast.encode(p, add_special_tokens=False).ids)  # noqa: E731
        limits = [int(x) for x in (_configured_max_length(self.path), limit) if x and x < 100_000]
        return (min(limits) if limits else 512) - max(map(count, self.prompts.values()), default=0)

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.model_name!r})"


def _is_mean_pooling_folder(path: str) -> bool:
    """Whether sentence-transformers would encode with ``path`` as a transformer, mean pooling and
    (optionally) normalisation, with no prompt and no tokenizer options: then transformers alone
    gives the same vectors. A local model folder without modules.json counts (sentence-transformers
    adds mean pooling to it); a hub id does not."""
    folder = Path(path)
    if not (folder / "config.json").is_file():
        return False
    if not (folder / "modules.json").is_file():
        return True
    try:
        modules = json.loads((folder / "modules.json").read_text())
        types = [m["type"].rsplit(".", 1)[-1] for m in modules]
        pooling = json.loads((folder / modules[1]["path"] / "config.json").read_text())
        settings = _json_or_empty(folder / "config_sentence_transformers.json")
        window = _json_or_empty(folder / "sentence_bert_config.json")
    except (OSError, ValueError, LookupError, TypeError, AttributeError):
        return False
    modes = {k for k, v in pooling.items() if k.startswith("pooling_mode") and v}
    return (types in (["Transformer", "Pooling"], ["Transformer", "Pooling", "Normalize"])
            and modules[0].get("path") == "" and modes == {"pooling_mode_mean_tokens"}
            and pooling.get("include_prompt", True) and set(settings.get("prompts") or {}) <= {"query", "passage"}
            and not settings.get("default_prompt_name") and set(window) <= {"max_seq_length", "do_lower_case"}
            and not window.get("do_lower_case"))


class MeanPoolingEncoder(_Base):
    """Mean of a transformers model's last hidden state over each text's tokens, on torch or on
    ONNX Runtime (``backend``: ``auto`` is ONNX when this machine has it; the model is exported at
    first use, see ``exported``)."""

    kind = "mean-pooling"

    @cached_property
    def model(self):
        from transformers import AutoModel

        quiet_transformers()
        return to_precision(AutoModel.from_pretrained(self.path).to(self.device).eval(), self.precision)

    @cached_property
    def dimension(self) -> int:
        size = _json_or_empty(Path(self.path) / "config.json").get("hidden_size")
        return int(size or self.model.config.hidden_size)

    @property
    def runs_mean_pooling(self) -> bool:
        return True

    @cached_property
    def session(self) -> Session | None:
        """The ONNX Runtime session this encoder runs on, or None when it runs on torch."""
        if self.backend == "torch" or self.device != "cpu" or not self.runs_mean_pooling:
            if self.backend == "onnx":
                raise ValueError(f"{self.model_name} cannot run on ONNX Runtime: it is not a mean-pooling model on the CPU")
            return None

        def float32_model():
            from transformers import AutoModel

            quiet_transformers()
            return AutoModel.from_pretrained(self.path)

        return open_session(self.path, "encoder", self.backend, self.asked_precision, float32_model,
                            ["last_hidden_state"], name=f"encoder {self.model_name}")

    @cached_property
    def _fast_tokenizer(self):
        """The folder's tokenizer.json through ``tokenizers`` alone, cutting at ``max_tokens``."""
        return self._plain_tokenizer.truncated(max_length=self.max_tokens)

    def _hidden(self, texts: list[str]) -> tuple[np.ndarray, np.ndarray]:
        """The last hidden state of a batch of texts (float32) and its attention mask."""
        if self.session is not None:
            inputs = inputs_of(self._fast_tokenizer.encode_batch(texts))
            return self.session.run(inputs)[0], inputs["attention_mask"]
        import torch

        batch = self.tokenizer(texts, padding=True, truncation=True, max_length=self.max_tokens,
                               return_tensors="pt").to(self.device)
        with torch.inference_mode():
            hidden = self.model(**batch).last_hidden_state
        return hidden.float().cpu().numpy(), batch["attention_mask"].cpu().numpy()

    def encode(self, texts: Sequence[str], batch_size: int = 32, on_batch: Callable[[int], None] | None = None,
               prompt: str = "passage") -> np.ndarray:
        texts = self.prompted(texts, prompt)
        out = np.zeros((len(texts), self.dimension), dtype=np.float32)
        order = sorted(range(len(texts)), key=lambda i: len(texts[i]))  # less padding per batch
        for b in range(0, len(order), batch_size):
            chunk = order[b : b + batch_size]
            hidden, mask = self._hidden([texts[i] for i in chunk])
            mask = mask[..., None].astype(np.float32)
            out[chunk] = (hidden * mask).sum(1) / np.maximum(mask.sum(1), 1e-9)
            if on_batch:
                on_batch(len(chunk))
        return _unit_rows(out)


class SentenceTransformerEncoder(MeanPoolingEncoder):
    """A sentence-transformers model. When the folder is a transformer with mean pooling, as
    all-MiniLM-L6-v2 is, it runs on transformers alone (``MeanPoolingEncoder``): the same vectors,
    without importing sentence-transformers, which every cold ``search query`` paid (about 1.3 s,
    benches/bench_cold_start.py)."""

    kind = "sentence-transformers"

    @cached_property
    def mean_pooling(self) -> bool:
        return _is_mean_pooling_folder(self.path)

    @property
    def runs_mean_pooling(self) -> bool:
        return self.mean_pooling

    @cached_property
    def model(self):
        if self.mean_pooling:
            return super().model
        from sentence_transformers import SentenceTransformer

        model = SentenceTransformer(self.path, device=self.device)
        model.max_seq_length = self.max_tokens
        return to_precision(model, self.precision)

    @cached_property
    def dimension(self) -> int:
        if self.mean_pooling:
            return super().dimension
        model = self.model
        get = getattr(model, "get_embedding_dimension", None) or model.get_sentence_embedding_dimension
        return int(get())

    def encode(self, texts: Sequence[str], batch_size: int = 32, on_batch: Callable[[int], None] | None = None,
               prompt: str = "passage") -> np.ndarray:
        if self.mean_pooling:
            return super().encode(texts, batch_size, on_batch, prompt)
        texts = self.prompted(texts, prompt)
        step = batch_size * 4  # sentence-transformers sorts by length within each call
        parts = []
        for b in range(0, len(texts), step):
            part = self.model.encode(list(texts[b : b + step]), batch_size=batch_size, convert_to_numpy=True,
                                     show_progress_bar=False)
            parts.append(np.asarray(part, dtype=np.float32).reshape(-1, self.dimension))
            if on_batch:
                on_batch(len(parts[-1]))
        return _unit_rows(np.concatenate(parts) if parts else np.zeros((0, self.dimension), np.float32))


def _unit_rows(vectors: np.ndarray) -> np.ndarray:
    """Rows scaled to length 1 in float32 (in bfloat16 they come out up to 0.4% off)."""
    norms = np.linalg.norm(vectors, axis=1, keepdims=True)
    return np.ascontiguousarray(vectors / np.maximum(norms, 1e-12), dtype=np.float32)


ENCODERS = {cls.kind: cls for cls in (SentenceTransformerEncoder, MeanPoolingEncoder)}


def load_encoder(model: str = DEFAULT_MODEL, kind: str = "sentence-transformers", device: str = "cpu",
                 precision: str = "auto", backend: str = "auto") -> Encoder:
    """An encoder of ``kind`` (one of ENCODERS) for ``model`` (alias, folder or hub id), run by
    ``backend`` (``exported.BACKENDS``), its torch weights in ``precision`` (``precision.PRECISIONS``)."""
    try:
        cls = ENCODERS[kind]
    except KeyError:
        raise ValueError(f"Unknown encoder {kind!r}; choose one of {', '.join(ENCODERS)}") from None
    return cls(model, device=device, precision=precision, backend=backend)
