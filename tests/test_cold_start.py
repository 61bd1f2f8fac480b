"""The query and answer paths start without torch: once the models are exported to ONNX,
`search query` and `search ask` import neither torch nor transformers."""

import subprocess
import sys

from search.index import Index
from search.reader import Reader

RUN_AND_LIST_HEAVY_IMPORTS = """
import sys
from search.cli import cli
try:
    cli(sys.argv[1:])
except SystemExit as exit:
    assert not exit.code, exit.code
print("HEAVY", sorted(m for m in ("torch", "transformers", "sentence_transformers") if m in sys.modules))
"""


def test_query_and_ask_import_no_torch_once_the_models_are_exported(tmp_path, corpus, tiny_model, tiny_qa):
    with Index.create(tmp_path / "ix", model=tiny_model) as index:
        index.add_paths([corpus])
        index.search("cat")  # the first query exports the encoder
    assert Reader(tiny_qa).session is not None  # the first reading exports the reader
    for command in (["query", "cat on the mat"], ["ask", "Who sat on the mat?", "--reader", tiny_qa, "--threshold", "off"]):
        done = subprocess.run([sys.executable, "-c", RUN_AND_LIST_HEAVY_IMPORTS, *command, "--index", str(tmp_path / "ix")],
                              capture_output=True, text=True, timeout=300)
        assert done.returncode == 0, done.stderr
        assert "HEAVY []" in done.stdout, command
        assert "mat" in done.stdout  # it found something, from the exported models
    with_torch = subprocess.run([sys.executable, "-c", RUN_AND_LIST_HEAVY_IMPORTS, "query", "cat", "--backend", "torch",
                                 "--index", str(tmp_path / "ix")], capture_output=True, text=True, timeout=300)
    assert "'torch'" in with_torch.stdout  # the test can tell
