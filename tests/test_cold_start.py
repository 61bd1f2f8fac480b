"""The query and answer paths start without torch: once the models are exported to ONNX,
`search query`, `search ask`, `search index --backend onnx`, `search ner` and `search sentiment` import
neither torch nor transformers."""

import subprocess
import sys

from search.classification import TextClassifier
from search.index import Index
from search.reader import Reader
from search.tagging import EntityTagger

RUN_AND_LIST_HEAVY_IMPORTS = """
import sys
from search.cli import cli
try:
    cli(sys.argv[1:])
except SystemExit as exit:
    assert not exit.code, exit.code
print("HEAVY", sorted(m for m in ("torch", "transformers", "sentence_transformers") if m in sys.modules))
"""


def test_query_and_ask_import_no_torch_once_the_models_are_exported(tmp_path, corpus, tiny_model, tiny_qa, tiny_ner,
                                                                    tiny_sentiment):
    with Index.create(tmp_path / "ix", model=tiny_model) as index:
        index.add_paths([corpus])
        index.search("cat")  # the first query exports the encoder
    assert Reader(tiny_qa).session is not None  # the first reading exports the reader
    assert EntityTagger(tiny_ner).session is not None and TextClassifier(tiny_sentiment).session is not None
    (tmp_path / "more").mkdir()
    (tmp_path / "more" / "new.txt").write_text("A new file about the mat and a dog.")
    for command, shown in ((["query", "cat on the mat"], "mat"),  # it found something, from the exported models
                           (["ask", "Who sat on the mat?", "--reader", tiny_qa, "--threshold", "off"], "mat"),
                           (["index", str(tmp_path / "more"), "--backend", "onnx"], "1 file"),
                           (["query", "a dog"], "new.txt"),
                           (["ner", "Ann met Bob in Paris.", "--model", tiny_ner, "--json"], "["),
                           (["sentiment", "A fine film.", "--model", tiny_sentiment], ")")):
        index = ["--index", str(tmp_path / "ix")] if command[0] not in ("ner", "sentiment") else []
        done = subprocess.run([sys.executable, "-c", RUN_AND_LIST_HEAVY_IMPORTS, *command, *index],
                              capture_output=True, text=True, timeout=300)
        assert done.returncode == 0, done.stderr
        assert "HEAVY []" in done.stdout, command
        assert shown in done.stdout, (command, done.stdout)
    with_torch = subprocess.run([sys.executable, "-c", RUN_AND_LIST_HEAVY_IMPORTS, "query", "cat", "--backend", "torch",
                                 "--index", str(tmp_path / "ix")], capture_output=True, text=True, timeout=300)
    assert "'torch'" in with_torch.stdout  # the test can tell
