"""Model folders fine-tuned by this project: only what training changed, on top of a base model.

A trained matrix of the base model is stored as an int8 difference with a scale per row, for the
rows that changed only; new weights (a head) and vectors in fp16. Folders from before the int8
format (whole fp16 weights) still load.
"""

from __future__ import annotations

import os
from pathlib import Path

from .errors import ModelNotFound
from .models import resolve_model

#: A fine-tuned model folder stores only what training changed, on top of its base model.
DELTA_WEIGHTS = "delta.safetensors"
CARD = "finetuned.json"
#: Suffixes of a matrix stored as an int8 difference from its base: the rows that changed, their
#: int8 values and one scale per row.
ROWS, INT8, SCALE = ".rows", ".int8", ".scale"


def export_finetuned(model, tokenizer, base_model: str, folder: Path, card: dict) -> None:
    """Save ``model`` as a fine-tuned folder: config, tokenizer, what training changed and a card
    (``finetuned.json``: base model, data, recipe, metrics).

    Frozen parameters are left out; they come from the base model at load time, and so does the
    tokenizer when it is the base's own (17 MB for the multilingual base). A trained matrix
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
    tokenizer_files = tokenizer.save_pretrained(str(tmp))
    if _is_base_tokenizer(tmp / "tokenizer.json", base_model):
        for name in tokenizer_files:
            Path(name).unlink(missing_ok=True)
    (tmp / CARD).write_text(json.dumps({"base_model": base_model, **card}, indent=2, default=str))
    if folder.exists():
        shutil.rmtree(folder)
    os.replace(tmp, folder)


def _is_base_tokenizer(saved: Path, base_model: str) -> bool:
    """Whether the ``saved`` tokenizer.json is the base model's own, truncation and padding aside
    (tokenizing the training data sets them)."""
    import json

    base = Path(resolve_model(base_model)) / "tokenizer.json"
    if not (base.is_file() and saved.is_file()):
        return False  # a hub id: the folder keeps its own copy

    def rules(path: Path) -> dict:
        return {k: v for k, v in json.loads(path.read_text()).items() if k not in ("truncation", "padding")}

    return rules(saved) == rules(base)


def tokenizer_folder(folder: str | os.PathLike) -> str:
    """The folder holding a model folder's tokenizer: the folder itself, or the base model of a
    fine-tuned folder saved without one (``export_finetuned``)."""
    import json

    folder = Path(folder)
    if (folder / "tokenizer_config.json").is_file() or not (folder / CARD).is_file():
        return str(folder)
    return resolve_model(json.loads((folder / CARD).read_text())["base_model"])


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
