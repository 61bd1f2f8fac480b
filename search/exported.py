"""Models exported to ONNX and run by ONNX Runtime: queries and answers without importing torch.

Importing torch and transformers costs a shell command seconds before it does anything; ONNX
Runtime and ``tokenizers`` start in a fraction of one. A model folder's ONNX file is made once, from
the torch model (``export``, through torch's own exporter), into the user's cache, named after the
folder and its files; it is checked against torch on a padded batch of mixed lengths before it is
used (an export that traces the example's attention-mask shape gives wrong vectors on any other).
"""

from __future__ import annotations

import hashlib
import os
import re
import sys
import threading
import time
from functools import cached_property
from pathlib import Path
from typing import Callable, Sequence

import numpy as np

#: Bumped when the exported graph or its inputs change: older files are no longer found.
#: 2: attention exported as written out (eager), not through scaled_dot_product_attention, whose
#: export masks the scores with ``Where``/``IsNaN`` over the whole score matrix (15% of the time).
#: 3: the int8 file stores large vocabularies' word embeddings in float16 (``quantize``).
FORMAT = 3
#: What runs a model: ONNX Runtime, torch, or auto: ONNX Runtime where it can (exporting the model
#: at first use), else torch (see ``open_session``).
BACKENDS = ("auto", "onnx", "torch")
INPUTS = ("input_ids", "attention_mask", "token_type_ids")
#: Largest difference from torch an exported model may show on the check's padded batch.
TOLERANCE = 1e-3
#: Word-embedding tables of at least this many rows are stored in float16 in the int8 file (English
#: models' 30,522 rows stay in float32, as their accuracy was measured: 47 MB, opened in 0.1 s).
LARGE_VOCABULARY = 100_000
#: An export no session has opened for this many days is removed when its model's next one is made.
UNUSED_DAYS = 30
DAY = 86400


#: Threads of each model call (None: the runtime's default, one per core); see ``set_threads``.
threads: int | None = None


def set_threads(count: int) -> None:
    """Threads for each model call from now on: ONNX Runtime sessions opened later, and torch
    (now if it is loaded, else when it loads, through OMP_NUM_THREADS)."""
    global threads
    threads = count
    os.environ["OMP_NUM_THREADS"] = str(count)
    if "torch" in sys.modules:
        sys.modules["torch"].set_num_threads(count)


def sustained_backend(backend: str, precision: str) -> str:
    """The backend for work where start-up does not count (indexing, a server): under ``auto``,
    torch where its precision resolves to bfloat16 (on CPUs with bfloat16 instructions it reads
    and encodes faster than int8 on ONNX Runtime: 85 against 119 ms for ``ask``, 54 against 48
    passages/s, docs/speed.md), else ``backend``."""
    from .precision import resolve_precision

    return "torch" if backend == "auto" and resolve_precision(precision) == "bfloat16" else backend


def cache_home() -> Path:
    """``$XDG_CACHE_HOME/search/onnx`` (``~/.cache/search/onnx``)."""
    return Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "search" / "onnx"


def onnx_file(folder: str | os.PathLike, task: str) -> Path:
    """Where the ONNX file of ``folder``'s model for ``task`` lives: named after the folder and
    the size and time of each of its files, so a changed folder gets a new file."""
    folder = Path(folder).resolve()
    digest = hashlib.sha256(f"{folder}|{task}|{FORMAT}".encode())
    for path in sorted(folder.iterdir()):
        if path.is_file():
            stat = path.stat()
            digest.update(f"{path.name}:{stat.st_size}:{stat.st_mtime_ns}".encode())
    return cache_home() / f"{folder.name}-{task}-{digest.hexdigest()[:16]}.onnx"


def check_backend(backend: str) -> str:
    if backend not in BACKENDS:
        raise ValueError(f"Unknown backend {backend!r}: use one of {', '.join(BACKENDS)}")
    return backend


def have_onnxruntime() -> bool:
    try:
        import onnxruntime  # noqa: F401  (importable: that is the question)
    except ImportError:
        return False
    return True


def export(model, folder: str | os.PathLike, task: str, outputs: Sequence[str], name: str = "") -> Path:
    """Export a float32 torch ``model`` (a transformers model whose outputs include ``outputs``)
    to ``onnx_file(folder, task)``, check it and move it into place; returns the path. ``name``
    is what the one-line notice calls the model."""
    import logging
    import warnings

    import torch

    target = onnx_file(folder, task)
    if target.exists():
        return target
    if sys.stderr.isatty():  # scripts get no notice, as they get no progress bar
        print(f"Exporting the {name or task} to ONNX for a fast start (once, a few seconds)...", file=sys.stderr)
    names = [n for n in INPUTS if n != "token_type_ids" or getattr(model.config, "type_vocab_size", 0)]
    if hasattr(model, "set_attn_implementation"):
        model.set_attn_implementation("eager")
    wrapped = _wrapped(model.float().eval(), outputs)
    example = _padded_batch(model.config, lengths=[16, 9])
    batch, tokens = torch.export.Dim("batch"), torch.export.Dim("tokens", max=model.config.max_position_embeddings)
    logging.getLogger("torch.onnx").setLevel(logging.ERROR)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        program = torch.onnx.export(
            wrapped, tuple(example[n] for n in names), input_names=names, output_names=list(outputs),
            dynamic_shapes=tuple({0: batch, 1: tokens} for _ in names), dynamo=True, optimize=True, verbose=False,
        )
    target.parent.mkdir(parents=True, exist_ok=True)
    partial = target.with_name(f"{target.name}.{os.getpid()}.partial")
    program.save(str(partial))
    try:
        _check(wrapped, partial, names)
    except Exception:
        partial.unlink(missing_ok=True)
        raise
    os.replace(partial, target)
    remove_unused(target)
    return target


def remove_unused(kept: Path, days: float = UNUSED_DAYS) -> None:
    """Remove the exports of ``kept``'s model folder name and task, other than ``kept``, that no
    session has opened for ``days`` (see ``mark_used``). An upgraded or reinstalled model gets a
    new file (``onnx_file``) and the old ones, 150 MB a model with its int8 file (850 MB for
    multilingual-e5), would stay for ever; waiting ``days`` spares two installs used by turns."""
    prefix, digest = kept.stem.rsplit("-", 1)
    name = re.compile(re.escape(prefix) + r"-([0-9a-f]{16})(?:-int8)?\.onnx")
    versions: dict[str, list[Path]] = {}
    for path in kept.parent.iterdir():
        if (match := name.fullmatch(path.name)) and match[1] != digest:
            versions.setdefault(match[1], []).append(path)
    cutoff = time.time() - days * DAY
    for paths in versions.values():
        try:
            if all(p.stat().st_mtime < cutoff for p in paths):
                for path in paths:
                    path.unlink(missing_ok=True)
        except FileNotFoundError:  # another process removed it first
            pass


def mark_used(path: Path) -> None:
    """Set ``path``'s modification time to now, at most once a day, for ``remove_unused``."""
    try:
        if time.time() - path.stat().st_mtime > DAY:
            os.utime(path)
    except OSError:  # a read-only cache: nothing is removed from it either
        pass


def _wrapped(model, outputs: Sequence[str]):
    """``model`` as the exporter takes it: inputs in order, the named outputs as a tuple."""
    import torch

    class Wrapped(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.model = model

        def forward(self, input_ids, attention_mask, token_type_ids=None):
            extra = {} if token_type_ids is None else {"token_type_ids": token_type_ids}
            out = self.model(input_ids=input_ids, attention_mask=attention_mask, **extra)
            return tuple(out[o] for o in outputs)

    return Wrapped()


def _padded_batch(config, lengths: list[int]) -> dict:
    """Random token ids, a batch of ``lengths`` padded to the longest (the mask marks the padding)."""
    import torch

    generator = torch.Generator().manual_seed(0)
    longest = max(lengths)
    ids = torch.randint(5, min(config.vocab_size, 1000), (len(lengths), longest), generator=generator)
    mask = torch.zeros_like(ids)
    for row, n in enumerate(lengths):
        mask[row, :n] = 1
    return {"input_ids": ids * mask, "attention_mask": mask, "token_type_ids": torch.zeros_like(ids)}


def _check(wrapped, path: Path, names: list[str]) -> None:
    """The exported file against torch on another padded batch than the export's example."""
    import torch

    batch = _padded_batch(wrapped.model.config, lengths=[37, 20, 5, 1])
    with torch.inference_mode():
        expected = wrapped(*(batch[n] for n in names))
    got = Session(path).run({n: batch[n].numpy() for n in names})
    mask = batch["attention_mask"].numpy().astype(bool)
    for want, have in zip(expected, got):
        want = want.float().numpy()
        if want.shape[:2] == mask.shape:  # per token: the padding's outputs do not count
            want, have = want[mask], have[mask]
        difference = np.abs(want - have).max()
        if not difference <= TOLERANCE:
            raise RuntimeError(f"The ONNX export of {path.name} differs from torch by {difference:.2g}: not used.")


def onnx_precision(precision: str) -> str | None:
    """What ``precision`` (``precision.PRECISIONS``) runs as on ONNX Runtime: ``int8`` for ``auto``
    and ``int8`` (as accurate as float32 within the noise and about twice as fast, docs/speed.md),
    ``float32`` for ``float32``; None for ``bfloat16``, which only torch runs."""
    return {"auto": "int8", "int8": "int8", "float32": "float32"}.get(precision)


def quantize(path: Path, feed_forward: bool = False) -> Path:
    """The int8 file made from the float32 file ``path`` (once, next to it): matrix multiplications
    by a weight get int8 weights with a scale per output channel, their input turned into uint8 at
    run time (``quantize_dynamic``), except those that read a GELU's output (the feed-forward
    layers' second half): quantizing them too cost the reader 0.6 F1 on SQuAD dev, leaving them in
    float32 costs nothing measurable (docs/speed.md). The weights keep 7 bits (``reduce_range``):
    CPUs without VNNI (AVX2, AVX512 without VNNI) multiply uint8 by int8 in pairs summed into int16
    (``vpmaddubsw``), which saturates with 8-bit weights; with 7 every sum is exact on every x86 CPU,
    so the accuracy measured on one holds on all. Large vocabularies' word embeddings are stored in
    float16 (``_float16_table``). With ``feed_forward`` the feed-forward layers' first half stays
    in float32 too (a model folder asks for it in its ``quantization.json``, ``int8_feed_forward``)."""
    target = path.with_name(f"{path.stem}-int8.onnx")
    if target.exists():
        return target
    import logging

    import onnx
    from onnxruntime.quantization import QuantType, quantize_dynamic

    model = onnx.load(str(path))
    graph = model.graph
    rows = {i.name: i.dims[0] for i in graph.initializer if i.dims}
    made_by = {out: node.op_type for node in graph.node for out in node.output}
    read_by = {name: node for node in graph.node for name in node.input}

    def feeds_gelu(node) -> bool:  # the feed-forward's first half: MatMul, its bias Add, then Gelu
        bias = read_by.get(node.output[0])
        return bias is not None and bias.op_type == "Add" and read_by.get(bias.output[0], bias).op_type == "Gelu"

    nodes = [n.name for n in graph.node if n.op_type == "MatMul" and n.input[1] in rows
             and made_by.get(n.input[0]) != "Gelu" and not (feed_forward and feeds_gelu(n))]
    for node in [n for n in graph.node if n.op_type == "Gather" and rows.get(n.input[0], 0) >= LARGE_VOCABULARY]:
        _float16_table(graph, node)
    logging.getLogger().setLevel(logging.ERROR)  # the quantizer advises pre-processing through the root logger
    partial = target.with_name(f"{target.name}.{os.getpid()}.partial")
    try:
        quantize_dynamic(model, str(partial), nodes_to_quantize=nodes, per_channel=True, reduce_range=True,
                         weight_type=QuantType.QInt8)
        os.replace(partial, target)
    finally:
        partial.unlink(missing_ok=True)
    return target


#: A model folder's file saying how its int8 file differs from ``quantize``'s default.
QUANTIZATION = "quantization.json"


def int8_feed_forward(folder: str | os.PathLike) -> bool:
    """Whether ``folder``'s model keeps its feed-forward layers in float32 in its int8 file
    (``{"feed_forward": "float32"}`` in its ``quantization.json``). The multilingual reader does:
    with them in int8 its best span differed from float32's on 15% of Russian questions, without
    on 7% (docs/speed.md)."""
    import json

    path = Path(folder) / QUANTIZATION
    return path.is_file() and json.loads(path.read_text()).get("feed_forward") == "float32"


def _float16_table(graph, gather) -> None:
    """Store the table ``gather`` reads rows of in float16, in ``graph``: the rows it gathers are
    turned back into float32. For word-embedding tables of ``LARGE_VOCABULARY`` rows or more:
    multilingual-e5's 250,037 rows are 384 MB of its 409 MB int8 file in float32, and ONNX
    Runtime opens the 237 MB file in half the time (0.45 against 0.9 s), with the same results
    within the noise (int8 rows would open in 0.3 s but moved them further; docs/speed.md)."""
    from onnx import TensorProto, helper, numpy_helper

    name, out = gather.input[0], gather.output[0]
    initializer = next(i for i in graph.initializer if i.name == name)
    table = numpy_helper.to_array(initializer).astype(np.float16)
    graph.initializer.remove(initializer)
    graph.initializer.append(numpy_helper.from_array(table, f"{name}_float16"))
    position = list(graph.node).index(gather)
    graph.node.remove(gather)
    graph.node.insert(position, helper.make_node("Gather", [f"{name}_float16", gather.input[1]], [f"{out}_float16"],
                                                 axis=0))
    graph.node.insert(position + 1, helper.make_node("Cast", [f"{out}_float16"], [out], to=TensorProto.FLOAT))


def open_session(folder: str, task: str, backend: str, precision: str, load_model: Callable,
                 outputs: Sequence[str], name: str = "", tokenizer: str | None = None) -> "Session | None":
    """The session ``backend`` calls for, in ``precision`` (see ``onnx_precision``), exporting
    ``load_model()`` when the file is missing; None for torch. Under ``auto`` also None where ONNX
    cannot serve: a precision only torch has was asked for, onnxruntime or the tokenizer.json (in
    the ``tokenizer`` folder, by default ``folder``) is missing, or the export failed."""
    if backend == "torch":
        return None
    has_tokenizer = (Path(tokenizer or folder) / "tokenizer.json").is_file()
    if backend == "auto" and (onnx_precision(precision) is None or not has_tokenizer or not have_onnxruntime()):
        return None
    path = onnx_file(folder, task)
    try:
        if not path.exists():
            export(load_model(), folder, task, outputs, name)
        if (onnx_precision(precision) or "float32") == "int8":
            path = quantize(path, int8_feed_forward(folder))
    except Exception:
        if backend == "onnx":
            raise
        return None  # auto: torch it is
    mark_used(path)
    return Session(path)


class Session:
    """An ONNX Runtime session on one file: ``run(inputs)`` returns the outputs as arrays."""

    def __init__(self, path: str | os.PathLike, threads: int | None = None):
        self.path = Path(path)
        self.threads = threads or globals()["threads"]
        self.precision = "int8" if self.path.stem.endswith("-int8") else "float32"

    @cached_property
    def session(self):
        import onnxruntime

        options = onnxruntime.SessionOptions()
        options.log_severity_level = 3
        if self.threads:
            options.intra_op_num_threads = self.threads
        return onnxruntime.InferenceSession(str(self.path), options, providers=["CPUExecutionProvider"])

    @cached_property
    def input_names(self) -> list[str]:
        return [i.name for i in self.session.get_inputs()]

    def run(self, inputs: dict) -> list[np.ndarray]:
        feed = {n: np.asarray(inputs[n], dtype=np.int64) for n in self.input_names}
        return self.session.run(None, feed)


class Windows(dict):
    """``tokenizers`` encodings (of texts, (question, passage) pairs or pre-split words), with their
    overflowing windows, in the shape the transformers tokenizer gives them."""

    def __init__(self, encodings, overflowing: bool = True):
        windows, samples = [], []
        for sample, encoding in enumerate(encodings):
            for window in [encoding, *(encoding.overflowing if overflowing else ())]:
                windows.append(window)
                samples.append(sample)
        super().__init__(
            input_ids=[w.ids for w in windows], attention_mask=[w.attention_mask for w in windows],
            token_type_ids=[w.type_ids for w in windows], offset_mapping=[w.offsets for w in windows],
            overflow_to_sample_mapping=samples,
        )
        self.windows = windows

    def sequence_ids(self, window: int) -> list[int | None]:
        return self.windows[window].sequence_ids

    def word_ids(self, window: int) -> list[int | None]:
        return self.windows[window].word_ids


def inputs_of(encodings) -> dict[str, np.ndarray]:
    """A model's inputs from ``tokenizers`` encodings, padded to the longest."""
    longest = max(len(e.ids) for e in encodings)
    return {name: padded([getattr(e, attr) for e in encodings], longest) for name, attr in
            (("input_ids", "ids"), ("attention_mask", "attention_mask"), ("token_type_ids", "type_ids"))}


def padded(rows: Sequence[Sequence[int]], length: int) -> np.ndarray:
    """``rows`` cut or padded with zeros to ``length``, as one int64 matrix."""
    return np.array([list(row[:length]) + [0] * (length - len(row)) for row in rows], dtype=np.int64)


def fast_tokenizer(folder: str | os.PathLike) -> "FastTokenizer | None":
    """The folder's ``tokenizer.json`` through ``tokenizers`` alone (no transformers import), or
    None when it has none."""
    path = Path(folder) / "tokenizer.json"
    return FastTokenizer(path) if path.is_file() else None


class FastTokenizer:
    """A ``tokenizer.json`` through ``tokenizers``, cutting texts as ``truncation`` says (the
    arguments of ``Tokenizer.enable_truncation``; None: no cut) and never padding. The
    ``tokenizers.Tokenizer`` is built once per file in the process and shared, its truncation set
    for each call under a lock: multilingual-e5's 250,002-piece model takes 0.8 s to build, and
    ``search index --model multilingual`` built it three times."""

    _built: dict[tuple, object] = {}
    _lock = threading.Lock()

    def __init__(self, path: Path, truncation: dict | None = None):
        self.path = path
        self.truncation = truncation
        stat = path.stat()
        self._key = (str(path.resolve()), stat.st_size, stat.st_mtime_ns)  # a changed file is built again

    def truncated(self, **truncation) -> "FastTokenizer":
        """The same tokenizer, cutting as ``Tokenizer.enable_truncation(**truncation)`` does."""
        return FastTokenizer(self.path, truncation)

    def encode(self, *args, **kwargs):
        return self._call("encode", args, kwargs)

    def encode_batch(self, *args, **kwargs):
        return self._call("encode_batch", args, kwargs)

    def _call(self, method: str, args, kwargs):
        from tokenizers import Tokenizer

        with self._lock:
            if self._key not in self._built:
                self._built[self._key] = Tokenizer.from_file(str(self.path))
            tokenizer = self._built[self._key]
            if self.truncation is None:
                tokenizer.no_truncation()
            else:
                tokenizer.enable_truncation(**self.truncation)
            tokenizer.no_padding()
            return getattr(tokenizer, method)(*args, **kwargs)
