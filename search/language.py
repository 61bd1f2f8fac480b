"""The language of a passage, so that models that know one language see only text in it.

py3langid (97 languages, numpy only) says which language a text is in, from its first
``SAMPLE_CHARS`` characters (its time grows with the length read: a whole passage of 800
characters took 1.1 ms, most of what storing a passage costs).
A text mostly in another script than Latin is named whatever py3langid's confidence (it is not
English: "Кто основал Москву?" scores 0.34); a Latin-script text only when it is long enough and
py3langid sure, else "" (unknown), so that English models keep reading what could be English
(code, headings, names).
"""

from __future__ import annotations

from functools import lru_cache

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


def detect_language(text: str) -> str:
    """The ISO 639-1 code of ``text``'s language ("en", "ru"...), or "" when unsure."""
    text = text[:SAMPLE_CHARS]
    letters = [ch for ch in text if ch.isalpha()]
    if not letters:
        return ""
    latin = sum(ch < "\u0250" for ch in letters)  # Basic Latin to Latin Extended-B
    code, probability = _identifier().classify(text)
    if latin < len(letters) / 2:
        return code
    return code if len(letters) >= MIN_LETTERS and probability >= MIN_CONFIDENCE else ""


def readable_by(languages: frozenset[str] | None, language: str | None) -> bool:
    """Whether a model of ``languages`` (None: any) should read a text in ``language`` ("" or None:
    unknown, read)."""
    return languages is None or not language or language in languages
