import json
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

from search.encoders import MeanPoolingEncoder, SentenceTransformerEncoder, load_encoder
from search.errors import ModelNotFound
from search.models import resolve_model

TEXTS = ["BERT was published in 2018.", "The cat sat on the mat.", "A much longer text about search " * 20]


def _sentence_transformers_vectors(folder, texts=TEXTS):
    from sentence_transformers import SentenceTransformer

    return SentenceTransformer(str(folder), device="cpu").encode(texts, normalize_embeddings=True)


def test_a_mean_pooling_folder_gives_the_vectors_of_sentence_transformers(tiny_model):
    encoder = SentenceTransformerEncoder(tiny_model, precision="float32")
    vectors = encoder.encode(TEXTS)
    assert encoder.mean_pooling and vectors.shape == (3, 32) and vectors.dtype == np.float32
    np.testing.assert_allclose(np.linalg.norm(vectors, axis=1), 1.0, rtol=1e-5)
    np.testing.assert_allclose(vectors, _sentence_transformers_vectors(tiny_model), atol=1e-5)
    np.testing.assert_allclose(vectors, MeanPoolingEncoder(tiny_model, precision="float32").encode(TEXTS), atol=1e-6)


def _sentence_transformers_folder(tiny_model, folder, pooling: str):
    """``tiny_model`` as a sentence-transformers folder of the format all-MiniLM-L6-v2 ships in."""
    shutil.copytree(tiny_model, folder)
    (folder / "1_Pooling").mkdir()
    flags = {f"pooling_mode_{mode}": mode == pooling for mode in ("cls_token", "mean_tokens", "max_tokens")}
    (folder / "1_Pooling" / "config.json").write_text(json.dumps({"word_embedding_dimension": 32, **flags}))
    (folder / "sentence_bert_config.json").write_text(json.dumps({"max_seq_length": 64, "do_lower_case": False}))
    modules = [("", "Transformer"), ("1_Pooling", "Pooling"), ("2_Normalize", "Normalize")]
    (folder / "modules.json").write_text(json.dumps(
        [{"idx": i, "name": str(i), "path": path, "type": f"sentence_transformers.models.{kind}"}
         for i, (path, kind) in enumerate(modules)]))
    return folder


@pytest.mark.parametrize("pooling", ["mean_tokens", "cls_token"])
def test_only_mean_pooling_folders_skip_sentence_transformers(tiny_model, tmp_path, pooling):
    folder = _sentence_transformers_folder(tiny_model, tmp_path / pooling, pooling)
    encoder = SentenceTransformerEncoder(str(folder), precision="float32")
    assert encoder.mean_pooling == (pooling == "mean_tokens")
    np.testing.assert_allclose(encoder.encode(TEXTS), _sentence_transformers_vectors(folder), atol=1e-5)


def test_a_folder_in_another_format_runs_on_sentence_transformers(tiny_model, tmp_path):
    from sentence_transformers import SentenceTransformer
    from sentence_transformers.sentence_transformer.modules import Pooling, Transformer

    SentenceTransformer(modules=[Transformer(tiny_model), Pooling(32, pooling_mode="mean")]).save(str(tmp_path / "st"))
    encoder = SentenceTransformerEncoder(str(tmp_path / "st"), precision="float32")
    assert not encoder.mean_pooling  # a format this module does not read: sentence-transformers does
    np.testing.assert_allclose(encoder.encode(TEXTS), _sentence_transformers_vectors(tmp_path / "st"), atol=1e-5)


@pytest.mark.parametrize("kind", ["sentence-transformers", "mean-pooling"])
def test_bfloat16_weights_give_unit_vectors_close_to_float32(tiny_model, kind):
    exact = load_encoder(tiny_model, kind, precision="float32").encode(TEXTS)
    half = load_encoder(tiny_model, kind, precision="bfloat16")
    vectors = half.encode(TEXTS)
    assert half.precision == "bfloat16" and vectors.dtype == np.float32
    np.testing.assert_allclose(np.linalg.norm(vectors, axis=1), 1.0, rtol=1e-6)
    assert np.all(np.sum(exact * vectors, axis=1) > 0.99) and not np.array_equal(exact, vectors)


def test_window_comes_from_the_model(tiny_model):
    assert MeanPoolingEncoder(tiny_model).max_tokens == 64


def test_unknown_encoder_kind(tiny_model):
    with pytest.raises(ValueError, match="mean-pooling"):
        load_encoder(tiny_model, "word2vec")


def test_missing_model_error_says_what_was_tried(tmp_path):
    with pytest.raises(ModelNotFound) as err:
        resolve_model("someone/not-a-real-model")
    message = str(err.value)
    assert "HF_HUB_OFFLINE" in message and "bundled alias" in message
    with pytest.raises(ModelNotFound, match="no config.json"):
        resolve_model(tmp_path)


@pytest.mark.integration
def test_minilm_runs_without_importing_sentence_transformers(minilm):
    code = ("import sys; from search.encoders import load_encoder; "
            "v = load_encoder('minilm', precision='float32').encode(sys.argv[1:]); "
            "assert 'sentence_transformers' not in sys.modules; sys.stdout.buffer.write(v.tobytes())")
    out = subprocess.run([sys.executable, "-c", code, *TEXTS], capture_output=True, check=True).stdout
    vectors = np.frombuffer(out, dtype=np.float32).reshape(3, 384)
    np.testing.assert_allclose(vectors, _sentence_transformers_vectors(minilm), atol=1e-5)
    similar = vectors[0] @ load_encoder(minilm).encode(["When was BERT released?"])[0]
    assert similar > vectors[1] @ vectors[0]


@pytest.mark.parametrize("kind", ["sentence-transformers", "mean-pooling"])
def test_the_onnx_encoder_gives_torchs_vectors_on_padded_batches(tiny_model, kind):
    """Mixed lengths in one batch: an export that traced the example's mask shape fails here."""
    texts = TEXTS + ["x", "two words", "short " * 30]
    exact = load_encoder(tiny_model, kind, precision="float32", backend="torch").encode(texts, batch_size=6)
    onnx = load_encoder(tiny_model, kind, precision="float32", backend="onnx")
    assert onnx.session.precision == "float32"
    cosines = np.sum(exact * onnx.encode(texts, batch_size=6), axis=1)
    assert cosines.min() >= 0.9999
    int8 = load_encoder(tiny_model, kind, backend="onnx")  # auto: int8 weights, made from the float32 file
    assert int8.session.precision == "int8" and int8.session.path != onnx.session.path
    vectors = int8.encode(texts, batch_size=6)
    assert np.sum(exact * vectors, axis=1).min() >= 0.99 and not np.allclose(vectors, exact, atol=1e-6)


@pytest.mark.parametrize("large", [False, True])
def test_the_int8_file_stores_the_word_embeddings_of_a_large_vocabulary_in_float16(tiny_model, tmp_path, monkeypatch,
                                                                               large):
    import onnx

    import search.exported

    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path))
    if large:
        monkeypatch.setattr(search.exported, "LARGE_VOCABULARY", 100)  # the tiny vocabulary has about 180
    int8 = load_encoder(tiny_model, backend="onnx")
    tables = {i.name: i.data_type for i in onnx.load(str(int8.session.path)).graph.initializer
              if "word_embeddings" in i.name and len(i.dims) == 2}
    assert list(tables.values()) == [onnx.TensorProto.FLOAT16 if large else onnx.TensorProto.FLOAT]
    exact = load_encoder(tiny_model, precision="float32", backend="torch").encode(TEXTS)
    assert np.sum(exact * int8.encode(TEXTS), axis=1).min() >= 0.99


def test_a_new_export_removes_those_of_its_model_no_one_opened_for_a_month(tiny_model, tmp_path, monkeypatch):
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    folder = shutil.copytree(tiny_model, tmp_path / "model")
    month_ago = time.time() - 31 * 86400

    def export(version: int) -> list:
        os.utime(folder / "config.json", (version * 1e6, version * 1e6))  # a new install: a new file
        path = load_encoder(folder, backend="onnx").session.path
        return sorted(path.parent.glob(path.stem.removesuffix("-int8") + "*"))  # float32 and int8

    def age(files) -> None:
        for path in files:
            os.utime(path, (month_ago, month_ago))

    first = export(1)
    other = first[0].parent / "another-encoder-0123456789abcdef.onnx"
    other.write_bytes(b"")
    age(first + [other])
    assert load_encoder(folder, backend="onnx").session  # opened today
    second = export(2)
    assert len(first) == len(second) == 2 and all(p.exists() for p in first)
    age(first + second)
    third = export(3)
    assert not any(p.exists() for p in first + second)
    assert other.exists() and all(p.exists() for p in third)


def test_a_tokenizer_file_is_built_once_and_each_user_keeps_its_own_truncation(tiny_model):
    from search.exported import FastTokenizer, fast_tokenizer

    text = "the cat sat on the mat " * 20
    whole, short = fast_tokenizer(tiny_model), fast_tokenizer(tiny_model).truncated(max_length=8)
    assert len(short.encode(text).ids) == 8
    assert len(whole.encode(text).ids) == 122  # 120 words and [CLS], [SEP]
    assert [len(e.ids) for e in short.encode_batch([text, "a cat"])] == [8, 4]
    built = [key for key in FastTokenizer._built if key[0] == str((Path(tiny_model) / "tokenizer.json").resolve())]
    assert len(built) == 1


def test_a_precision_only_torch_has_means_torch(tiny_model):
    assert load_encoder(tiny_model, precision="bfloat16").session is None
    assert load_encoder(tiny_model, backend="torch").session is None
    assert load_encoder(tiny_model, precision="float32").session.precision == "float32"  # auto
    assert load_encoder(tiny_model).session.precision == "int8"


def test_encoding_reports_each_batch_and_batches_do_not_change_the_vectors(tiny_model):
    encoder = SentenceTransformerEncoder(tiny_model, precision="float32")
    texts = [f"text number {i} " * (i % 7 + 1) for i in range(70)]
    seen = []
    vectors = encoder.encode(texts, batch_size=16, on_batch=seen.append)
    assert seen == [16, 16, 16, 16, 6]  # a progress bar moves with every batch
    np.testing.assert_allclose(vectors, encoder.encode(texts, batch_size=70), atol=1e-5)
