"""Without a terminal, long work prints a plain progress line every few seconds."""

import io

from click.testing import CliRunner

from search import progress
from search.cli import cli
from search.progress import LineProgress


def test_progress_lines_say_how_far_how_fast_and_how_long_is_left():
    out = io.StringIO()
    with LineProgress(total=10, desc="Encoding", unit="passage", interval=0.0, file=out) as bar:
        for _ in range(4):
            bar.update(1)
    lines = out.getvalue().splitlines()
    assert lines[0].startswith("Encoding: 1/10 passages (10%)") and "min left" in lines[0]
    assert lines[3].startswith("Encoding: 4/10 passages (40%)")
    assert lines[-1].startswith("Encoding: 4 passages in")


def test_short_work_prints_nothing():
    out = io.StringIO()
    with LineProgress(range(3), desc="Reading", unit="file", file=out) as bar:
        assert list(bar) == [0, 1, 2]
    assert out.getvalue() == ""


def test_search_index_without_a_terminal_prints_progress_lines(tmp_path, tiny_model, corpus, monkeypatch):
    monkeypatch.setattr(progress, "LINE_SECONDS", 0.0)
    result = CliRunner().invoke(cli, ["index", str(corpus), "--index", str(tmp_path / "ix"), "--model", tiny_model])
    assert result.exit_code == 0, result.output
    assert "Reading: 1/4 files" in result.stderr and "Encoding: 5 passages in" in result.stderr
    quiet = CliRunner().invoke(cli, ["index", str(corpus), "--index", str(tmp_path / "ix"), "--json"])
    assert "Reading" not in quiet.stderr


def test_slow_work_reads_in_seconds_per_unit():
    out = io.StringIO()
    bar = LineProgress(total=100, desc="Training", unit="step", interval=0.0, file=out)
    bar.started -= 30  # 30 s for the first step
    bar.update(1)
    assert "s/step" in out.getvalue() and "steps/s" not in out.getvalue()
