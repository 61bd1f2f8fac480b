"""search serve: the HTTP API through FastAPI's TestClient, on tiny models."""

import json
import os
import socket
import subprocess
import sys

import pytest
from fastapi.testclient import TestClient

from search.exported import sustained_backend
from search.index import Index
from search.server import MAX_QUERY_CHARS, ServedIndex, create_app


@pytest.fixture
def index_path(tmp_path, corpus, tiny_model, tiny_ner, tiny_sentiment):
    (corpus / "notes.jsonl").write_text(
        '{"id": "n1", "text": "Tea is grown in India and China.", "topic": "drinks"}\n'
        '{"id": "n2", "text": "Coffee beans are roasted before brewing.", "topic": "drinks"}\n'
        '{"id": "n3", "text": "Granite is an igneous rock.", "topic": "rocks"}\n'
    )
    with Index.create(tmp_path / "ix", model=tiny_model) as idx:
        idx.add_paths([corpus], enrich=f"ner:{tiny_ner},sentiment:{tiny_sentiment}")
    return tmp_path / "ix"


@pytest.fixture
def client(index_path, tiny_qa):
    with TestClient(create_app(ServedIndex(index_path, reader=tiny_qa))) as c:
        yield c


def test_search_gives_what_the_python_api_gives_with_the_query_words_marked(client, index_path):
    got = client.get("/search", params={"q": "cat mat", "k": 3})
    assert got.status_code == 200
    hits = got.json()
    with Index.open(index_path, backend=sustained_backend("auto", "auto")) as idx:  # what the server runs
        expected = [h.to_dict() for h in idx.search("cat mat", k=3)]
    assert [h["passage_id"] for h in hits] == [e["passage_id"] for e in expected]
    assert {k: v for k, v in hits[0].items() if k != "highlights"} == json.loads(json.dumps(expected[0]))
    cat = next(h for h in hits if "cat" in h["text"])
    assert {cat["text"][s:e].lower() for s, e in cat["highlights"]} == {"cat", "mat"}


def test_ask_returns_spans_of_the_documents_it_links_to(client):
    answers = client.get("/ask", params={"q": "Who published BERT?", "threshold": "off", "answers": 3}).json()
    assert 1 <= len(answers) <= 3
    for a in answers:
        doc = client.get(f"/documents/{a['document_id']}").json()
        assert doc["text"][a["start"]:a["end"]] == a["text"]
        assert a["sentence"][a["sentence_offset"]:a["sentence_offset"] + len(a["text"])] == a["text"]
    assert client.get("/ask", params={"q": "Who published BERT?", "threshold": "1"}).json() == []


def test_documents_highlight_a_passage_or_a_span(client):
    hit = client.get("/search", params={"q": "plant energy", "k": 1}).json()[0]
    doc = client.get(f"/documents/{hit['document_id']}", params={"passage": hit["passage_id"]}).json()
    assert doc["path"] == hit["path"] and doc["title"] == hit["title"]
    assert doc["text"][doc["highlight"]["start"]:doc["highlight"]["end"]] == hit["text"]
    span = client.get(f"/documents/{hit['document_id']}", params={"start": 2, "end": 7}).json()["highlight"]
    assert span == {"start": 2, "end": 7}
    assert client.get(f"/documents/{hit['document_id']}").json()["highlight"] is None


@pytest.mark.parametrize("path, params, status", [
    ("/search", {"q": ""}, 400),
    ("/search", {"q": "x" * (MAX_QUERY_CHARS + 1)}, 400),
    ("/search", {}, 400),
    ("/search", {"q": "cat", "k": 0}, 400),
    ("/search", {"q": "cat", "k": 1000}, 400),
    ("/search", {"q": "cat", "mode": "fuzzy"}, 400),
    ("/search", {"q": "cat", "filter": "no-equals-sign"}, 400),
    ("/search", {"q": "cat", "label": "novalue"}, 400),
    ("/search", {"q": "cat", "sentiment": "sad"}, 400),
    ("/ask", {"q": "cat", "threshold": "2"}, 400),
    ("/ask", {"q": "cat", "threshold": "maybe"}, 400),
    ("/ask", {"q": "cat", "answers": 0}, 400),
    ("/documents/999999", {}, 404),
    ("/documents/..%2F..%2Fetc%2Fpasswd", {}, 404),
    ("/documents/index.db", {}, 400),
    ("/documents/1", {"start": 5, "end": 2}, 400),
    ("/documents/1", {"start": 0, "end": 10**9}, 400),
    ("/nothing-here", {}, 404),
])
def test_bad_requests_get_a_json_error_with_the_right_status(client, path, params, status):
    got = client.get(path, params=params)
    assert got.status_code == status
    assert got.json()["error"] and got.json()["status"] == status
    assert "Traceback" not in got.text


def test_the_server_only_reads(client):
    for method in ("post", "put", "delete"):
        assert getattr(client, method)("/search").status_code == 405
    assert client.post("/documents/1").status_code == 405


def test_facets_count_what_the_filters_then_find(client):
    facets = client.get("/facets").json()
    topics = [{"value": "drinks", "count": 2}] + [{"value": v, "count": 1} for v in ("earth", "rocks", "space")]
    assert facets["metadata"] == {"topic": topics}  # year and id: every value differs, nothing to filter by
    assert sum(f["count"] for f in facets["labels"]["sentiment"]) == client.get("/stats").json()["passages"]
    for value in facets["labels"]["sentiment"]:
        hits = client.get("/search", params={"q": "the", "k": 100, "sentiment": value["value"]}).json()
        assert len(hits) == value["count"]
    for label, entities in facets["entities"].items():
        top = entities[0]
        hits = client.get("/search", params={"q": "the", "k": 100, "entity": f"{label}={top['value']}"}).json()
        assert len(hits) == top["count"]
    drinks = client.get("/search", params={"q": "rock", "filter": "topic=drinks", "k": 10}).json()
    assert {h["metadata"]["topic"] for h in drinks} == {"drinks"} and len(drinks) == 2


def test_a_missing_index_is_503_until_it_exists(tmp_path, tiny_model, tiny_qa):
    with TestClient(create_app(ServedIndex(tmp_path / "later", reader=tiny_qa))) as client:
        for path in ("/health", "/search?q=cat", "/stats"):
            got = client.get(path)
            assert got.status_code == 503 and "No index" in got.json()["error"]
        assert client.get("/").status_code == 200  # the page still loads, and says what is wrong
        with Index.create(tmp_path / "later", model=tiny_model) as idx:
            idx.add_texts(["The cat sat on the mat."])
        assert client.get("/health").json()["documents"] == 1
        assert client.get("/search", params={"q": "cat"}).json()[0]["text"] == "The cat sat on the mat."


def test_a_damaged_index_is_503_not_a_traceback(index_path, tiny_qa):
    (index_path / "vectors.faiss").write_bytes(b"not a faiss file")
    with TestClient(create_app(ServedIndex(index_path, reader=tiny_qa))) as client:
        got = client.get("/search", params={"q": "cat"})
        assert got.status_code == 503 and "--repair" in got.json()["error"]


def test_the_page_and_its_assets_ship_in_the_package(client):
    page = client.get("/")
    assert page.status_code == 200 and "/static/app.js" in page.text
    assert "http" not in page.text.replace("http-equiv", "")  # nothing from a CDN
    for asset in ("/static/app.js", "/static/style.css", "/static/favicon.svg"):
        assert client.get(asset).status_code == 200
    reference = client.get("/docs").text
    assert "/static/swagger/swagger-ui-bundle.js" in reference and "cdn" not in reference.lower()
    assert client.get("/static/swagger/swagger-ui-bundle.js").status_code == 200
    assert set(client.get("/openapi.json").json()["paths"]) >= {"/search", "/ask", "/documents/{document_id}",
                                                                 "/stats", "/health", "/facets"}


WRITER = """
import sys
from search.index import Index
path, rounds = sys.argv[1], int(sys.argv[2])
for i in range(rounds):
    with Index.open(path) as idx:
        idx.add_texts([f"Round {i}: the zebra number {i} crossed the river."], ids=[f"zebra-{i}"])
        if i:
            idx.delete([f"zebra-{i - 1}"])
"""


def test_commits_from_another_process_show_up_without_a_restart_or_an_error(client, index_path):
    """A writer process adds and deletes documents in several commits while requests keep coming."""
    rounds = 6
    writer = subprocess.Popen([sys.executable, "-c", WRITER, str(index_path), str(rounds)],
                              env={**os.environ, "TOKENIZERS_PARALLELISM": "false"})
    statuses: list[int] = []
    while writer.poll() is None:
        for path in ("/search?q=zebra+river&k=5", "/ask?q=what+crossed+the+river&threshold=off", "/stats"):
            statuses.append(client.get(path).status_code)
    assert writer.returncode == 0
    assert statuses and set(statuses) == {200}
    hits = client.get("/search", params={"q": "zebra river", "mode": "lexical", "k": 10}).json()
    zebras = [h["text"] for h in hits if "zebra" in h["text"]]
    assert zebras == [f"Round {rounds - 1}: the zebra number {rounds - 1} crossed the river."]


def test_serve_says_when_it_cannot_listen_before_loading_anything(run):
    with socket.create_server(("127.0.0.1", 0)) as taken:
        result = run("serve", "--port", taken.getsockname()[1], ok=False)
    assert result.exit_code == 1 and "port is in use" in result.output
    assert "not a host name" in run("serve", "--host", "256.1.1.1", ok=False).output


def test_ask_says_in_a_header_when_the_reader_does_not_read_the_question(index_path):
    with TestClient(create_app(ServedIndex(index_path))) as client:  # the shipped reader: English only
        got = client.get("/ask", params={"q": "Кто основал Москву?"})
    assert got.json() == [] and "The question looks like Russian" in got.headers["X-Search-Note"]


def test_a_server_with_a_reranker_reorders_hits_unless_asked_not_to(index_path, tiny_qa, tiny_reranker):
    from search.reranker import Reranker

    backend = sustained_backend("auto", "auto")
    with Index.open(index_path, backend=backend) as idx:
        expected = idx.search("cat mat", k=3, reranker=Reranker(tiny_reranker, depth=5, backend=backend))
        plain = idx.search("cat mat", k=3)
    served = ServedIndex(index_path, reader=tiny_qa, reranker=tiny_reranker, rerank_depth=5)
    with TestClient(create_app(served)) as client:
        hits = client.get("/search", params={"q": "cat mat", "k": 3}).json()
        assert [h["passage_id"] for h in hits] == [h.passage_id for h in expected]
        assert [h["rerank_score"] for h in hits] == pytest.approx([h.rerank_score for h in expected], abs=1e-4)
        unranked = client.get("/search", params={"q": "cat mat", "k": 3, "rerank": "false"}).json()
        assert [(h["passage_id"], h["rerank_score"]) for h in unranked] == [(h.passage_id, None) for h in plain]
        assert client.get("/ask", params={"q": "Who published BERT?", "threshold": "off"}).json()
