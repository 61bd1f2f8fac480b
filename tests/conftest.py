import os

os.environ["HF_HUB_OFFLINE"] = "1"
os.environ["TOKENIZERS_PARALLELISM"] = "false"
if "SEARCH_TEST_CACHE" not in os.environ:  # models exported to ONNX go here, not to the user's cache
    import atexit
    import shutil
    import tempfile

    os.environ["SEARCH_TEST_CACHE"] = os.environ["XDG_CACHE_HOME"] = tempfile.mkdtemp(prefix="search-test-cache-")
    atexit.register(shutil.rmtree, os.environ["SEARCH_TEST_CACHE"], ignore_errors=True)  # about 1 GB a run

import pytest  # noqa: E402

WORDS = """the a an of in on at to and or is was were by for with from that this it its as be are
bert published google research language model transformer attention paper year cat sat mat dog
ran park sun light water plant energy search engine index query document passage vector sentence
python snake code program database file text answer question when who what where how first moon
landed apollo mountain everest climbed river long short history science computer data""".split()


def build_tiny_bert(folder, max_positions: int = 64) -> str:
    """A randomly initialised 2-layer BERT with a word-level vocabulary, saved to ``folder``."""
    from transformers import BertConfig, BertModel, BertTokenizerFast

    folder.mkdir(parents=True, exist_ok=True)
    letters = list("abcdefghijklmnopqrstuvwxyz0123456789.,!?'\"-()")
    vocab = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"] + WORDS + letters + ["##" + c for c in letters]
    vocab_file = folder / "vocab.txt"
    vocab_file.write_text("\n".join(dict.fromkeys(vocab)) + "\n")
    tokenizer = BertTokenizerFast(vocab=str(vocab_file), do_lower_case=True, model_max_length=max_positions)
    tokenizer.save_pretrained(str(folder))
    config = BertConfig(
        vocab_size=len(tokenizer), hidden_size=32, num_hidden_layers=2, num_attention_heads=2,
        intermediate_size=64, max_position_embeddings=max_positions,
    )
    import torch

    torch.manual_seed(0)
    BertModel(config).save_pretrained(str(folder))
    return str(folder)


def build_tiny_qa(folder, max_positions: int = 64) -> str:
    """The tiny BERT above with a randomly initialised span-prediction head."""
    from transformers import AutoConfig, BertForQuestionAnswering

    build_tiny_bert(folder, max_positions)
    import torch

    torch.manual_seed(1)
    BertForQuestionAnswering(AutoConfig.from_pretrained(str(folder))).save_pretrained(str(folder))
    return str(folder)


CONLL_LABELS = ["O", "B-LOC", "B-MISC", "B-ORG", "B-PER", "I-LOC", "I-MISC", "I-ORG", "I-PER"]


def build_tiny_classifier(folder, head: str, labels: list[str]) -> str:
    """The tiny BERT with a random token- or sequence-classification head over ``labels``."""
    import torch
    from transformers import AutoConfig, BertForSequenceClassification, BertForTokenClassification

    build_tiny_bert(folder)
    config = AutoConfig.from_pretrained(str(folder), num_labels=len(labels), id2label=dict(enumerate(labels)),
                                        label2id={label: i for i, label in enumerate(labels)})
    torch.manual_seed(2)
    cls = BertForTokenClassification if head == "token" else BertForSequenceClassification
    cls(config).save_pretrained(str(folder))
    return str(folder)


@pytest.fixture(scope="session")
def tiny_ner(tmp_path_factory):
    return build_tiny_classifier(tmp_path_factory.mktemp("models") / "tiny-ner", "token", CONLL_LABELS)


@pytest.fixture(scope="session")
def tiny_sentiment(tmp_path_factory):
    return build_tiny_classifier(tmp_path_factory.mktemp("models") / "tiny-sentiment", "sequence", ["negative", "positive"])


@pytest.fixture(scope="session")
def tiny_reranker(tmp_path_factory):
    """A random cross-encoder with one output, as MS MARCO's are."""
    return build_tiny_classifier(tmp_path_factory.mktemp("models") / "tiny-reranker", "sequence", ["LABEL_0"])


@pytest.fixture(scope="session")
def tiny_qa(tmp_path_factory):
    return build_tiny_qa(tmp_path_factory.mktemp("models") / "tiny-qa")


@pytest.fixture(scope="session")
def tiny_model(tmp_path_factory):
    return build_tiny_bert(tmp_path_factory.mktemp("models") / "tiny-bert")


@pytest.fixture(scope="session")
def minilm():
    from search.models import resolve_model

    return resolve_model("all-MiniLM-L6-v2")


@pytest.fixture
def corpus(tmp_path):
    """A small folder of documents in several formats."""
    root = tmp_path / "docs"
    (root / "sub").mkdir(parents=True)
    (root / "bert.md").write_text("# BERT\n\nBERT was published in 2018 by Google research. It is a language model.\n")
    (root / "cat.txt").write_text("The cat sat on the mat. The dog ran in the park.\n")
    (root / "sub" / "plant.html").write_text(
        "<html><head><title>Plants</title><script>var x = 1;</script></head>"
        "<body><p>A plant turns sun light and water into energy.</p></body></html>"
    )
    (root / "rows.jsonl").write_text(
        '{"id": "m1", "text": "Apollo landed on the moon.", "topic": "space", "year": 1969}\n'
        '{"id": "m2", "text": "Everest is a mountain first climbed in 1953.", "topic": "earth", "year": 1953}\n'
    )
    return root


@pytest.fixture(scope="session")
def tiny_mlm(tmp_path_factory):
    """The tiny BERT with a random masked-language-model head."""
    import torch
    from transformers import AutoConfig, BertForMaskedLM

    folder = tmp_path_factory.mktemp("models") / "tiny-mlm"
    build_tiny_bert(folder)
    torch.manual_seed(3)
    BertForMaskedLM(AutoConfig.from_pretrained(str(folder))).save_pretrained(str(folder))
    return str(folder)


@pytest.fixture
def run(tmp_path):
    """``run(*args, ok=True)``: the CLI through click's CliRunner, on an index in tmp_path."""
    from click.testing import CliRunner

    from search.cli import cli

    runner = CliRunner()

    def invoke(*args, ok=True):
        result = runner.invoke(cli, [str(a) for a in args], env={"SEARCH_INDEX": str(tmp_path / "ix")})
        if ok:
            assert result.exit_code == 0, result.output
        return result

    return invoke
