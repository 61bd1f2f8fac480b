"""Evaluation runners: retrieval on test collections (SMART, TREC, BEIR), QA on SQuAD-format files,
NER on CoNLL files, classifiers on labelled files. The scores themselves are in ``metrics``; training
scores its dev sets with the same functions."""

from __future__ import annotations

import csv
import json
import re
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

from .errors import SearchError
from .progress import progress_bar
from .metrics import (accuracy, answer_f1, answered_precision, calibration_error, score_entities, score_predictions,
                      score_run, score_spans)


@dataclass
class Collection:
    """Documents, queries and graded relevance judgements (``qrels[qid][docid] = grade > 0``)."""

    name: str
    documents: dict[str, str]
    queries: dict[str, str]
    qrels: dict[str, dict[str, int]] = field(default_factory=dict)

    def judged_queries(self) -> dict[str, str]:
        return {q: t for q, t in self.queries.items() if self.qrels.get(q)}


# --- loaders ------------------------------------------------------------------------------------

_SMART_FIELD = re.compile(r"^\.([A-Z])\s*(.*)$")


def parse_smart(text: str, fields: tuple[str, ...] = ("T", "W")) -> dict[str, str]:
    """SMART tagged records (``.I id`` then ``.T``/``.A``/``.W``... sections) -> {id: text of ``fields``}."""
    records: dict[str, dict[str, list[str]]] = {}
    current, section = None, None
    for line in text.splitlines():
        m = _SMART_FIELD.match(line)
        if m and m.group(1) == "I":
            current, section = m.group(2).strip(), None
            records[current] = {}
        elif m and current is not None and len(line.split()[0]) == 2:
            section = m.group(1)
            records[current].setdefault(section, [])
            if m.group(2).strip():
                records[current][section].append(m.group(2))
        elif current is not None and section is not None:
            records[current][section].append(line)
    return {
        rid: "\n".join(" ".join(" ".join(parts[f]).split()) for f in fields if parts.get(f)).strip()
        for rid, parts in records.items()
    }


def _qrels_lines(path: Path, columns: tuple[int, int, int | None]) -> dict[str, dict[str, int]]:
    qrels: dict[str, dict[str, int]] = {}
    q_col, d_col, r_col = columns
    for line in path.read_text().splitlines():
        parts = line.split()
        if len(parts) < 2:
            continue
        grade = int(float(parts[r_col])) if r_col is not None else 1
        if grade > 0:
            qrels.setdefault(parts[q_col], {})[parts[d_col]] = grade
    return qrels


def _load_cranfield(folder: Path) -> Collection:
    docs = parse_smart((folder / "cran.all.1400").read_text())
    raw_queries = parse_smart((folder / "cran.qry").read_text(), ("W",))
    # cranqrel numbers queries by position (1..225), not by their .I ids.
    queries = {str(i): text for i, text in enumerate(raw_queries.values(), 1)}
    qrels: dict[str, dict[str, int]] = {}
    for line in (folder / "cranqrel").read_text().splitlines():
        parts = line.split()
        if len(parts) >= 3 and int(parts[2]) > 0:
            # grade 1 is the most relevant; turn it into a gain (1 -> 4 ... 4 -> 1)
            qrels.setdefault(parts[0], {})[parts[1]] = 5 - int(parts[2])
    return Collection(folder.name, docs, queries, qrels)


def _load_smart(folder: Path) -> Collection:
    (all_file,) = folder.glob("*.ALL")
    stem = all_file.stem
    docs = parse_smart(all_file.read_text(errors="replace"))
    queries = parse_smart((folder / f"{stem}.QRY").read_text(errors="replace"), ("T", "W"))
    rel = folder / f"{stem}.REL"
    first = rel.read_text().split("\n", 1)[0].split()
    # MED.REL is "qid 0 docid 1" (TREC), the others "qid docid 0 0.0" (SMART).
    columns = (0, 2, 3) if len(first) == 4 and first[1] == "0" and first[3] == "1" else (0, 1, None)
    return Collection(folder.name, docs, queries, _qrels_lines(rel, columns))


def _load_trec(folder: Path) -> Collection:
    text = (folder / "doc-text.trec").read_text(errors="replace")
    docs = {
        m.group(1).strip(): " ".join(m.group(2).split())
        for m in re.finditer(r"<DOCNO>(.*?)</DOCNO>(.*?)</DOC>", text, re.S)
    }
    qtext = (folder / "query-text.trec").read_text(errors="replace")
    queries = {
        m.group(1).strip(): " ".join(m.group(2).split()).lower()
        for m in re.finditer(r"<num>(.*?)</num>\s*<title>(.*?)</title>", qtext, re.S)
    }
    return Collection(folder.name, docs, queries, _qrels_lines(folder / "qrels", (0, 2, 3)))


def _read_jsonl(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


def _load_beir(folder: Path) -> Collection:
    docs = {str(r["_id"]): (str(r.get("title") or "") + "\n" + str(r.get("text") or "")).strip()
            for r in _read_jsonl(folder / "corpus.jsonl")}
    queries = {str(r["_id"]): str(r["text"]) for r in _read_jsonl(folder / "queries.jsonl")}
    qrels_file = next((p for p in (folder / "qrels" / "test.tsv", folder / "qrels.tsv") if p.exists()), None)
    if qrels_file is None:
        raise SearchError(f"{folder}: no qrels/test.tsv or qrels.tsv")
    qrels: dict[str, dict[str, int]] = {}
    with open(qrels_file, newline="") as f:
        for row in csv.reader(f, delimiter="\t"):
            if len(row) < 3 or not row[-1].strip().lstrip("-").isdigit():
                continue  # header
            if int(row[-1]) > 0:
                qrels.setdefault(row[0], {})[row[-2] if len(row) == 4 else row[1]] = int(row[-1])
    return Collection(folder.name, docs, queries, qrels)


def squad_collection(questions: str | Path, documents: str | Path | None = None) -> Collection:
    """A SQuAD-format file as a retrieval collection: each question's one relevant document is its
    paragraph. ``documents``, a parallel file (XQuAD's languages: the same articles, paragraphs and
    question ids in another language), gives the paragraphs instead: cross-lingual retrieval."""
    def articles(path):
        try:
            return json.loads(Path(path).read_text())["data"]
        except (OSError, ValueError, KeyError, TypeError) as exc:
            raise SearchError(f"{path} is not a SQuAD-format JSON file ({exc})") from exc

    asked, read = articles(questions), articles(documents or questions)
    shape = lambda data: [len(a["paragraphs"]) for a in data]  # noqa: E731
    if shape(asked) != shape(read):
        raise SearchError(f"{documents} is not parallel to {questions}: their articles and paragraphs differ.")
    docs, queries, qrels = {}, {}, {}
    for a, (q_article, d_article) in enumerate(zip(asked, read)):
        for p, (q_paragraph, d_paragraph) in enumerate(zip(q_article["paragraphs"], d_article["paragraphs"])):
            docs[f"{a}-{p}"] = d_paragraph["context"]
            for qa in q_paragraph["qas"]:
                queries[qa["id"]], qrels[qa["id"]] = qa["question"], {f"{a}-{p}": 1}
    name = Path(questions).stem + (f">{Path(documents).stem}" if documents else "")
    return Collection(name, docs, queries, qrels)


def load_collection(folder: str | Path, documents: str | Path | None = None) -> Collection:
    """Load a test collection folder: Cranfield, SMART (*.ALL/*.QRY/*.REL), TREC (npl) or BEIR; or a
    SQuAD-format file (``squad_collection``, with ``documents`` from a parallel file)."""
    folder = Path(folder)
    if folder.is_file() and folder.suffix == ".json":
        return squad_collection(folder, documents)
    if documents:
        raise SearchError("Documents from a parallel file are for SQuAD-format collections (XQuAD) only.")
    if not folder.is_dir():
        raise SearchError(f"No such collection folder: {folder}")
    if (folder / "cran.all.1400").exists():
        return _load_cranfield(folder)
    if (folder / "doc-text.trec").exists():
        return _load_trec(folder)
    if (folder / "corpus.jsonl").exists():
        return _load_beir(folder)
    if list(folder.glob("*.ALL")):
        return _load_smart(folder)
    raise SearchError(
        f"{folder} is not a test collection I know: expected cran.all.1400, *.ALL/*.QRY/*.REL (SMART),"
        " doc-text.trec/query-text.trec/qrels (TREC) or corpus.jsonl/queries.jsonl/qrels (BEIR)."
    )


# --- retrieval ------------------------------------------------------------------------------------

def index_collection(index, collection: Collection, progress: bool = False):
    """Add the collection's documents to ``index`` (ids kept as document paths)."""
    ids = list(collection.documents)
    return index.add_texts([collection.documents[i] for i in ids], ids=ids, progress=progress)


def run_queries(index, collection: Collection, mode: str = "hybrid", k: int = 100, **options) -> tuple[dict[str, list[str]], list[float]]:
    """Rank documents (best passage per document) for every judged query; also return latencies."""
    run, latencies = {}, []
    for qid, text in collection.judged_queries().items():
        started = time.perf_counter()
        hits = index.search(text, k=k, mode=mode, per_doc=True, **options)
        latencies.append(time.perf_counter() - started)
        run[qid] = [h.path for h in hits]
    return run, latencies


def evaluate_retrieval(index, collection: Collection, mode: str = "hybrid", **options) -> dict[str, float]:
    run, latencies = run_queries(index, collection, mode, **options)
    scores = score_run(run, collection.qrels)
    scores["ms_per_query"] = 1000 * sum(latencies) / max(len(latencies), 1)
    return scores


def evaluate_collections(folders, modes=("lexical", "dense", "hybrid"), model: str | None = None,
                         encoder: str = "sentence-transformers", cache: str | Path | None = None,
                         precision: str = "auto", progress: bool = False, documents: str | Path | None = None,
                         backend: str = "auto", ann: str = "auto", nprobe: int | None = None,
                         reranker=None) -> list[dict]:
    """One row of scores per collection folder (or SQuAD-format file, see ``squad_collection``) and
    mode. Each collection is indexed with ``model`` in ``cache`` (reused when it holds all the
    collection's documents), else in a temporary folder, its vectors in an ``ann`` index searched
    with ``nprobe`` lists when approximate (``vectors``); a ``reranker`` reorders each query's hits."""
    from .index import Index
    from .models import DEFAULT_MODEL

    model = model or DEFAULT_MODEL
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        for folder in folders:
            collection = load_collection(folder, documents)
            slug = re.sub(r"\W+", "-", f"{collection.name}-{model}-{encoder}")
            with Index.open_or_create(Path(cache or tmp) / slug, model=model, encoder=encoder, precision=precision,
                                      backend=backend, ann=ann) as index:
                if index.stats()["documents"] != len(collection.documents):
                    index_collection(index, collection, progress=progress)
                index.set_ann(ann)
                for mode in modes:
                    rows.append({"collection": collection.name, "mode": mode,
                                 **evaluate_retrieval(index, collection, mode, nprobe=nprobe, reranker=reranker)})
    return rows


# --- question answering ---------------------------------------------------------------------------

def best_answers(reader, examples) -> dict:
    """The reader's best answer (an ``Answer``, abstention off; None when it has no span) to each
    example's question in its gold paragraph."""
    best = {}
    for ex in examples:
        answers = reader.read(ex.question, [ex.context], top_k=1, threshold=None)
        best[ex.id] = answers[0] if answers else None
    return best


def reader_scores(examples, best: dict, threshold: float | None) -> dict[str, float]:
    """EM/F1 (and HasAns/NoAns) of the best answers, each dropped below ``threshold`` (and, with a
    threshold, EM/F1 as if it always answered), and the expected calibration error (in percent) of
    their confidence that they are right (F1 >= 0.5)."""
    predictions = {i: a.text if a and (threshold is None or a.score >= threshold) else "" for i, a in best.items()}
    confidences = [best[ex.id].score if best[ex.id] else 0.0 for ex in examples]
    right = [bool(best[ex.id] and ex.answers and answer_f1(best[ex.id].text, ex.answers) >= 0.5) for ex in examples]
    scores = {**score_predictions(examples, predictions), "ece": 100 * calibration_error(confidences, right)}
    if threshold is not None:  # and as if it always answered
        always = score_predictions(examples, {i: a.text if a else "" for i, a in best.items()})
        scores.update(exact_match_always=always["exact_match"], f1_always=always["f1"])
    return scores


def asked(index, reader, examples, k: int = 5, answers: int = 3, **ask_options) -> tuple[dict, dict]:
    """Each example's question asked of ``index``: the texts of up to ``answers`` answers, and of
    the top 3 retrieved passages, by question id."""
    from .reader import answers_from_hits

    found, retrieved = {}, {}
    for ex in examples:
        hits = index.search(ex.question, k=k)
        found[ex.id] = [a.text for a in answers_from_hits(reader, ex.question, hits, answers, **ask_options)]
        retrieved[ex.id] = [h.text for h in hits[:3]]
    return found, retrieved


def retrieval_qa_scores(examples, found: dict, retrieved: dict) -> dict[str, float]:
    """Top-1 EM/F1 (and HasAns/NoAns), F1 of the best of 3 answers, retrieval hit@3 (a gold answer
    in one of the 3 best passages) and the precision of the questions answered."""
    top = {i: answers[0] if answers else "" for i, answers in found.items()}
    answerable = [ex for ex in examples if ex.answers]
    best_of_3 = [max([answer_f1(a, ex.answers) for a in found[ex.id][:3]] or [answer_f1("", ex.answers)]) for ex in examples]
    hit = [any(t in p for t in ex.answers for p in retrieved[ex.id]) for ex in answerable]
    return {**score_predictions(examples, top), "any_of_3_f1": 100 * sum(best_of_3) / max(len(examples), 1),
            "hit@3": 100 * sum(hit) / max(len(answerable), 1), **answered_precision(examples, top)}


def _timed(function, *args, **kwargs):
    started = time.perf_counter()
    return function(*args, **kwargs), time.perf_counter() - started


def evaluate_reader(reader, examples, threshold: float | str | None = None) -> dict[str, float]:
    """EM/F1 with the gold paragraph given (reader-only); ``threshold`` as in ``Reader.read``."""
    return reader_scores(examples, best_answers(reader, examples), reader.threshold_for(threshold))


def evaluate_qa(data, reader, modes=("reader",), limit: int | None = None, k: int = 5, progress: bool = False,
                index_folder: str | Path | None = None, start: int = 0, corpus: str | Path | None = None,
                threshold: float | str | None = "default", **ask_options) -> list[dict]:
    """EM/F1 of ``reader`` on ``limit`` questions of a SQuAD-format file from question ``start`` on
    (held-out slices such as dev questions 600-1,600, which no training checkpoint was chosen by).

    ``reader`` mode gives the gold paragraph; ``open`` mode indexes every paragraph of the file and
    ``corpus`` mode the documents in the folder ``corpus`` (those the file's "corpus" entry lists, or
    all), both in ``index_folder`` (reused when it holds them, else a temporary folder), and answers
    through retrieval over ``k`` passages, as ``Index.ask`` does. ``threshold`` is the confidence
    below which the reader says "no answer", as in ``Reader.read``; ``ask_options`` go to
    ``answers_from_hits``.
    """
    from .squad import load_squad

    all_examples = load_squad(data)
    examples = all_examples[start : None if limit is None else start + limit]
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        for mode in modes:
            shown = progress_bar(examples, desc=f"Answering ({mode})", unit="question", enabled=progress)
            if mode == "reader":
                best, seconds = _timed(best_answers, reader, shown)
                scores = reader_scores(examples, best, reader.threshold_for(threshold))
            else:
                where = Path(index_folder or tmp)
                index = corpus_index(data, corpus, where, progress) if mode == "corpus" else \
                    paragraph_index(all_examples, where, progress)
                with index:
                    (found, retrieved), seconds = _timed(asked, index, reader, shown, k, threshold=threshold,
                                                           **ask_options)
                scores = retrieval_qa_scores(examples, found, retrieved)
            rows.append({"mode": mode, **scores, "ms_per_question": 1000 * seconds / max(len(examples), 1),
                         "dtype": runs_as(reader)})
    return rows


def paragraph_index(examples, folder: Path, progress: bool):
    """An index of the distinct paragraphs of ``examples`` (ids are their hashes, so re-runs skip them)."""
    from .index import Index

    index = Index.open_or_create(folder / "paragraphs")
    index.add_texts(list(dict.fromkeys(ex.context for ex in examples)), progress=progress)
    return index


def corpus_index(data, corpus, folder: Path, progress: bool):
    """An index of the documents a QA file was written on: the files its "corpus" entry lists under
    the folder ``corpus``, or the whole folder."""
    from .index import Index

    if corpus is None:
        raise SearchError("Corpus mode needs the folder of the documents (--corpus).")
    corpus = Path(corpus)
    listed = json.loads(Path(data).read_text()).get("corpus", {}).get("files")
    paths = [corpus / f for f in listed] if listed else [corpus]
    missing = [p for p in paths if not p.exists()]
    if missing:
        raise SearchError(f"{len(missing)} documents of the QA file are not in {corpus}, e.g. {missing[0]}")
    index = Index.open_or_create(folder / "corpus")
    index.add_paths(paths, progress=progress)
    return index


# --- enrichment ---------------------------------------------------------------------------------------

def ner_scores(tagger, documents, max_length: int = 128, context: bool = True) -> dict[str, float]:
    """Strict entity precision/recall/F1 of an ``EntityTagger`` on CoNLL ``documents``."""
    from .tagging import tag_documents

    gold = [tags for d in documents for _, tags in d]
    return score_entities(gold, tag_documents(tagger, documents, max_length, context))


def runs_as(runner) -> str:
    """What a model runs as: ``int8 (onnx)``, ``float32 (onnx)``, or its precision on torch."""
    return f"{runner.session.precision} (onnx)" if runner.session is not None else runner.precision


def evaluate_ner(data, model=None, context: bool = True, precision: str = "auto",
                 backend: str = "auto") -> dict[str, float]:
    """Strict entity-level precision/recall/F1 of an NER model on a CoNLL file (BIO after conversion).

    With ``context`` the sentences are tagged in runs of their document, as passages are at index
    time; without, one sentence at a time (how most published CoNLL numbers are measured).
    """
    from .conll import read_conll_documents
    from .tagging import EntityTagger

    tagger = EntityTagger(model, batch_size=32, precision=precision, backend=backend)
    documents = read_conll_documents(data)
    sentences = sum(len(d) for d in documents)
    started = time.perf_counter()
    scores = ner_scores(tagger, documents, context=context)
    return {**scores, "sentences": sentences, "ms_per_sentence": 1000 * (time.perf_counter() - started) / sentences,
            "dtype": runs_as(tagger)}


def evaluate_entity_offsets(data, texts, model=None) -> dict[str, float]:
    """Strict entity precision/recall/F1 on passages labelled by character offsets
    (``evals/russian-ner/entities.json``: each passage is the first ``length`` characters of a
    paragraph of the SQuAD-format file ``texts``), tagged as at index time: each passage's language
    told, English through the NER model and Russian through natasha."""
    from .enrich import EntityEnricher
    from .language import detect_languages

    items = json.loads(Path(data).read_text())["items"]
    articles = json.loads(Path(texts).read_text())["data"]
    passages = [articles[i["article"]]["paragraphs"][i["paragraph"]]["context"][: i["length"]] for i in items]
    started = time.perf_counter()
    found = EntityEnricher(model or "").run(passages, [0] * len(passages), detect_languages(passages))
    scores = score_spans([{tuple(e) for e in i["entities"]} for i in items],
                         [{(e.start, e.end, e.label) for e in entities} for entities in found])
    return {**scores, "passages": len(passages), "ms_per_passage": 1000 * (time.perf_counter() - started) / len(passages),
            "dtype": "natasha" if not model else Path(model).name}


def classifier_accuracy(classifier, texts: list[str], gold: list[str]) -> float:
    """Accuracy (percent) of a ``TextClassifier`` on texts whose label names are ``gold``."""
    return accuracy([p.label for p in classifier.classify(texts)], gold)


def evaluate_classifier(data, model=None, label_names: list[str] | None = None,
                        text_column: str | None = None, label_column: str = "label",
                        precision: str = "auto", backend: str = "auto") -> dict[str, float]:
    """Accuracy of a classifier on a TSV/CSV file; ``label_names`` map the file's values (0, 1...) in order."""
    from .classification import TextClassifier
    from .labelled import label_mapping, read_labelled

    classifier = TextClassifier(model, precision=precision, backend=backend)
    texts, values = read_labelled(data, text_column, label_column)
    names = label_mapping(values, label_names)
    started = time.perf_counter()
    score = classifier_accuracy(classifier, texts, [names[v] for v in values])
    return {"accuracy": score, "examples": len(texts),
            "ms_per_example": 1000 * (time.perf_counter() - started) / max(len(texts), 1), "dtype": runs_as(classifier)}
