"""Load on `search serve` over loopback: N concurrent clients (1, 4, 16) each calling /search or /ask
back to back for a bounded time; requests/s, p50/p99 and errors, against the same calls made
through the Python API in this process (the baseline, measured in the same run).

    python benches/bench_serve.py [--index DIR] [--seconds 10] [--clients 1,4,16] [--threads N]

Without --index it indexes the demo corpus (index_data/) into a temporary folder. The clients are
threads of this process on the same machine as the server: on 2 cores they compete with it, as a
browser or a script on the same laptop would.
"""

from __future__ import annotations

import argparse
import http.client
import json
import os
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import urllib.parse
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

from search import Index  # noqa: E402
from search.reader import Reader  # noqa: E402

sys.path.insert(0, str(Path(__file__).resolve().parent))
from bench_ask import QUESTIONS, ROOT  # noqa: E402


def percentiles(seconds: list[float]) -> tuple[float, float]:
    values = sorted(1000 * s for s in seconds)
    return statistics.median(values), values[min(len(values) - 1, int(round(0.99 * (len(values) - 1))))]


def start_server(index: Path, port: int, threads: int | None) -> subprocess.Popen:
    command = [sys.executable, "-c", "from search.cli import cli; cli()", "serve", "--index", str(index),
               "--port", str(port)] + (["--threads", str(threads)] if threads else [])
    server = subprocess.Popen(command, stderr=subprocess.DEVNULL)
    while server.poll() is None:
        try:
            connection = http.client.HTTPConnection("127.0.0.1", port, timeout=5)
            connection.request("GET", "/health")
            if connection.getresponse().status == 200:
                return server
        except OSError:
            time.sleep(0.2)
    raise SystemExit("search serve did not start")


def load(port: int, endpoint: str, clients: int, seconds: float) -> dict:
    """``clients`` threads calling ``endpoint`` with the questions in turn until time is up."""
    times: list[float] = []
    errors = [0]
    lock = threading.Lock()
    stop = time.perf_counter() + seconds

    def client(offset: int) -> None:
        connection = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
        i = offset
        while time.perf_counter() < stop:
            path = f"/{endpoint}?" + urllib.parse.urlencode({"q": QUESTIONS[i % len(QUESTIONS)]})
            began = time.perf_counter()
            try:
                connection.request("GET", path)
                response = connection.getresponse()
                body = response.read()
                ok = response.status == 200 and isinstance(json.loads(body), list)
            except (OSError, http.client.HTTPException, ValueError):
                ok = False
                connection = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
            with lock:
                times.append(time.perf_counter() - began)
                errors[0] += not ok
            i += 1

    threads = [threading.Thread(target=client, args=(n,)) for n in range(clients)]
    began = time.perf_counter()
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    p50, p99 = percentiles(times)
    return {"requests": len(times), "per_second": len(times) / (time.perf_counter() - began), "p50": p50,
            "p99": p99, "errors": errors[0]}


def direct(index: Index, reader: Reader, endpoint: str, seconds: float) -> dict:
    """The same calls through the Python API, one at a time."""
    times: list[float] = []
    stop = time.perf_counter() + seconds
    i = 0
    while time.perf_counter() < stop:
        began = time.perf_counter()
        if endpoint == "search":
            index.search(QUESTIONS[i % len(QUESTIONS)], k=10)
        else:
            index.ask(QUESTIONS[i % len(QUESTIONS)], k=5, answers=1, reader=reader)
        times.append(time.perf_counter() - began)
        i += 1
    p50, p99 = percentiles(times)
    return {"requests": len(times), "per_second": len(times) / seconds, "p50": p50, "p99": p99, "errors": 0}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--index", type=Path, help="An existing index (default: the demo corpus, indexed now).")
    parser.add_argument("--seconds", type=float, default=10.0, help="Length of each measurement.")
    parser.add_argument("--clients", default="1,4,16", help="Concurrent clients, comma-separated.")
    parser.add_argument("--threads", type=int, help="The server's --threads (default: its own default).")
    parser.add_argument("--port", type=int, default=8799)
    args = parser.parse_args()

    with tempfile.TemporaryDirectory() as tmp:
        path = args.index
        if path is None:
            path = Path(tmp) / "ix"
            with Index.create(path) as index:
                index.add_paths([ROOT / "index_data"])
        with Index.open(path) as index:
            reader = Reader()
            index.ask(QUESTIONS[0], reader=reader)  # warm up
            baseline = {e: direct(index, reader, e, args.seconds) for e in ("search", "ask")}
            passages = index.stats()["passages"]
        del reader
        server = start_server(path, args.port, args.threads)
        try:
            rows = [(e, n, load(args.port, e, n, args.seconds)) for n in map(int, args.clients.split(","))
                    for e in ("search", "ask")]
        finally:
            server.terminate()
            server.wait()

    print(f"search serve under load: {passages} passages, {os.cpu_count()} CPUs, {args.seconds:.0f} s per row,"
          f" server threads: {args.threads or 'default'}")
    print(f"{'endpoint':10}{'clients':>8}{'requests':>10}{'req/s':>8}{'p50 ms':>9}{'p99 ms':>9}{'errors':>8}"
          f"{'p50 / API':>11}")
    for endpoint in ("search", "ask"):
        b = baseline[endpoint]
        print(f"{endpoint:10}{'API':>8}{b['requests']:>10}{b['per_second']:>8.1f}{b['p50']:>9.1f}{b['p99']:>9.1f}"
              f"{'-':>8}{1:>11.2f}")
        for e, n, r in rows:
            if e == endpoint:
                print(f"{'/' + e:10}{n:>8}{r['requests']:>10}{r['per_second']:>8.1f}{r['p50']:>9.1f}{r['p99']:>9.1f}"
                      f"{r['errors']:>8}{r['p50'] / b['p50']:>11.2f}")


if __name__ == "__main__":
    main()
