"""search tokenize and search fill-mask: how a model sees a text."""

import json

import pytest
from click.testing import CliRunner

from search.cli import cli
from search.errors import ModelNotFound
from search.fill_mask import MaskFiller
from search.tokenization import tokenize


def run(*args, ok=True):
    result = CliRunner().invoke(cli, [str(a) for a in args])
    if ok:
        assert result.exit_code == 0, result.output
    return result


def test_tokens_carry_pieces_ids_and_offsets_that_slice_the_text(tiny_model):
    text = "The cat sat, snakecode!"
    result = tokenize(text, tiny_model)
    assert result.tokens[0].piece == "[CLS]" and result.tokens[-1].piece == "[SEP]"
    assert all(t.special == (t.start is None) for t in result.tokens)
    words = [t for t in result.tokens if not t.special]
    assert [t.piece for t in words[:4]] == ["the", "cat", "sat", ","]
    assert "##" in "".join(t.piece for t in words)  # 'snakecode' is not in the vocabulary: split into pieces
    for t in words:
        assert text[t.start : t.end].lower() == t.piece.removeprefix("##")
    assert result.decoded.replace(" ", "") == text.lower().replace(" ", "")
    assert not any(t.special for t in tokenize(text, tiny_model, special_tokens=False).tokens)


def test_tokenize_command_prints_pieces_and_json(tiny_model):
    lines = run("tokenize", "the cat sat", "--model", tiny_model).output.splitlines()
    assert lines[0].split()[0] == "[CLS]" and lines[1].split() == ["the", lines[1].split()[1], "0-3"]
    assert lines[-1] == "5 tokens; decoded: the cat sat"
    data = json.loads(run("tokenize", "the cat", "--model", tiny_model, "--json", "--no-special").output)
    assert [t["piece"] for t in data["tokens"]] == ["the", "cat"] and data["decoded"] == "the cat"


def test_tokenize_with_the_bundled_model_offline(minilm):
    pieces = [t.piece for t in tokenize("Tokenization with MiniLM").tokens]
    assert pieces[0] == "[CLS]" and "token" in pieces and "##ization" in pieces


def test_fillers_are_the_models_most_likely_tokens_at_the_mask(tiny_mlm):
    import torch

    filler = MaskFiller(tiny_mlm, precision="float32")
    fillers = filler.fill("the cat sat on the [MASK].", top_k=3)
    batch = filler.tokenizer("the cat sat on the [MASK].", return_tensors="pt")
    at = int((batch["input_ids"][0] == filler.tokenizer.mask_token_id).nonzero())
    with torch.inference_mode():
        probabilities = torch.softmax(filler.model(**batch).logits[0, at], -1)
    best = torch.topk(probabilities, 3)
    assert [f.token for f in fillers] == [filler.tokenizer.decode([i]).strip() for i in best.indices.tolist()]
    assert [f.score for f in fillers] == pytest.approx(best.values.tolist(), abs=1e-6)
    assert fillers[0].text == f"the cat sat on the {fillers[0].token}."


def test_fill_mask_needs_one_mask_and_a_model(tiny_mlm):
    with pytest.raises(ValueError, match="exactly one"):
        MaskFiller(tiny_mlm).fill("no mask here")
    with pytest.raises(ModelNotFound, match="No masked-language model ships"):
        MaskFiller()
    result = run("fill-mask", "Paris is the [MASK] of France.", ok=False)
    assert result.exit_code == 1 and "No masked-language model ships" in result.output
    lines = run("fill-mask", "the [MASK] sat", "--model", tiny_mlm, "--top", "2").output.splitlines()
    assert len(lines) == 2 and all(float(line.split()[0]) <= 1 for line in lines)
