import numpy as np
import pytest

from search.encoders import MeanPoolingEncoder, SentenceTransformerEncoder, load_encoder
from search.errors import ModelNotFound
from search.models import resolve_model

TEXTS = ["BERT was published in 2018.", "The cat sat on the mat.", "A much longer text about search " * 20]


def test_both_encoders_agree_on_a_plain_bert(tiny_model):
    st = SentenceTransformerEncoder(tiny_model).encode(TEXTS)
    mean = MeanPoolingEncoder(tiny_model).encode(TEXTS)
    assert st.shape == mean.shape == (3, 32) and st.dtype == np.float32
    np.testing.assert_allclose(np.linalg.norm(mean, axis=1), 1.0, rtol=1e-5)
    assert np.all(np.sum(st * mean, axis=1) > 0.999)


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
def test_minilm_encoders_agree(minilm):
    st = load_encoder("all-MiniLM-L6-v2", "sentence-transformers").encode(TEXTS)
    mean = load_encoder("minilm", "mean-pooling").encode(TEXTS)
    assert st.shape == (3, 384)
    assert np.all(np.sum(st * mean, axis=1) > 0.999)
    similar = st[0] @ load_encoder(minilm).encode(["When was BERT released?"])[0]
    assert similar > st[1] @ st[0]
