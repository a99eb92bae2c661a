"""Document cleaning: every document is either kept (cleaned) or rejected with a reason."""

from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass

_CONTROL = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f]")
_SPACES = re.compile(r"[ \t\u00a0]+")
_BLANK_LINES = re.compile(r"\n{3,}")


@dataclass(frozen=True)
class CleaningConfig:
    """Thresholds of the cleaning step."""

    min_chars: int = 200
    max_chars: int = 100_000
    min_alpha_ratio: float = 0.6


def normalize_whitespace(text: str) -> str:
    """NFC text without control characters, with runs of spaces and blank lines collapsed."""
    text = unicodedata.normalize("NFC", text).replace("\r\n", "\n").replace("\r", "\n")
    text = _CONTROL.sub(" ", text)
    text = _SPACES.sub(" ", text)
    text = "\n".join(line.strip() for line in text.split("\n"))
    return _BLANK_LINES.sub("\n\n", text).strip()


def clean_document(raw: object, config: CleaningConfig) -> tuple[str | None, str | None]:
    """``(clean_text, None)`` for a kept document, ``(None, reason)`` for a rejected one."""
    if not isinstance(raw, str):
        return None, "text_not_a_string"
    text = normalize_whitespace(raw)
    if not text:
        return None, "empty"
    if len(text) < config.min_chars:
        return None, "too_short"
    if len(text) > config.max_chars:
        return None, "too_long"
    letters = sum(ch.isalpha() for ch in text)
    non_space = sum(not ch.isspace() for ch in text)
    if non_space and letters / non_space < config.min_alpha_ratio:
        return None, "low_alpha_ratio"
    return text, None
