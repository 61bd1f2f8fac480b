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
