"""Labelled texts (TSV/CSV with a header) for classifiers, and how a file's label values map to names."""

from __future__ import annotations

import csv
from pathlib import Path
from typing import Iterable, Sequence

from .errors import SearchError


def read_labelled(path: str | Path, text_column: str | None = None, label_column: str = "label") -> tuple[list[str], list[str]]:
    """Texts and labels from a TSV (.tsv) or CSV file with a header row.

    The text column is ``text_column``, else ``text`` or ``sentence``, else the first column.
    """
    path = Path(path)
    try:
        with open(path, newline="", encoding="utf-8") as f:
            rows = list(csv.DictReader(f, delimiter="\t" if path.suffix.lower() == ".tsv" else ",",
                                       quoting=csv.QUOTE_NONE if path.suffix.lower() == ".tsv" else csv.QUOTE_MINIMAL))
    except (OSError, UnicodeDecodeError, csv.Error) as exc:
        raise SearchError(f"Cannot read {path}: {exc}") from exc
    if not rows:
        raise SearchError(f"{path} has no rows")
    columns = list(rows[0])
    text_column = text_column or next((c for c in ("text", "sentence") if c in columns), columns[0])
    if label_column not in columns or text_column not in columns:
        raise SearchError(f"{path}: need columns {text_column!r} and {label_column!r}; it has {', '.join(columns)}")
    rows = [r for r in rows if (r[text_column] or "").strip() and (r[label_column] or "").strip()]
    return [r[text_column].strip() for r in rows], [r[label_column].strip() for r in rows]


def label_mapping(values: Iterable[str], names: Sequence[str] | None = None) -> dict[str, str]:
    """Each label value of a file -> its name.

    The distinct values in order (numerically when all are numbers: SST-2's 0 and 1) are named by
    ``names`` in that order; without ``names`` each value is its own name.
    """
    found = sorted(set(values))
    if all(v.isdigit() for v in found):
        found.sort(key=int)
    if not names:
        return {v: v for v in found}
    if len(names) != len(found):
        raise SearchError(f"{len(names)} label names ({', '.join(names)}) for {len(found)} label values in the data:"
                          f" {', '.join(found)}")
    return dict(zip(found, names))
