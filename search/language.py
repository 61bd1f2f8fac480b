"""The language of a passage, so that models that know one language see only text in it.

py3langid (numpy only) says which language a text is in, from its first ``SAMPLE_CHARS``
characters (its time grows with the length read: a whole passage of 800 characters took 1.1 ms).
``detect_languages`` runs its model on many texts at once: the walk of its byte automaton one
position for all texts, the scores one gather for all, with the same results as py3langid's own
``classify`` (tested) and some twenty times faster, which matters where storing a passage costs
less than telling its language (vectors given with ``add_texts``).
A text mostly in another script than Latin is named whatever py3langid's confidence (it is not
English: "Кто основал Москву?" scores 0.34); a Latin-script text only when it is long enough and
py3langid sure, else "" (unknown), so that English models keep reading what could be English
(code, headings, names).
"""

from __future__ import annotations

import re
from functools import lru_cache
from typing import Sequence

import numpy as np

#: Fewer letters than this, and a text's language is not guessed.
MIN_LETTERS = 20
#: Below this probability the guess is not trusted.
MIN_CONFIDENCE = 0.9
#: Characters read to tell a text's language.
SAMPLE_CHARS = 200


@lru_cache(maxsize=1)
def _identifier():
    from py3langid.langid import MODEL_FILE, LanguageIdentifier

    return LanguageIdentifier.from_model_file(MODEL_FILE, norm_probs=True)


@lru_cache(maxsize=1)
def _model() -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """py3langid's model as arrays: its byte automaton (next states, row offsets, the feature of
    each state or -1) and its table of feature scores per language, in float32."""
    identifier = _identifier()
    return (np.frombuffer(identifier.tk_nextmove, dtype=identifier.tk_nextmove.typecode).astype(np.int64),
            np.asarray(identifier._rowbase, dtype=np.int64), np.asarray(identifier.tk_output, dtype=np.int64),
            np.asarray(identifier.nb_ptc, dtype=np.float32))


def detect_language(text: str) -> str:
    """The ISO 639-1 code of ``text``'s language ("en", "ru"...), or "" when unsure."""
    return detect_languages([text])[0]


def detect_languages(texts: Sequence[str]) -> list[str]:
    """``detect_language`` of each text."""
    samples = [text[:SAMPLE_CHARS] for text in texts]
    counts = [_letters(sample) for sample in samples]
    asked = [i for i, (letters, _) in enumerate(counts) if letters]
    out = [""] * len(texts)
    for i, (code, probability) in zip(asked, _classify([samples[i] for i in asked])):
        letters, latin = counts[i]
        if latin < letters / 2 or (letters >= MIN_LETTERS and probability >= MIN_CONFIDENCE):
            out[i] = code
    return out


def script(text: str) -> str:
    """"latin" when most letters of ``text``'s start are Latin, "other" when most are not, "" when
    it has no letter."""
    letters, latin = _letters(text[:SAMPLE_CHARS])
    return "" if not letters else "latin" if latin >= letters / 2 else "other"


def _letters(sample: str) -> tuple[int, int]:
    """How many letters ``sample`` has, and how many of them are Latin."""
    return sum(map(str.isalpha, sample)), sum(map(str.isalpha, _NOT_LATIN.sub("", sample)))


_NOT_LATIN = re.compile("[^\u0000-\u024f]")  # beyond Latin Extended-B


#: Fewer texts than this are classified one by one (py3langid's ``classify``), more at once, in
#: groups of ``GROUP`` (the walk's arrays stay small).
AT_ONCE_FROM = 8
GROUP = 256


def _classify(texts: list[str]) -> list[tuple[str, float]]:
    """py3langid's ``classify`` of each text."""
    if len(texts) < AT_ONCE_FROM:
        return [_identifier().classify(text) for text in texts]
    return [pair for at in range(0, len(texts), GROUP) for pair in _classify_at_once(texts[at : at + GROUP])]


def _classify_at_once(texts: list[str]) -> list[tuple[str, float]]:
    """py3langid's ``classify`` (its ``_decide``) for many texts at once: the byte automaton walks
    all texts one position at a time; the features' counts make one sparse matrix, and the scores
    one product with the model's table."""
    from scipy.sparse import csr_matrix

    identifier = _identifier()
    nextmove, rowbase, output, table = _model()
    encoded = [identifier._encode(text) for text in texts]
    lengths = np.array([len(b) for b in encoded])
    order = np.argsort(-lengths, kind="stable")  # longest first: the texts still walking are a prefix
    data = np.zeros((len(texts), max(int(lengths.max()), 1)), dtype=np.int64)
    for row, i in enumerate(order):
        data[row, : lengths[i]] = np.frombuffer(encoded[i], dtype=np.uint8)
    walking = np.searchsorted(-lengths[order], -np.arange(data.shape[1]), side="right")  # texts longer than each position
    state = np.zeros(len(texts), dtype=np.int64)
    rows, features = [], []
    for at, n in enumerate(walking):
        state[:n] = nextmove[rowbase[state[:n]] + data[:n, at]]
        found = output[state[:n]]
        hit = np.flatnonzero(found >= 0)
        rows.append(hit)
        features.append(found[hit])
    rows, features = np.concatenate(rows), np.concatenate(features)
    counts = csr_matrix((np.ones(len(rows), np.float32), (rows, features)), shape=(len(texts), table.shape[0]))
    counts.data = np.log1p(counts.data)  # (duplicates were summed: counts)
    scores = np.asarray(counts @ table, dtype=np.float32)
    scores[counts.getnnz(axis=1) > 0] += identifier.nb_pc  # texts without a feature: 0 (uniform)
    scores *= (1.0 / np.sqrt(np.maximum(lengths[order], 1)))[:, None].astype(np.float32)
    scores = np.exp(scores - scores.max(axis=1, keepdims=True))
    scores /= scores.sum(axis=1, keepdims=True)
    for i, j in identifier._alias_pairs:
        scores[:, i] += scores[:, j]
        scores[:, j] = 0.0
    best = scores.argmax(axis=1)
    result = [("", 0.0)] * len(texts)
    for row, i in enumerate(order):
        result[i] = (identifier.nb_classes[best[row]], float(scores[row, best[row]]))
    return result


#: Names of the languages the shipped models read, for messages.
NAMES = {"en": "English", "ru": "Russian"}


def named(codes) -> str:
    """``{"en", "ru"}`` as "English and Russian" (codes without a name quoted)."""
    return " and ".join(NAMES.get(c, repr(c)) for c in sorted(codes))


def readable_by(languages: frozenset[str] | None, language: str | None) -> bool:
    """Whether a model of ``languages`` (None: any) should read a text in ``language`` ("" or None:
    unknown, read)."""
    return languages is None or not language or language in languages
