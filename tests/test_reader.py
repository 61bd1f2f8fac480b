import json
import shutil

import numpy as np
import pytest

from search.errors import ModelNotFound
from search.reader import Reader, abstain, best_spans, length_batches, retrieval_evidence, sentence_around


def test_best_spans_follow_the_rules():
    start = np.array([9.0, 1.0, 5.0, 0.0, 4.0, 0.0, 8.0])
    end = np.array([9.0, 0.0, 1.0, 6.0, 0.0, 2.0, 0.0])
    # context is tokens 1..5: token 0 (like [CLS]) and 6 (like the question) never take part
    spans = best_spans(start, end, first=1, last=5, top_n=5, max_tokens=3)
    assert spans[0] == (11.0, 2, 3)  # start 2 (5.0) + end 3 (6.0)
    assert all(1 <= s <= e <= 5 and e - s < 3 for _, s, e in spans)
    assert (10.0, 4, 3) not in spans  # end before start is never a span
    assert [x[0] for x in spans] == sorted((x[0] for x in spans), reverse=True)
    assert best_spans(start, end, first=3, last=2) == []


def test_max_answer_length_is_respected():
    start = np.array([0.0, 10.0, 0.0, 0.0, 0.0])
    end = np.array([0.0, 0.0, 0.0, 0.0, 10.0])
    assert best_spans(start, end, 0, 4, max_tokens=4)[0][1:] == (1, 4)
    assert best_spans(start, end, 0, 4, max_tokens=3)[0][1:] != (1, 4)


def _peaks(encoded, window, s_tok, e_tok):
    """Logits that make token s_tok..e_tok of ``window`` the only strong span."""
    n, width = len(encoded["input_ids"]), len(encoded["input_ids"][0])
    start, end = np.zeros((n, width), np.float32), np.zeros((n, width), np.float32)
    start[window, s_tok], end[window, e_tok] = 10.0, 10.0
    return start, end


def test_long_passage_is_windowed_and_offsets_map_back(tiny_qa, monkeypatch):
    reader = Reader(tiny_qa, max_length=48, stride=16)
    passage = " ".join(f"the dog ran in the park number {i}." for i in range(30)) + " The cat sat on the mat in 2018."
    encoded = reader._windows("when did the cat sit", [passage])
    assert len(encoded["input_ids"]) > 3  # split into windows, not truncated
    last = len(encoded["input_ids"]) - 1
    offsets, seq = encoded["offset_mapping"][last], encoded.sequence_ids(last)
    at = passage.index("2018")  # word pieces 2 ##0 ##1 ##8 in the tiny vocabulary
    first = next(i for i, s in enumerate(seq) if s == 1 and offsets[i][0] == at)
    last_piece = next(i for i, s in enumerate(seq) if s == 1 and offsets[i][1] == at + 4)
    assert last_piece > first
    monkeypatch.setattr(reader, "_logits", lambda enc: _peaks(enc, last, first, last_piece))
    (best,) = reader.read("when did the cat sit", [passage], top_k=1)
    assert best.text == "2018" and passage[best.start : best.end] == "2018" and best.passage == 0
    assert 0.0 < best.score <= 1.0


def test_a_span_ending_on_a_called_name_takes_its_parentheses(tiny_qa, monkeypatch):
    reader = Reader(tiny_qa)
    passage = "To save the changes, call con.commit() after the insert. Then close(x) it."
    question = "how do I save the changes"
    encoded = reader._windows(question, [passage])
    offsets, seq = encoded["offset_mapping"][0], encoded.sequence_ids(0)

    def token(at, edge):
        return next(i for i, s in enumerate(seq) if s == 1 and offsets[i][edge] == at)

    for name, want in (("con.commit", "con.commit()"), ("close", "close")):  # close(x): not an empty call
        at = passage.index(name)
        monkeypatch.setattr(reader, "_logits", lambda enc, at=at, name=name: _peaks(enc, 0, token(at, 0), token(at + len(name), 1)))
        (best,) = reader.read(question, [passage], top_k=1, threshold=None)
        assert best.text == want and passage[best.start : best.end] == want


def test_answers_are_ranked_across_passages(tiny_qa):
    reader = Reader(tiny_qa)
    answers = reader.read("who sat", ["the cat sat on the mat", "the dog ran in the park"], top_k=5)
    assert 1 <= len(answers) <= 5
    assert [a.logit for a in answers] == sorted((a.logit for a in answers), reverse=True)
    for a in answers:
        assert ["the cat sat on the mat", "the dog ran in the park"][a.passage][a.start : a.end] == a.text
    assert reader.read("who", []) == []


def test_int8_reader_runs_quantized_linear_layers(tiny_qa):
    import torch

    reader = Reader(tiny_qa, precision="int8")
    assert any(isinstance(m, torch.ao.nn.quantized.dynamic.Linear) for m in reader.model.modules())
    passages = ["the cat sat on the mat", "the dog ran in the park"]
    answers = reader.read("who sat", passages, top_k=3)
    assert answers and all(passages[a.passage][a.start : a.end] == a.text for a in answers)


def test_a_bfloat16_reader_gives_the_float32_logits_to_within_bfloat16_rounding(tiny_qa):
    import torch

    exact, half = Reader(tiny_qa, precision="float32"), Reader(tiny_qa, precision="bfloat16")
    assert half.model.dtype == torch.bfloat16 and exact.model.dtype == torch.float32
    encoded = exact._windows("who sat on the mat", ["the cat sat on the mat", "the dog ran in the park"])
    for want, got in zip(exact._logits(encoded), half._logits(encoded)):
        assert got.dtype == np.float32 and want.shape == got.shape
        assert np.abs(got - want).max() <= 0.05 * np.abs(want).max()
        assert not np.array_equal(got, want)  # it did run in bfloat16


def test_windows_of_similar_length_run_together_with_little_padding():
    lengths = [10, 200, 190, 50, 180, 45]
    batches = length_batches(lengths, size=16)
    assert sorted(i for b in batches for i in b) == list(range(6))
    assert batches[0] == [1, 2, 4] and [0] in batches  # 10 tokens are not padded to 200
    for batch in batches:
        padded = len(batch) * max(lengths[i] for i in batch)
        assert padded - sum(lengths[i] for i in batch) <= 0.1 * padded
    assert [len(b) for b in length_batches([100] * 40, size=16)] == [16, 16, 8]


def test_logits_of_length_batches_equal_those_of_one_padded_batch(tiny_qa):
    import torch

    reader = Reader(tiny_qa, precision="float32", backend="torch", max_length=64, stride=16)
    passages = ["A short one.", "A much longer passage about cats and dogs that goes on for a while, and on.", "Mid length text here."]
    encoded = reader._windows("what about cats?", passages)
    starts, ends = reader._logits(encoded)
    batch = {n: torch.tensor(encoded[n]) for n in ("input_ids", "attention_mask", "token_type_ids")}
    with torch.inference_mode():
        padded = reader.model(**batch)
    for w, mask in enumerate(encoded["attention_mask"]):
        n = sum(mask)
        assert np.allclose(starts[w][:n], padded.start_logits[w][:n].numpy(), atol=1e-5)
        assert np.allclose(ends[w][:n], padded.end_logits[w][:n].numpy(), atol=1e-5)
        assert (starts[w][n:] == -1e4).all()


def test_the_onnx_reader_reads_the_windows_and_logits_of_torch(tiny_qa):
    """tokenizers alone gives the transformers tokenizer's windows; the exported model, torch's logits."""
    on_torch = Reader(tiny_qa, precision="float32", backend="torch", max_length=64, stride=16)
    on_onnx = Reader(tiny_qa, precision="float32", backend="onnx", max_length=64, stride=16)
    question = "what about cats?"
    passages = ["A short one.", "cats and dogs " * 40, "Mid length text here, with a comma."]
    want, got = on_torch._windows(question, passages), on_onnx._windows(question, passages)
    mapping = got["overflow_to_sample_mapping"]
    assert mapping == list(want["overflow_to_sample_mapping"]) and mapping.count(1) > 2  # the long one overflows
    for w, mask in enumerate(want["attention_mask"]):
        n = sum(mask)
        for key in ("input_ids", "token_type_ids", "offset_mapping"):
            assert [tuple(x) if key == "offset_mapping" else x for x in want[key][w][:n]] == list(got[key][w]), key
        assert want.sequence_ids(w)[:n] == got.sequence_ids(w)
    (start_t, end_t), (start_o, end_o) = on_torch._logits(want), on_onnx._logits(got)
    np.testing.assert_allclose(start_o, start_t[:, : start_o.shape[1]], atol=1e-4)
    np.testing.assert_allclose(end_o, end_t[:, : end_o.shape[1]], atol=1e-4)
    spans = lambda reader: [(a.passage, a.start, a.end, round(a.score, 4)) for a in reader.read(question, passages, threshold=None)]  # noqa: E731
    assert spans(on_onnx) == spans(on_torch)


def test_the_int8_reader_is_the_default_on_onnx_and_close_to_float32(tiny_qa):
    exact = Reader(tiny_qa, precision="float32", backend="onnx", max_length=64, stride=16)
    int8 = Reader(tiny_qa, backend="onnx", max_length=64, stride=16)
    assert (exact.session.precision, int8.session.precision) == ("float32", "int8")
    windows = exact._windows("what about cats?", ["cats and dogs " * 40, "A short one."])
    (start_f, _), (start_q, _) = exact._logits(windows), int8._logits(windows)
    real = start_f > -1e4
    assert 0 < np.abs(start_q - start_f)[real].max() < 0.1 * np.abs(start_f[real]).max()
    assert np.corrcoef(start_q[real], start_f[real])[0, 1] > 0.99


def test_a_model_folder_can_keep_its_feed_forward_layers_in_float32_when_int8(tiny_qa, tmp_path):
    import onnx

    def float32_matmuls(reader):
        graph = onnx.load(str(reader.session.path)).graph
        weights = {i.name for i in graph.initializer}
        return sum(n.op_type == "MatMul" and n.input[1] in weights for n in graph.node)

    folder = tmp_path / "qa"
    shutil.copytree(tiny_qa, folder)
    (folder / "quantization.json").write_text('{"feed_forward": "float32"}')
    usual, kept = (Reader(str(f), backend="onnx", max_length=64, stride=16) for f in (tiny_qa, folder))
    assert (usual.session.precision, kept.session.precision) == ("int8", "int8")
    assert float32_matmuls(kept) == float32_matmuls(usual) + 2  # the first half of both layers' feed-forward
    windows = usual._windows("what about cats?", ["cats and dogs " * 40])
    assert np.corrcoef(usual._logits(windows)[0][0], kept._logits(windows)[0][0])[0, 1] > 0.99


def test_sentence_around():
    text = "First sentence here. The cat sat on the mat. Last one."
    start = text.index("cat")
    sentence, offset = sentence_around(text, start, start + 3)
    assert sentence == "The cat sat on the mat." and sentence[offset : offset + 3] == "cat"


def test_missing_default_reader_says_how_to_get_one(monkeypatch, tmp_path):
    from search import reader as reader_module

    monkeypatch.setattr(reader_module, "DEFAULT_READER", tmp_path / "nothing")
    with pytest.raises(ModelNotFound, match="search train reader"):
        Reader().model


def _calibrated(tiny_qa, folder, **calibration):
    """A copy of the tiny reader with a calibration.json."""
    shutil.copytree(tiny_qa, folder)
    (folder / "calibration.json").write_text(json.dumps(calibration))
    return str(folder)


def _fixed_logits(reader, passages):
    encoded = reader._windows("who sat", passages)
    start, end = _peaks(encoded, 0, 5, 5)  # a span of logit 20 ("cat") in passage 0 ...
    start[:, 0], end[:, 0] = 8.0, 8.0  # ... against a no-answer ([CLS]) logit of 16
    start[1, 5], end[1, 5] = 9.0, 9.0  # and a span of logit 18 in passage 1
    return start, end


def test_the_margin_is_the_best_span_over_no_answer_and_ignores_passage_bias(tiny_qa, monkeypatch):
    reader = Reader(tiny_qa)
    passages = ["the cat sat on the mat", "the dog ran in the park"]
    monkeypatch.setattr(reader, "_logits", lambda enc: _fixed_logits(reader, passages))
    assert reader.calibration is None  # uncalibrated: the default threshold does not abstain
    assert reader.read("who sat", passages, top_k=1)[0].passage == 0
    assert reader.read("who sat", passages, top_k=1, passage_bias=[0.0, 3.0])[0].passage == 1
    assert reader.spans("who sat", passages)[1] == 4.0
    assert reader.spans("who sat", passages, passage_bias=[16.0, 16.0])[1] == 4.0


def test_calibrated_confidence_and_the_default_threshold(tiny_qa, tmp_path, monkeypatch):
    passages = ["the cat sat on the mat", "the dog ran in the park"]
    reader = Reader(_calibrated(tiny_qa, tmp_path / "reader", scale=1.0, bias=-4.0, threshold=0.4))
    monkeypatch.setattr(reader, "_logits", lambda enc: _fixed_logits(reader, passages))
    assert reader.calibration.answerable(4.0) == 0.5  # sigmoid(1 * 4 - 4)
    best = reader.read("who sat", passages, top_k=1)  # the default threshold: 0.4
    assert best[0].text == "cat" and 0.4 < best[0].score <= 0.5  # 0.5 times its softmax share
    assert reader.read("who sat", passages, threshold=0.6) == []
    assert reader.read("who sat", passages, threshold=None)[0].text == "cat"


def test_abstaining_keeps_or_drops_every_answer():
    from types import SimpleNamespace as A

    answers = [A(score=0.5), A(score=0.2)]
    assert abstain(answers, None) == abstain(answers, 0.5) == answers
    assert abstain(answers, 0.6) == [] and abstain([], 0.1) == [] and abstain([], None) == []


@pytest.mark.parametrize("text, span, ok", [
    ("The cat sat. The dog ran.", "sat. The dog", False),  # crosses a sentence
    ("Dr. Smith wrote it.", "Dr. Smith", True),  # an abbreviation is not a sentence end
    ("Written by C. J. Anderson in 2001.", "C. J. Anderson", True),
    ("the catalogue", "cat", False),  # part of a word
    ("red, green and blue", "red,", False),  # a dangling comma
    ("call open(path) first", "open(path", False),  # unbalanced bracket
    ("call open(path) first", "open(path)", True),
    ('the word "yes" here', '"yes', False),
    ("the Workers' Party won", "Workers' Party", True),
    ("run `pip install` now", "`pip install`", True),
    ("Level | When it's used\nDEBUG | Detailed information", "Level | When", False),  # across table cells
    ("Level | When it's used\nDEBUG | Detailed information", "used\nDEBUG", False),  # across lines
    ("Level | When it's used\nDEBUG | Detailed information", "DEBUG", True),
    ("The variable sys.path is a list.", "variable sys", False),  # a dotted name is one word
    ("The variable sys.path is a list.", "sys.path", True),
    ("Python 3.11 is out.", "Python 3", False),
])
def test_spans_a_person_would_select(text, span, ok):
    from search.passages import sentence_starts
    from search.reader import _acceptable

    start = text.index(span)
    assert _acceptable(text, start, start + len(span), sentence_starts(text)) is ok


def test_retrieval_evidence_is_relative_to_the_best_hit():
    from types import SimpleNamespace as Hit

    bm25 = [Hit(score=30.0), Hit(score=15.0), Hit(score=0.0)]
    hybrid = [Hit(score=1.0), Hit(score=0.5), Hit(score=0.0)]
    assert retrieval_evidence(bm25, 8.0) == retrieval_evidence(hybrid, 8.0) == [8.0, 4.0, 0.0]
    assert retrieval_evidence([Hit(score=-0.2), Hit(score=-0.3)], 8.0) == [0.0, 0.0]  # no evidence at all
    assert retrieval_evidence([], 8.0) == []


def test_a_heading_a_passage_starts_with_is_no_answer(tiny_qa, monkeypatch):
    from search.reader import body_start

    passage = "Dates and Times\n\nThe datetime module supplies classes for dates."
    assert body_start(passage, {"Dates and Times", "Brief Tour"}) == passage.index("The datetime")
    assert body_start(passage, {"Other"}) == 0 and body_start("Dates and Times", {"Dates and Times"}) == len("Dates and Times")
    reader = Reader(tiny_qa)
    question = "what supplies classes for dates"
    encoded = reader._windows(question, [passage])
    offsets, seq = encoded["offset_mapping"][0], encoded.sequence_ids(0)
    first = next(i for i, s in enumerate(seq) if s == 1)
    last = next(i for i, s in enumerate(seq) if s == 1 and offsets[i][1] == len("Dates and Times"))
    monkeypatch.setattr(reader, "_logits", lambda enc: _peaks(enc, 0, first, last))
    assert reader.read(question, [passage], top_k=1, threshold=None)[0].text == "Dates and Times"
    (best,) = reader.read(question, [passage], top_k=1, threshold=None, body_starts=[body_start(passage, {"Dates and Times"})])
    assert best.start >= passage.index("The datetime")


@pytest.mark.parametrize("question, kind", [
    ("Which function returns the length of a list?", "function"),
    ("What built-in function lists names?", "function"),
    ("which module sends mail", "module"),
    ("What is the capital of France?", None),
    ("Which kind of sockets are common?", None),
    ("How do I save changes?", None),
])
def test_the_kind_a_question_asks_for(question, kind):
    from search.reader import asked_kind

    assert asked_kind(question) == kind


def _ranked(passage, spans, kind=None):
    """``_rank`` of spans given as texts (first occurrence in ``passage``) with their logits."""
    from search.reader import _rank

    candidates = [(logit, 0, passage.index(t), passage.index(t) + len(t)) for t, logit in spans]
    return [(a.text, round(a.score, 3)) for a in _rank(candidates, [passage], 5, 1.0, kind)]


def test_answers_take_the_shape_a_person_accepts():
    # a whole signature line answers with its name, and adds up with the name alone; a call in prose stays
    assert _ranked("abs(x)\n\nReturn the absolute value of a number.", [("abs(x)", 1.0), ("abs", 1.0)]) == [("abs", 1.0)]
    assert _ranked("Then call abs(x) once.", [("abs(x)", 1.0)])[0][0] == "abs(x)"
    # the kind the question names goes, with the article before it
    assert _ranked("The pass statement does nothing.", [("The pass statement", 1.0)], "statement")[0][0] == "pass"
    assert _ranked("The built-in function dir() lists names.", [("The built-in function dir()", 1.0)], "function")[0][0] == "dir()"
    assert _ranked("Use the secrets module instead.", [("secrets module", 1.0)], "module")[0][0] == "secrets"
    # a kind written with a capital is part of a name
    assert _ranked("They played at Levi's Stadium.", [("Levi's Stadium", 1.0)], "stadium")[0][0] == "Levi's Stadium"
    assert _ranked("It was Super Bowl XXXVII.", [("Super Bowl XXXVII", 1.0)], "super")[0][0] == "Super Bowl XXXVII"


def test_answers_that_cannot_be_of_the_kind_asked_go_and_keep_their_share():
    import math

    passage = "The re module provides re.compile() for patterns."
    ranked = _ranked(passage, [("The re module provides re.compile()", 2.0), ("re.compile()", 1.0)], "function")
    assert ranked == [("re.compile()", round(1 / (1 + math.e), 3))]  # the share of the one that went is not handed on
    assert _ranked("Level | Value\nDEBUG | 10", [("Level", 2.0), ("DEBUG", 0.0)], "level")[0][0] == "DEBUG"
    assert _ranked("Use the secrets module.", [("secrets module", 1.0)], None)[0][0] == "secrets module"


def test_ask_skips_the_headings_of_a_section_but_not_the_first_line_of_a_text_file():
    from types import SimpleNamespace as Hit

    from search.reader import answers_from_hits

    seen = {}

    class Recording:
        languages = None

        def read(self, question, passages, body_starts=None, **options):
            seen["bodies"] = body_starts
            return []

        def threshold_for(self, threshold):
            return None

        def reads(self, hit):
            return True

    hits = [Hit(text="Dates and Times\n\nThe datetime module.", title="Brief Tour", section="Dates and Times", score=1.0),
            Hit(text="Paris is the capital.\n\nIt is big.", title="Paris is the capital.", section="", score=0.5)]
    assert answers_from_hits(Recording(), "which module", hits) == []
    assert seen["bodies"] == [len("Dates and Times\n\n"), 0]


def test_an_answer_counts_the_passages_that_gave_it_not_its_spans():
    """A name said twice in one passage is one passage agreeing; its confidences still add up."""
    from types import SimpleNamespace as Hit

    from search.reader import Answer, answers_from_hits

    texts = ["Yuri Dolgorukiy founded it. Yuri Dolgorukiy invited an ally.", "Founded by Yuri Dolgorukiy.", "Moscow."]

    class Fixed:
        languages = None

        def read(self, question, passages, **options):
            at = [(0, 0), (0, 28), (1, 11), (2, 0)]
            return [Answer(text=texts[p][s:s + 15] if p < 2 else "Moscow", score=0.2, logit=1.0, passage=p, start=s,
                           end=s + (15 if p < 2 else 6)) for p, s in at]

        def threshold_for(self, threshold):
            return None

        def reads(self, hit):
            return True

    hits = [Hit(text=t, title="", section="", score=1.0, path="m.txt", start=0, page=None, rank=i + 1,
                document_id=1, passage_id=i + 1) for i, t in enumerate(texts)]
    found = answers_from_hits(Fixed(), "who founded Moscow", hits)
    assert [(f.text, f.sources) for f in found] == [("Yuri Dolgorukiy", 2), ("Moscow", 1)]
    assert found[0].score == pytest.approx(0.6)


def test_answers_do_not_start_with_the_space_sentencepiece_offsets_hold(tiny_qa, tmp_path):
    """Metaspace tokenizers (multilingual-e5, XLM-R) give "▁Дюпон" the offsets of " Дюпон"."""
    import shutil

    from tokenizers import Tokenizer, models, pre_tokenizers, processors

    folder = tmp_path / "sentencepiece-reader"
    shutil.copytree(tiny_qa, folder)
    words = ["[PAD]", "[UNK]", "[CLS]", "[SEP]"] + [f"\u2581{w}" for w in "who founded the mill dupont de nemours a student".split()]
    tokenizer = Tokenizer(models.WordLevel({w: i for i, w in enumerate(words)}, unk_token="[UNK]"))
    tokenizer.pre_tokenizer = pre_tokenizers.Metaspace()
    tokenizer.post_processor = processors.TemplateProcessing(
        single="[CLS] $A [SEP]", pair="[CLS] $A [SEP] $B:1 [SEP]:1", special_tokens=[("[CLS]", 2), ("[SEP]", 3)])
    tokenizer.save(str(folder / "tokenizer.json"))
    passage = "dupont de nemours founded the mill a student"
    assert passage[slice(*tokenizer.encode("who", passage).offsets[-3])] == " a"  # "▁a": the space and the letter
    answers = Reader(str(folder), backend="onnx").read("who founded the mill", [passage], top_k=20, threshold=None)
    assert len(answers) > 5 and all(a.text == a.text.strip() == passage[a.start : a.end] for a in answers)
