"""Encoding and enrichment on a Ray cluster, for ``search index PATHS --ray [auto|ADDRESS]``.

The writer stays one process on this machine (an index has one writer, and SQLite is on this
disk): it finds, reads and splits the files, which costs little, and sends out what costs most,
encoding the passages and, for an index with enrichment tasks (NER, sentiment...), running them.
Batches of passages go to a pool of Ray actors, each holding the index's encoder and enrichers,
and come back in the order they were sent (``ray.util.ActorPool``), so that the run stores,
commits, resumes and reports exactly as a local one, and makes the same index.

Workers run the encoder in the precision and on the backend this process resolved (``auto`` is
resolved here, not on each worker), so that every vector comes out as a local run would make it.
The model must be at the same path on every machine of the cluster (installed by the same
package, or a shared folder).
"""

from __future__ import annotations

from typing import Iterable, Iterator

import numpy as np

from .enrich import make_enricher, run_readable
from .errors import SearchError
from .language import detect_languages

#: Threads each worker's encoder runs (and CPUs Ray reserves for it).
THREADS_PER_WORKER = 1


def connect(address: str = "auto") -> None:
    """Join the Ray cluster at ``address``; ``auto``: the one this machine belongs to (``ray start``,
    ``RAY_ADDRESS``), else a Ray of its own on this machine's CPUs."""
    try:
        import ray
    except ImportError:
        raise SearchError("Encoding on Ray needs Ray: pip install 'search[ray]' (or ray).") from None
    if ray.is_initialized():
        return
    options = {"logging_level": "ERROR", "log_to_driver": False}
    if address != "auto":
        ray.init(address=address, **options)
        return
    try:
        ray.init(address="auto", **options)
    except ConnectionError:
        ray.init(**options)


class EncoderWorker:
    """A Ray actor's state: one encoder, and the index's enrichers (``(task, model)`` pairs)."""

    def __init__(self, model: str, kind: str, precision: str, backend: str, threads: int,
                 enrichers: list[tuple[str, str]] = ()):
        from .encoders import load_encoder
        from .exported import set_threads

        set_threads(threads)
        self.encoder = load_encoder(model, kind, precision=precision, backend=backend)
        self.enrichers = [make_enricher(task, model) for task, model in enrichers]

    def process(self, texts: list[str], passages: list[tuple[str, int]]) -> tuple[np.ndarray, tuple | None]:
        """The vectors of ``texts`` and, when the index has enrichers, the languages of ``passages``
        (their texts and document offsets) and what each enricher found in them
        (``enrich.run_readable``)."""
        vectors = self.encoder.encode(texts)
        if not self.enrichers:
            return vectors, None
        words, starts = [t for t, _ in passages], [s for _, s in passages]
        languages = detect_languages(words)
        return vectors, (languages, {e.task: run_readable(e, words, starts, languages) for e in self.enrichers})


class RayEncoding:
    """A pool of encoder actors on the cluster that ``connect`` joined."""

    def __init__(self, model: str, kind: str, precision: str, backend: str, workers: int | None = None,
                 enrichers: list[tuple[str, str]] = ()):
        import ray
        from ray.util import ActorPool

        if workers is None:
            workers = max(1, int(ray.cluster_resources().get("CPU", 1)) // THREADS_PER_WORKER)
        actor = ray.remote(num_cpus=THREADS_PER_WORKER)(EncoderWorker)
        self.actors = [actor.remote(model, kind, precision, backend, THREADS_PER_WORKER, list(enrichers))
                       for _ in range(workers)]
        self.pool = ActorPool(self.actors)

    def process_batches(self, batches: Iterable[tuple[list[str], list[tuple[str, int]]]]) -> Iterator[tuple]:
        """``EncoderWorker.process`` of each batch, in order, as the workers finish them."""
        return self.pool.map(lambda worker, batch: worker.process.remote(*batch), batches)

    def close(self) -> None:
        import ray

        for actor in self.actors:
            ray.kill(actor)
