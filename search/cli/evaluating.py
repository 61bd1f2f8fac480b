"""search eval: retrieval and question-answering quality."""

from __future__ import annotations

from pathlib import Path

import click

from ..models import DEFAULT_MODEL
from .common import (
    ANN_CHOICES,
    ENCODER_KINDS,
    backend_option,
    cli,
    echo_json,
    echo_table,
    handle_errors,
    json_option,
    make_reranker,
    nprobe_option,
    precision_option,
    reader_option,
    rerank_options,
    show_progress,
    threshold_option,
)


@cli.group(name="eval")
def eval_group():
    """Measure quality on test collections."""


@eval_group.command(name="retrieval")
@click.argument("collections", nargs=-1, required=True, type=click.Path(exists=True, path_type=Path))
@click.option("--mode", "modes", multiple=True, type=click.Choice(["hybrid", "dense", "lexical"]),
              help="Modes to evaluate (repeatable; default: all three).")
@click.option("--model", default=DEFAULT_MODEL, show_default=True)
@click.option("--encoder", type=click.Choice(ENCODER_KINDS), default="sentence-transformers", show_default=True)
@click.option("--cache", type=click.Path(file_okay=False, path_type=Path),
              help="Keep each collection's index in this folder and reuse it next time.")
@click.option("--documents", type=click.Path(exists=True, dir_okay=False, path_type=Path),
              help="SQuAD-format collections: take the paragraphs from this parallel file, e.g. xquad.ru.json"
                   " for English questions against Russian paragraphs.")
@click.option("--ann", type=click.Choice(ANN_CHOICES), default="auto", show_default=True,
              help="Vector index of each collection (see `search index --help`).")
@rerank_options
@nprobe_option
@precision_option
@backend_option
@json_option
@handle_errors
def eval_retrieval(collections, modes, model, encoder, cache, documents, ann, rerank_model, rerank_depth, nprobe,
                   precision, backend, as_json):
    """nDCG@10, Recall@1/@100 and MAP on test collections: SMART, TREC or BEIR folders, or SQuAD-format
    files (each question's paragraph is its one relevant document)."""
    from ..evaluation import evaluate_collections

    modes = modes or ("lexical", "dense", "hybrid")
    rows = evaluate_collections(collections, modes, model, encoder, cache, precision, progress=show_progress(as_json),
                                documents=documents, backend=backend, ann=ann, nprobe=nprobe,
                                reranker=make_reranker(rerank_model, rerank_depth, precision, backend))
    if as_json:
        echo_json(rows)
        return
    echo_table(rows, [("collection", "collection", -20, ""), ("mode", "mode", -9, ""), ("nDCG@10", "ndcg@10", 9, ".3f"),
                      ("R@1", "recall@1", 7, ".3f"), ("R@100", "recall@100", 8, ".3f"), ("MAP", "map", 8, ".3f"), ("queries", "queries", 9, ""),
                      ("ms/q", "ms_per_query", 8, ".1f")])
    for mode in modes:
        values = [r["ndcg@10"] for r in rows if r["mode"] == mode]
        if len(values) > 1:
            click.echo(f"{'mean':<20}{mode:<9}{sum(values) / len(values):>9.3f}")


@eval_group.command(name="qa")
@click.option("--data", required=True, type=click.Path(exists=True, dir_okay=False, path_type=Path),
              help="SQuAD-format JSON file.")
@click.option("--mode", "modes", multiple=True, type=click.Choice(["reader", "open", "corpus"]),
              help="reader: the gold paragraph is given; open: all paragraphs indexed, found by retrieval;"
                   " corpus: the documents in --corpus indexed (default with --corpus).")
@click.option("--corpus", type=click.Path(exists=True, file_okay=False, path_type=Path),
              help="Folder of the documents the questions were written on (corpus mode).")
@click.option("--limit", type=int, help="Only N questions.")
@click.option("--start", default=0, show_default=True, help="Skip the first N questions.")
@click.option("-k", "k", default=5, show_default=True, help="Open mode: passages to read.")
@click.option("--cache", type=click.Path(file_okay=False, path_type=Path),
              help="Open mode: keep the paragraph index in this folder and reuse it next time.")
@reader_option
@threshold_option
@precision_option
@backend_option
@json_option
@handle_errors
def eval_qa(data, modes, corpus, limit, start, k, cache, reader_model, threshold, precision, backend, as_json):
    """Exact match and F1 (official SQuAD normalisation) of the reader; with unanswerable questions
    (SQuAD 2.0) also HasAns F1 and NoAns accuracy; through retrieval, the F1 of the best of 3
    answers, retrieval hit@3 and the precision of the answered questions."""
    from ..evaluation import evaluate_qa
    from ..reader import Reader

    modes = modes or (("corpus",) if corpus else ("reader",))
    rows = evaluate_qa(data, Reader(reader_model, precision=precision, backend=backend), modes, limit=limit, k=k,
                       progress=show_progress(as_json), index_folder=cache, start=start, corpus=corpus,
                       threshold=threshold)
    if as_json:
        echo_json(rows)
        return
    columns = [("mode", "mode", -8, ""), ("EM", "exact_match", 7, ".1f"), ("F1", "f1", 7, ".1f")]
    optional = [("F1 always", "f1_always", 11, ".1f"), ("HasAns F1", "has_answer_f1", 11, ".1f"), ("NoAns acc", "no_answer_accuracy", 11, ".1f"),
                ("best-of-3 F1", "any_of_3_f1", 14, ".1f"), ("hit@3", "hit@3", 7, ".1f"),
                ("answered", "answered", 10, ""), ("precision", "answered_precision", 11, ".1f"),
                ("ECE", "ece", 7, ".1f")]
    columns += [c for c in optional if any(c[1] in r for r in rows)]
    columns += [("questions", "questions", 11, ""), ("ms/q", "ms_per_question", 8, ".1f"), ("dtype", "dtype", 9, "")]
    echo_table(rows, columns)


@eval_group.command(name="ner")
@click.option("--data", required=True, type=click.Path(exists=True, dir_okay=False, path_type=Path),
              help="CoNLL file, or a JSON file of entities by character offsets (evals/russian-ner/entities.json).")
@click.option("--texts", type=click.Path(exists=True, dir_okay=False, path_type=Path),
              help="With a JSON --data: the SQuAD-format file its passages come from (../shared/data/xquad/xquad.ru.json).")
@click.option("--model", type=click.Path(exists=True, file_okay=False), help="NER model (default: the shipped one).")
@click.option("--context/--no-context", default=True, show_default=True,
              help="Tag sentences in runs of their document (as passages at index time), or one at a time.")
@precision_option
@backend_option
@json_option
@handle_errors
def eval_ner(data, texts, model, context, precision, backend, as_json):
    """Entity-level precision, recall and F1 (strict: exact span and type) on a CoNLL file, or on
    passages labelled by offsets, tagged as at index time (Russian through natasha)."""
    from ..evaluation import evaluate_entity_offsets, evaluate_ner

    if data.suffix == ".json":
        if texts is None:
            raise click.UsageError("A JSON --data names passages of another file: give it with --texts.")
        scores = evaluate_entity_offsets(data, texts, model)
    else:
        scores = evaluate_ner(data, model, context, precision=precision, backend=backend)
    if as_json:
        echo_json(scores)
    else:
        unit = "passages" if "passages" in scores else "sentences"
        click.echo(f"precision {scores['precision']:.1f}  recall {scores['recall']:.1f}  F1 {scores['f1']:.1f}"
                   f"  ({scores['entities']} entities in {scores[unit]} {unit}; {scores['dtype']})")


@eval_group.command(name="sentiment")
@click.option("--data", required=True, type=click.Path(exists=True, dir_okay=False, path_type=Path),
              help="TSV/CSV file with a text and a label column.")
@click.option("--model", type=click.Path(exists=True, file_okay=False), help="Classifier (default: the shipped sentiment model).")
@click.option("--labels", default="negative,positive", show_default=True,
              help="Names of the file's label values, in order.")
@precision_option
@backend_option
@json_option
@handle_errors
def eval_sentiment(data, model, labels, precision, backend, as_json):
    """Accuracy of the sentiment model (or any classifier) on a labelled file."""
    from ..evaluation import evaluate_classifier

    scores = evaluate_classifier(data, model, labels.split(",") if labels else None, precision=precision,
                                 backend=backend)
    if as_json:
        echo_json(scores)
    else:
        click.echo(f"accuracy {scores['accuracy']:.1f}  ({scores['examples']} examples; {scores['dtype']})")
