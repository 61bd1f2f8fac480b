"""The package's modules import one way: each only from those before it in the flow of data."""

import ast
from pathlib import Path

PACKAGE = Path(__file__).resolve().parent.parent / "search"

#: The modules in the order data flows through them (the CLI, search/cli, comes after all of them).
LAYERS = """
errors progress terms entity_keys language metrics e5_small models precision exported finetuned runner markup ingest passages encoders filters store vectors lexical background
retrieval squad conll labelled reader reranker tagging russian_ner classification enrich distributed writer index server tokenization fill_mask
evaluation training
""".split()


def imported_modules(path: Path) -> set[str]:
    """The package modules ``path`` imports anywhere (lazy imports too; not those only for type checking)."""
    tree = ast.parse(path.read_text())
    skipped = {id(node) for top in ast.walk(tree) if isinstance(top, ast.If) and "TYPE_CHECKING" in ast.unparse(top.test)
               for node in ast.walk(top)}
    found = set()
    for node in ast.walk(tree):
        if id(node) in skipped:
            continue
        if isinstance(node, ast.ImportFrom) and node.level == 1:
            found |= {node.module.split(".")[0]} if node.module else {a.name for a in node.names}
        elif isinstance(node, ast.ImportFrom) and (node.module or "").startswith("search."):
            found.add(node.module.split(".")[1])
        elif isinstance(node, ast.Import):
            found |= {a.name.split(".")[1] for a in node.names if a.name.startswith("search.")}
    return found


def test_lazy_imports_count_and_type_checking_ones_do_not():
    index = imported_modules(PACKAGE / "index.py")
    assert {"reader", "writer", "store"} <= index  # reader: imported inside Index.ask
    assert "index" not in imported_modules(PACKAGE / "writer.py")  # only under TYPE_CHECKING


def test_every_module_has_its_place_in_the_flow():
    modules = {p.stem for p in PACKAGE.glob("*.py")} - {"__init__"}
    assert modules == set(LAYERS)


def test_modules_import_only_modules_before_them():
    upward = []
    for position, name in enumerate(LAYERS):
        for imported in imported_modules(PACKAGE / f"{name}.py"):
            if imported not in LAYERS[:position]:
                upward.append(f"{name} imports {imported}")
    assert upward == []


def test_the_cli_is_imported_by_nothing_but_itself():
    for path in PACKAGE.glob("*.py"):
        assert "cli" not in imported_modules(path), path.name
