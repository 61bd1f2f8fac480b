"""The web page of `search serve` in a real browser: headless Chromium (Debian's) driven by Playwright.

Without Chromium these tests skip, unless SEARCH_BROWSER_TESTS=required (as .ci/run sets, after
installing it), where its absence fails.
"""

import os
import shutil
import socket
import subprocess
import sys
import time
import urllib.request

import pytest

from search.index import Index

pytestmark = pytest.mark.integration

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
# What this closed network needs: no calls home, no sandbox as root, no GPU.
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run", "--disable-sync",
                 "--disable-background-networking", "--disable-component-update"]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def browser():
    if not CHROMIUM:
        if os.environ.get("SEARCH_BROWSER_TESTS") == "required":
            pytest.fail("Chromium is not installed (apt-get install chromium)")
        pytest.skip("Chromium is not installed (apt-get install chromium)")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        launched = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        yield launched
        launched.close()


@pytest.fixture(scope="module")
def server(tmp_path_factory, minilm):
    """`search serve` in its own process, on an index of a few documents with entities and sentiment."""
    root = tmp_path_factory.mktemp("site")
    docs = root / "docs"
    docs.mkdir()
    (docs / "bert.md").write_text("# BERT\n\nBERT was published in 2018 by Google research. It is a language model.\n")
    (docs / "moon.txt").write_text("Apollo 11 landed on the Moon in July 1969. Neil Armstrong walked on it first.\n")
    (docs / "reviews.jsonl").write_text(
        '{"id": "r1", "text": "The hotel in Paris was wonderful and the staff were kind.", "kind": "review"}\n'
        '{"id": "r2", "text": "The train to Berlin was late, dirty and awful.", "kind": "review"}\n'
        '{"id": "r3", "text": "Granite is an igneous rock found in the Alps.", "kind": "fact"}\n'
        '{"id": "r4", "text": "Tea is grown in India and China.", "kind": "fact"}\n'
    )
    with Index.create(root / "ix", model=minilm) as idx:
        idx.add_paths([docs], enrich="ner,sentiment")
    port = free_port()
    log = open(root / "serve.log", "w")
    process = subprocess.Popen(
        [sys.executable, "-c", "from search.cli import cli; cli()", "serve", "--index", str(root / "ix"), "--port", str(port)],
        stdout=log, stderr=subprocess.STDOUT, env={**os.environ, "HF_HUB_OFFLINE": "1"})
    url = f"http://127.0.0.1:{port}"
    deadline = time.time() + 120
    while True:
        try:
            urllib.request.urlopen(url + "/health", timeout=5)
            break
        except OSError:
            if process.poll() is not None or time.time() > deadline:
                process.kill()
                pytest.fail("search serve did not start: " + (root / "serve.log").read_text())
            time.sleep(0.3)
    yield url, root
    process.terminate()
    process.wait(timeout=30)


@pytest.fixture
def page(browser, server, tmp_path):
    context = browser.new_context(viewport={"width": 1200, "height": 900})
    page = context.new_page()
    errors = []
    page.on("pageerror", lambda e: errors.append(str(e)))
    page.goto(server[0] + "/")
    yield page
    context.close()
    assert not errors, errors


@pytest.fixture(scope="module")
def screenshots(tmp_path_factory):
    """Where the screenshots go: $SEARCH_SCREENSHOTS, else a temporary folder."""
    folder = os.environ.get("SEARCH_SCREENSHOTS") or str(tmp_path_factory.mktemp("screenshots"))
    os.makedirs(folder, exist_ok=True)
    return folder


def shoot(page, folder: str, name: str) -> None:
    path = os.path.join(folder, name + ".png")
    page.screenshot(path=path)
    with open(path, "rb") as png:
        assert png.read(8) == b"\x89PNG\r\n\x1a\n"


def test_a_question_typed_at_the_keyboard_gets_hits_and_an_answer(page, screenshots):
    page.keyboard.press("/")  # focuses the search box (it has focus already on load; / brings it back)
    page.keyboard.type("Who published BERT?")
    page.keyboard.press("Enter")
    page.wait_for_selector("#answer .span")
    assert "Google" in page.inner_text("#answer .span")
    assert "Google" in page.inner_text("#answer .sentence mark")
    assert "confidence" in page.inner_text("#answer .where")
    titles = page.locator("#hits .title").all_inner_texts()
    assert titles[0] == "BERT"
    assert page.locator("#hits li").first.locator("mark").first.inner_text().lower() == "bert"
    shoot(page, screenshots, "answer")
    # To the first result and into its document, from the keyboard; Escape comes back.
    page.locator("#hits .title").first.focus()
    page.keyboard.press("Enter")
    page.wait_for_selector("#document mark")
    assert "BERT was published in 2018" in page.inner_text("#document mark")
    shoot(page, screenshots, "document")
    page.keyboard.press("Escape")
    page.wait_for_selector("#hits li")
    assert page.locator("#hits .title").first.inner_text() == "BERT"


def test_facets_filter_the_results(page, screenshots):
    page.fill("#q", "a place")
    page.keyboard.press("Enter")
    page.wait_for_selector("#hits li")
    assert page.locator("#hits li").count() > 2
    facet = page.locator("#filters label", has_text="review")
    assert "(2)" in facet.inner_text()
    facet.locator("input").check()
    page.wait_for_function("document.querySelectorAll('#hits li').length === 2")
    paths = page.locator("#hits .where").all_inner_texts()
    assert all("reviews.jsonl#r" in p for p in paths)
    assert "kind=review" in page.evaluate("decodeURIComponent(location.hash)")
    # An entity facet found by the NER model at index time.
    page.locator("#filters input[data-value='kind=review']").uncheck()
    entity = page.locator("#filters label", has_text="Paris")
    entity.locator("input").check()
    page.wait_for_function("document.querySelectorAll('#hits li').length === 1")
    assert "Paris" in page.inner_text("#hits li")
    shoot(page, screenshots, "filters")


def test_a_commit_from_another_process_shows_up_in_the_page(page, server):
    url, root = server
    with Index.open(root / "ix") as idx:
        idx.add_texts(["The okapi is a giraffe relative living in the Congo rainforest."], ids=["okapi"])
    page.fill("#q", "okapi rainforest")
    page.keyboard.press("Enter")
    page.wait_for_selector("#hits li")
    assert "okapi" in page.locator("#hits .text").first.inner_text()
    with Index.open(root / "ix") as idx:
        idx.delete(["okapi"])
    page.reload()
    page.wait_for_selector("#status:has-text('passage')")
    assert "okapi" not in page.inner_text("#hits")
