"""The `search` command line: a thin layer over the Python API, one module per group of commands."""

from . import enriching, evaluating, indexing, inspecting, searching, serving, training  # noqa: F401,E402  (they register their commands)
from .common import cli

__all__ = ["cli"]
