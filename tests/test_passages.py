from search.passages import sentence_starts, split_passages


def _tokens(tokenizer, text):
    return tokenizer(text, add_special_tokens=False)["input_ids"]


def test_sentence_starts():
    text = "First one. Second one! Third?\n\nNew paragraph"
    starts = sentence_starts(text)
    assert [text[s:].split()[0] for s in starts] == ["First", "Second", "Third?", "New"]


def test_short_text_is_one_passage_with_exact_offsets(tiny_model):
    from transformers import AutoTokenizer

    tok = AutoTokenizer.from_pretrained(tiny_model)
    text = "  The cat sat on the mat.  "
    (p,) = split_passages(text, tok, max_tokens=50)
    assert p.text == "The cat sat on the mat."
    assert text[p.start : p.end] == p.text


def test_long_text_respects_window_sentences_and_overlap(tiny_model):
    from transformers import AutoTokenizer

    tok = AutoTokenizer.from_pretrained(tiny_model)
    sentences = [f"The cat {i} sat on the mat in the park." for i in range(40)]
    text = " ".join(sentences)
    passages = split_passages(text, tok, max_tokens=40, overlap=12)
    assert len(passages) > 5
    for p in passages:
        assert text[p.start : p.end] == p.text
        assert len(_tokens(tok, p.text)) <= 40
        assert p.text.startswith("The cat ")  # every cut falls on a sentence start
    for a, b in zip(passages, passages[1:]):
        assert b.start < a.end  # consecutive passages overlap
        assert b.start > a.start
    assert passages[0].start == 0 and passages[-1].end == len(text)


def test_text_without_sentence_breaks_is_windowed(tiny_model):
    from transformers import AutoTokenizer

    tok = AutoTokenizer.from_pretrained(tiny_model)
    text = " ".join(["word"] * 300)
    passages = split_passages(text, tok, max_tokens=32, overlap=8)
    covered = set()
    for p in passages:
        assert len(_tokens(tok, p.text)) <= 32
        covered.update(range(p.start, p.end))
    assert covered >= {i for i, c in enumerate(text) if c != " "}


def test_empty_text_has_no_passages(tiny_model):
    from transformers import AutoTokenizer

    assert split_passages("   \n ", AutoTokenizer.from_pretrained(tiny_model)) == []


def test_the_encoders_tokenizers_splitter_cuts_where_transformers_does(tiny_model):
    """Indexing splits with tokenizer.json alone (no transformers import): the same passages."""
    from transformers import AutoTokenizer

    from search import load_encoder

    splitter = load_encoder(tiny_model).splitting_tokenizer
    assert not hasattr(splitter, "pad")  # a tokenizers.Tokenizer, not a transformers tokenizer
    text = " ".join(f"Sentence {i} says naïve things about the café, on and on." for i in range(60))
    expected = split_passages(text, AutoTokenizer.from_pretrained(tiny_model), max_tokens=48, overlap=10)
    assert len(expected) > 5 and split_passages(text, splitter, max_tokens=48, overlap=10) == expected


def _whole_words(text, passages):
    return all(p.text == p.text.strip() and (p.start == 0 or text[p.start - 1].isspace())
               and (p.end == len(text) or text[p.end].isspace() or text[p.end] in ".,") for p in passages)


def test_passages_cut_between_words_of_a_sentencepiece_tokenizer():
    """Metaspace tokenizers (multilingual-e5) cut words into pieces and give "▁Д" the offsets of " Д"."""
    from tokenizers import Tokenizer, models, pre_tokenizers

    pieces = ["<unk>", "\u2581", "\u2581Д", "ю", "пон", "\u2581де", "\u2581Не", "мур", "\u2581осно", "вал", "\u2581за", "вод", ","]
    tokenizer = Tokenizer(models.Unigram([(p, -1.0) for p in pieces], unk_id=0))
    tokenizer.pre_tokenizer = pre_tokenizers.Metaspace()
    text = " ".join(["Дюпон де Немур основал завод,"] * 12)
    assert [text[s:e] for s, e in tokenizer.encode(text).offsets[:3]] == ["Д", "ю", "пон"]
    assert tokenizer.encode(text).offsets[3] == (5, 8)  # " де", space included
    passages = split_passages(text, tokenizer, max_tokens=8, overlap=3)
    assert len(passages) > 5 and _whole_words(text, passages)
    assert all(text[p.start : p.end] == p.text for p in passages)


def test_passages_cut_between_words_of_a_wordpiece_tokenizer(tiny_model):
    from search.exported import fast_tokenizer

    tokenizer = fast_tokenizer(tiny_model)  # "2018" is 2 ##0 ##1 ##8 in its vocabulary
    text = " ".join(f"the cat 2018 sat on the mat 1969 in the park {i}" for i in range(20))
    passages = split_passages(text, tokenizer, max_tokens=10, overlap=3)
    assert len(passages) > 10 and _whole_words(text, passages)
