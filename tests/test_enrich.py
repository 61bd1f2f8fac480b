import numpy as np
import pytest

from conftest import CONLL_LABELS
from search.classification import TextClassifier
from search.conll import iob1_to_bio, pack_sentences, read_conll_documents, split_words, unpack_tags
from search.labelled import read_labelled
from search.metrics import entity_spans, score_entities
from search.tagging import Entity, EntityTagger, _entities, case_types

ID2LABEL = dict(enumerate(CONLL_LABELS))


def test_iob1_to_bio():
    assert iob1_to_bio(["I-PER", "I-PER", "O", "I-LOC", "B-LOC", "I-ORG"]) == ["B-PER", "I-PER", "O", "B-LOC", "B-LOC", "B-ORG"]


def test_strict_entity_scoring_by_hand():
    gold = [["B-PER", "I-PER", "O", "B-ORG"], ["B-LOC", "O"]]
    pred = [["B-PER", "I-PER", "O", "B-LOC"], ["I-LOC", "O"]]  # wrong type; a stray I- is no entity
    assert entity_spans(gold[0]) == {(0, 2, "PER"), (3, 4, "ORG")}
    assert entity_spans(pred[1]) == set()
    scores = score_entities(gold, pred)
    # 1 right of 2 predicted and of 3 gold entities
    assert scores["precision"] == pytest.approx(50.0) and scores["recall"] == pytest.approx(100 / 3)
    assert scores["f1"] == pytest.approx(40.0)


def _probs(labels):
    out = np.full((len(labels), len(CONLL_LABELS)), 0.01)
    for i, label in enumerate(labels):
        out[i, CONLL_LABELS.index(label)] = 0.9
    return out


def test_word_pieces_and_b_i_tags_merge_into_whole_entities():
    text = "Elon Musk founded Tesla in California"
    # tokens: [CLS] El ##on Mu ##sk founded Tesla in California [SEP]
    word_ids = [None, 0, 0, 1, 1, 2, 3, 4, 5, None]
    offsets = [(0, 0), (0, 2), (2, 4), (5, 7), (7, 9), (10, 17), (18, 23), (24, 26), (27, 37), (0, 0)]
    # later word pieces get nonsense labels: only a word's first piece counts
    labels = ["O", "B-PER", "B-ORG", "I-PER", "B-LOC", "O", "B-ORG", "O", "B-LOC", "O"]
    entities = _entities(text, word_ids, offsets, _probs(labels), ID2LABEL)
    assert [(e.text, e.label, e.start, e.end) for e in entities] == [
        ("Elon Musk", "PER", 0, 9), ("Tesla", "ORG", 18, 23), ("California", "LOC", 27, 37)]
    assert entities[0].score == pytest.approx(0.9)


def test_adjacent_entities_and_a_type_change_split():
    text = "Paris London Acme"
    word_ids = [0, 1, 2]
    offsets = [(0, 5), (6, 12), (13, 17)]
    entities = _entities(text, word_ids, offsets, _probs(["B-LOC", "B-LOC", "I-ORG"]), ID2LABEL)
    assert [(e.text, e.label) for e in entities] == [("Paris", "LOC"), ("London", "LOC"), ("Acme", "ORG")]


def test_readers(tmp_path):
    conll = tmp_path / "x.conll"
    conll.write_text("-DOCSTART- -X- O O\n\nEU NNP I-NP I-ORG\nrejects VBZ I-VP O\n\nPeter NNP I-NP I-PER\n")
    assert read_conll_documents(conll) == [[(["EU", "rejects"], ["B-ORG", "O"]), (["Peter"], ["B-PER"])]]
    conll.write_text(conll.read_text() + "\n-DOCSTART- -X- O O\n\nBonn NNP I-NP I-LOC\n\n")
    assert read_conll_documents(conll) == [[(["EU", "rejects"], ["B-ORG", "O"]), (["Peter"], ["B-PER"])],
                                           [(["Bonn"], ["B-LOC"])]]
    tsv = tmp_path / "x.tsv"
    tsv.write_text("sentence\tlabel\ngreat film \t1\nbad \"film\t0\n")
    assert read_labelled(tsv) == (["great film", 'bad "film'], ["1", "0"])


def test_tiny_models_give_well_formed_results(tiny_ner, tiny_sentiment):
    texts = ["the cat sat on the mat in the park", "the dog ran " * 80]
    for text, entities in zip(texts, EntityTagger(tiny_ner, max_length=32).tag(texts)):
        for e in entities:
            assert isinstance(e, Entity) and text[e.start : e.end] == e.text and e.label in {"PER", "ORG", "LOC", "MISC"}
    labels = TextClassifier(tiny_sentiment).classify(["the cat sat", "the dog ran in the park"])
    assert [label.label in {"negative", "positive"} and 0.5 <= label.score <= 1 for label in labels] == [True, True]


def test_sentences_pack_into_runs_of_their_document_and_back(minilm):
    from transformers import AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(minilm)
    a, b, c = (["the", "cat"], ["O", "O"]), (["in", "Paris"], ["O", "B-LOC"]), (["Bonn"], ["B-LOC"])
    documents = [[a, b], [c]]
    assert pack_sentences(tokenizer, documents, 32) == [(a[0] + b[0], a[1] + b[1]), c]  # never across documents
    assert pack_sentences(tokenizer, documents, 5) == [a, b, c]  # 2 + 2 pieces and [CLS] [SEP] exceed 5
    packed_tags = [["O", "O", "O", "B-LOC"], ["B-LOC"]]
    assert unpack_tags(documents, packed_tags) == [["O", "O"], ["O", "B-LOC"], ["B-LOC"]]


def test_raw_text_splits_into_words_as_conll_does():
    text = "The U.S. unit of AT&T's Anglo-Dutch O'Neill, e.g. here."
    assert [w for _, w in split_words(text)] == ["The", "U.S.", "unit", "of", "AT&T", "'s", "Anglo-Dutch", "O'Neill",
                                                 ",", "e", ".", "g", ".", "here", "."]
    assert all(text[start : start + len(word)] == word for start, word in split_words(text))


def test_case_types_mark_pieces_that_start_with_a_capital():
    text = "Elon musk of NASA"
    # [CLS] el ##on mu ##sk of nasa [SEP]
    word_ids = [None, 0, 0, 1, 1, 2, 3, None]
    offsets = [(0, 0), (0, 2), (2, 4), (5, 7), (7, 9), (10, 12), (13, 17), (0, 0)]
    assert case_types(word_ids, offsets, lambda _: text) == [0, 1, 0, 0, 0, 0, 1, 0]


def test_a_tagger_trained_with_the_case_feature_sees_capitals(tiny_ner, tmp_path):
    from transformers import AutoModelForTokenClassification

    plain = EntityTagger(tiny_ner, backend="torch")
    model = AutoModelForTokenClassification.from_pretrained(tiny_ner)
    model.config.case_feature = True
    model.save_pretrained(tmp_path / "cased")
    plain.tokenizer.save_pretrained(tmp_path / "cased")
    cased = EntityTagger(tmp_path / "cased", backend="torch")
    calls = []
    forward = cased.model.forward
    cased.model.forward = lambda **inputs: calls.append(inputs["token_type_ids"].tolist()) or forward(**inputs)
    cased.tag(["Google and python"])
    plain.model.forward = cased.model.forward
    plain.tag(["Google and python"])
    assert calls == [[[0, 1, 0, 0, 0]], [[0, 0, 0, 0, 0]]]  # [CLS] google and python [SEP]; without the flag, none
    on_onnx = EntityTagger(tmp_path / "cased", precision="float32", backend="onnx")
    texts = ["Google and python", "Ann met Bob in Paris. " * 30]  # the second overflows the window
    on_torch = EntityTagger(tmp_path / "cased", precision="float32", backend="torch", max_length=32)
    on_onnx.max_length = 32
    assert on_onnx.case_feature and on_onnx.session is not None
    torch_windows, torch_logits = on_torch.window_logits([t.split() for t in texts])
    onnx_windows, onnx_logits = on_onnx.window_logits([t.split() for t in texts])
    mapping = onnx_windows["overflow_to_sample_mapping"]
    assert mapping == torch_windows["overflow_to_sample_mapping"] and mapping.count(1) > 2
    assert onnx_windows["token_type_ids"] == torch_windows["token_type_ids"]
    for want, got in zip(torch_logits, onnx_logits):
        np.testing.assert_allclose(got, want, atol=1e-4)
    entities = lambda tagger: [[(e.text, e.label, e.start, e.end, round(e.score, 4)) for e in found]  # noqa: E731
                               for found in tagger.tag(texts)]
    assert entities(on_onnx) == entities(on_torch)


def test_the_onnx_classifier_gives_torchs_labels(tiny_sentiment):
    texts = ["A fine film.", "Dull, long and badly acted, from the first minute to the last " * 3, "ok"]
    on_torch = TextClassifier(tiny_sentiment, max_length=40, precision="float32", backend="torch").classify(texts)
    on_onnx = TextClassifier(tiny_sentiment, max_length=40, backend="onnx")  # the second is cut at 40 tokens
    assert on_onnx.session.precision == "int8"  # the default on ONNX Runtime
    got = on_onnx.classify(texts)
    assert [g.label for g in got] == [t.label for t in on_torch]
    assert max(abs(g.score - t.score) for g, t in zip(got, on_torch)) < 0.02


def test_training_recipes_run_on_tiny_files(tmp_path, tiny_model):
    from search.training import Recipe, train_classifier, train_ner

    conll = tmp_path / "x.conll"
    conll.write_text("-DOCSTART- -X- O O\n\nThe NN O I-PER\ncat NN O I-PER\nsat VB O O\n\npark NN O I-LOC\n\n" * 3)
    recipe = Recipe(base_model=tiny_model, epochs=2, batch_size=2, max_length=32, learning_rate=1e-3)
    state = train_ner(conll, tmp_path / "ner", recipe, dev=conll, progress=False, log=lambda m: None)
    assert state["step"] == 4 and 0 <= state["best"] <= 100  # 3 documents of one run each: 2 batches an epoch
    tagger = EntityTagger(tmp_path / "ner" / "best")
    assert tagger.model.config.id2label[0] == "O" and tagger.model.config.case_feature
    tsv = tmp_path / "x.tsv"
    tsv.write_text("text\tlabel\nthe cat sat\t1\nthe dog ran\t0\nthe sun\t1\n")
    state = train_classifier(tsv, tmp_path / "cls", recipe, dev=tsv, label_names=["negative", "positive"],
                             progress=False, log=lambda m: None)
    assert state["metric"] == "accuracy" and state["step"] == 4
    assert TextClassifier(tmp_path / "cls" / "best").labels == ["negative", "positive"]


def test_trained_word_embeddings_change_only_the_rows_of_words_in_the_data(tmp_path, tiny_model):
    from safetensors.torch import load_file
    from transformers import AutoModel, AutoTokenizer

    from search.training import Recipe, train_classifier

    tsv = tmp_path / "x.tsv"
    tsv.write_text("text\tlabel\nthe cat sat\t1\nthe dog ran\t0\n")
    recipe = Recipe(base_model=tiny_model, epochs=1, batch_size=2, max_length=32, freeze_word_embeddings=False)
    train_classifier(tsv, tmp_path / "cls", recipe, progress=False, log=lambda m: None)
    trained = load_file(str(tmp_path / "cls" / "checkpoint" / "trainable.safetensors"))
    after = next(v for k, v in trained.items() if k.endswith("word_embeddings.weight"))
    before = AutoModel.from_pretrained(tiny_model).get_input_embeddings().weight.detach()
    seen = {i for ids in AutoTokenizer.from_pretrained(tiny_model)(["the cat sat", "the dog ran"])["input_ids"] for i in ids}
    changed = {int(i) for i in (after != before).any(dim=1).nonzero()}
    assert changed and changed <= seen  # no weight decay pulls the other rows
