import pytest
import torch
from safetensors.torch import load_file

from search.finetuned import DELTA_WEIGHTS, export_finetuned, load_finetuned


def test_a_finetuned_folder_stores_int8_differences_of_the_changed_rows_only(tiny_model, tmp_path):
    from transformers import AutoModelForSequenceClassification, AutoTokenizer

    model = AutoModelForSequenceClassification.from_pretrained(tiny_model, num_labels=2)
    embeddings = model.get_input_embeddings().weight
    query = model.bert.encoder.layer[0].attention.self.query.weight
    torch.manual_seed(0)
    with torch.no_grad():  # what fine-tuning does: two words' rows and one whole matrix move a little
        embeddings[[7, 9]] += 0.01 * torch.randn(2, embeddings.shape[1])
        query += 0.003 * torch.randn_like(query)
    export_finetuned(model, AutoTokenizer.from_pretrained(tiny_model), tiny_model, tmp_path / "ft", {})

    saved = load_file(str(tmp_path / "ft" / DELTA_WEIGHTS))
    assert saved["bert.embeddings.word_embeddings.weight.rows"].tolist() == [7, 9]
    assert saved["bert.embeddings.word_embeddings.weight.int8"].dtype == torch.int8
    assert saved["bert.encoder.layer.0.attention.self.query.weight.rows"].numel() == query.shape[0]
    assert saved["bert.encoder.layer.1.attention.self.query.weight.rows"].numel() == 0  # unchanged
    assert saved["classifier.weight"].dtype == torch.float16  # new weights: no base to differ from

    loaded = load_finetuned(tmp_path / "ft", AutoModelForSequenceClassification).state_dict()
    for name, value in model.state_dict().items():  # off by half an int8 step at most: 0.05 / 254
        assert torch.allclose(loaded[name], value, atol=2e-4), name
    base = AutoModelForSequenceClassification.from_pretrained(tiny_model, num_labels=2)
    untouched = [i for i in range(embeddings.shape[0]) if i not in (7, 9)]
    assert torch.equal(loaded["bert.embeddings.word_embeddings.weight"][untouched],
                       base.get_input_embeddings().weight[untouched])


def test_auto_precision_is_bfloat16_only_where_the_cpu_has_bfloat16_instructions(monkeypatch):
    from search import precision

    monkeypatch.setattr(precision, "native_bfloat16", lambda: True)
    assert precision.resolve_precision("auto") == "bfloat16"
    monkeypatch.setattr(precision, "native_bfloat16", lambda: False)
    assert precision.resolve_precision("auto") == "float32"
    assert precision.resolve_precision("int8") == "int8"
    with pytest.raises(ValueError, match="Unknown precision"):
        precision.resolve_precision("float16")


def test_a_finetuned_folder_reads_with_its_base_tokenizer_unless_training_changed_it(tiny_model, tmp_path):
    from transformers import AutoModelForSequenceClassification, AutoTokenizer

    from search.classification import TextClassifier

    model = AutoModelForSequenceClassification.from_pretrained(tiny_model, id2label={0: "no", 1: "yes"})
    tokenizer = AutoTokenizer.from_pretrained(tiny_model)
    tokenizer("a question", "a passage", truncation="only_second", max_length=8, stride=2)  # as training does
    export_finetuned(model, tokenizer, tiny_model, tmp_path / "same", {})
    assert not (tmp_path / "same" / "tokenizer.json").exists()
    texts = ["a good film", "not good at all, the worst"]
    on_onnx = TextClassifier(tmp_path / "same", backend="onnx", precision="float32")
    assert on_onnx.tokenizer_path == tiny_model
    on_torch = TextClassifier(tmp_path / "same", backend="torch", precision="float32")
    scores = [[label.score for label in on.classify(texts)] for on in (on_onnx, on_torch)]
    assert scores[0] == pytest.approx(scores[1], abs=1e-4)

    tokenizer.add_tokens(["filmography"])
    model.resize_token_embeddings(len(tokenizer))
    export_finetuned(model, tokenizer, tiny_model, tmp_path / "own", {})
    assert (tmp_path / "own" / "tokenizer.json").exists()
    assert TextClassifier(tmp_path / "own").tokenizer_path == str(tmp_path / "own")
