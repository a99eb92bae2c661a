"""Final-answer extraction, normalization and majority vote for math verification."""

from __future__ import annotations

import re
from collections import Counter
from dataclasses import dataclass
from fractions import Fraction

_ANSWER = re.compile(r"answer\s*(?:is)?\s*[:=]?\s*(.+)$", re.IGNORECASE)
_NUMBER = re.compile(r"-?\d[\d,]*(?:\.\d+)?(?:\s*/\s*\d+)?|-?\.\d+")


def extract_answer(solution: str) -> str | None:
    """The text after the last 'Answer:' of a solution, or None when there is none."""
    matches = list(re.finditer(r"answer", solution, re.IGNORECASE))
    if not matches:
        return None
    m = _ANSWER.search(solution[matches[-1].start():])
    value = m.group(1).strip() if m else ""
    return value or None


def normalize_answer(answer: str | None) -> str | None:
    """A canonical form: the first number as a reduced fraction or integer, else folded text.

    ``"$1,200.50"`` and ``"1200.5 dollars"`` both become ``"2401/2"``; ``"30"`` stays ``"30"``.
    """
    if answer is None:
        return None
    m = _NUMBER.search(answer)
    if m:
        raw = m.group(0).replace(",", "").replace(" ", "")
        try:
            value = Fraction(raw)
        except (ValueError, ZeroDivisionError):
            return None
        return str(value.numerator) if value.denominator == 1 else str(value)
    text = re.sub(r"[^\w]+", " ", answer.casefold()).strip()
    return text or None


@dataclass(frozen=True)
class Vote:
    """The majority answer of k solutions and how many of them agree on it."""

    answer: str | None
    votes: int
    k: int

    def is_verified(self, min_agree: int) -> bool:
        """True when at least ``min_agree`` solutions gave the same, non-empty answer."""
        return self.answer is not None and self.votes >= min_agree


def majority(answers: list[str | None]) -> Vote:
    """Majority vote over normalized answers; ties go to the answer seen first."""
    counts = Counter(a for a in answers if a is not None)
    if not counts:
        return Vote(None, 0, len(answers))
    best = max(counts.values())
    winner = next(a for a in answers if a is not None and counts[a] == best)
    return Vote(winner, best, len(answers))
