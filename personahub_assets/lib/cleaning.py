"""Document cleaning: every document is either kept (cleaned) or rejected with a reason.

Steps, in order: type and binary checks, HTML main-text extraction (trafilatura), broken
Unicode repair (ftfy), whitespace normalization, length bounds, web-quality heuristics, and
language identification. Each step that rejects says why.
"""

from __future__ import annotations

import re
import unicodedata
from collections import Counter
from dataclasses import dataclass, field

_CONTROL = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f]")
_SPACES = re.compile(r"[ \t\u00a0]+")
_BLANK_LINES = re.compile(r"\n{3,}")
_WORD = re.compile(r"[^\W\d_]+")


@dataclass(frozen=True)
class CleaningConfig:
    """Thresholds of the cleaning step (all editable in the run config)."""

    min_chars: int = 200
    max_chars: int = 100_000
    min_alpha_ratio: float = 0.6
    max_binary_ratio: float = 0.01
    min_mean_word_len: float = 3.0
    max_mean_word_len: float = 12.0
    max_duplicate_line_ratio: float = 0.3
    languages: tuple[str, ...] = field(default=("en",))
    min_language_probability: float = 0.7


def normalize_whitespace(text: str) -> str:
    """NFC text without control characters, with runs of spaces and blank lines collapsed."""
    text = unicodedata.normalize("NFC", text).replace("\r\n", "\n").replace("\r", "\n")
    text = _CONTROL.sub(" ", text)
    text = _SPACES.sub(" ", text)
    text = "\n".join(line.strip() for line in text.split("\n"))
    return _BLANK_LINES.sub("\n\n", text).strip()


def binary_ratio(text: str) -> float:
    """Share of characters that are NULs, other C0 controls or replacement characters."""
    if not text:
        return 0.0
    bad = sum(1 for ch in text if ch == "\ufffd" or (ord(ch) < 32 and ch not in "\n\r\t"))
    return bad / len(text)


def html_main_text(html: str) -> str | None:
    """The main text of an HTML page without navigation, footers and other boilerplate."""
    import trafilatura

    return trafilatura.extract(html, include_comments=False, include_tables=False)


def detect_language(text: str) -> tuple[str, float]:
    """(ISO 639-1 code, probability) of the text's language; deterministic."""
    from langdetect import DetectorFactory, detect_langs
    from langdetect.lang_detect_exception import LangDetectException

    DetectorFactory.seed = 0
    try:
        best = detect_langs(text[:2000])[0]
    except LangDetectException:
        return "unknown", 0.0
    return best.lang, best.prob


def quality_issue(text: str, config: CleaningConfig) -> str | None:
    """The first web-quality heuristic the text fails, or None."""
    letters = sum(ch.isalpha() for ch in text)
    non_space = sum(not ch.isspace() for ch in text)
    if non_space and letters / non_space < config.min_alpha_ratio:
        return "low_alpha_ratio"
    words = _WORD.findall(text)
    if words:
        mean_len = sum(map(len, words)) / len(words)
        if not config.min_mean_word_len <= mean_len <= config.max_mean_word_len:
            return "odd_word_length"
    lines = [line for line in text.split("\n") if line.strip()]
    if len(lines) >= 4:
        repeats = sum(n - 1 for n in Counter(lines).values() if n > 1)
        if repeats / len(lines) > config.max_duplicate_line_ratio:
            return "repeated_lines"
    return None


def clean_document(
    raw: object, config: CleaningConfig, is_html: bool = False
) -> tuple[str | None, str | None, str | None]:
    """``(clean_text, None, language)`` for a kept document, ``(None, reason, language)``
    for a rejected one (``language`` is None when the document never got that far)."""
    import ftfy

    if not isinstance(raw, str):
        return None, "text_not_a_string", None
    if len(raw) > 4 * config.max_chars:  # cheap guard before the costly steps
        return None, "too_long", None
    if binary_ratio(raw) > config.max_binary_ratio:
        return None, "binary_content", None
    if is_html:
        extracted = html_main_text(raw)
        if not extracted or len(extracted.strip()) < config.min_chars:
            return None, "no_main_text", None
        raw = extracted
    text = normalize_whitespace(ftfy.fix_text(raw))
    if not text:
        return None, "empty", None
    if len(text) < config.min_chars:
        return None, "too_short", None
    if len(text) > config.max_chars:
        return None, "too_long", None
    issue = quality_issue(text, config)
    if issue:
        return None, issue, None
    language, probability = detect_language(text)
    if config.languages and (language not in config.languages
                             or probability < config.min_language_probability):
        return None, f"language:{language}", language
    return text, None, language
