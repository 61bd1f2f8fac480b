"""The package as pip installs it (a wheel, not the checkout): the demo corpus comes with it."""

import os
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture(scope="module")
def installed(tmp_path_factory):
    """The project built as a wheel and unpacked into a folder of its own (what `pip install .` puts
    in site-packages), without the checkout on the path."""
    wheels = tmp_path_factory.mktemp("wheel")
    subprocess.run([sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "-q", "-w", str(wheels),
                    str(ROOT)], check=True, capture_output=True)
    target = tmp_path_factory.mktemp("site")
    (wheel,) = wheels.glob("search-*.whl")
    zipfile.ZipFile(wheel).extractall(target)
    return target


def run_installed(target: Path, code: str, cwd: Path) -> str:
    env = {**os.environ, "PYTHONPATH": str(target), "HF_HUB_OFFLINE": "1"}
    done = subprocess.run([sys.executable, "-c", code], cwd=cwd, env=env, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    return done.stdout


def test_the_wheel_carries_the_demo_corpus_and_the_models(installed, tmp_path):
    out = run_installed(installed, "import search, search.ingest as i; print(search.__file__); print(i.demo_corpus())", tmp_path)
    package, corpus = out.split()
    assert package.startswith(str(installed)) and corpus == str(installed / "search" / "index_data")
    names = {p.relative_to(corpus).as_posix() for p in Path(corpus).rglob("*") if p.is_file()}
    assert names == {p.relative_to(ROOT / "index_data").as_posix() for p in (ROOT / "index_data").rglob("*") if p.is_file()}
    for model in ("reader_model", "ner_model", "sentiment_model"):
        assert (installed / "search" / model / "delta.safetensors").is_file()
    shipped = {p.name for p in (installed / "search" / "web").iterdir()}
    assert shipped == {p.name for p in (ROOT / "search" / "web").iterdir()}  # the page of `search serve`


@pytest.mark.integration
def test_search_index_without_a_path_indexes_the_demo_from_an_installed_package(installed, tmp_path):
    code = ("from search.cli import cli; import sys; sys.argv = ['search', 'index', '--index', 'idx'];"
            " cli(standalone_mode=False); from search import Index;"
            " print(*sorted(Index.open('idx').store.file_sources()), sep='\\n')")
    sources = run_installed(installed, code, tmp_path).splitlines()[1:]
    assert len(sources) == 24 and all(s.startswith(str(installed / "search" / "index_data")) for s in sources)
