"""The safety screen: an offline classifier of offensive language, plus the judge's flag.

The classifier is alt-profanity-check's linear model over word n-grams, which ships inside the
wheel (no download, no network) and scores thousands of texts per second on one core. It was
trained on English comments, so it sees insults, slurs and obscenity, not subtle harm, and
little outside English: the judge's flag, where a judge runs, is the second opinion.

A text is scored whole and sentence by sentence; its score is the highest, so one offensive
sentence in a long answer is not diluted by the rest.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass

#: Reasons a sample is flagged, in the order they are reported.
OFFENSIVE_LANGUAGE = "offensive_language"
JUDGE_FLAGGED = "judge_flagged"
REASONS = (OFFENSIVE_LANGUAGE, JUDGE_FLAGGED)

_PIECES = re.compile(r"[^.!?\n]+[.!?]*")


@dataclass(frozen=True)
class SafetyVerdict:
    """Whether a text is kept out of exports, why, and the classifier's score."""

    flag: bool
    reason: str | None
    score: float


def _pieces(text: str) -> list[str]:
    parts = [p.strip() for p in _PIECES.findall(text) if p.strip()]
    return [text, *parts] if len(parts) > 1 else [text]


def offensive_scores(texts: Sequence[str | None]) -> list[float]:
    """The classifier's probability that each text is offensive (0.0 for a blank text)."""
    from profanity_check import predict_prob

    pieces, owner = [], []
    for i, text in enumerate(texts):
        if text and text.strip():
            for piece in _pieces(text):
                pieces.append(piece)
                owner.append(i)
    scores = [0.0] * len(texts)
    if pieces:
        for i, p in zip(owner, predict_prob(pieces), strict=True):
            scores[i] = max(scores[i], float(p))
    return scores


def screen(
    texts: Sequence[str | None], threshold: float = 0.8,
    judge_flags: Sequence[bool | None] | None = None,
) -> list[SafetyVerdict]:
    """A verdict per text: flagged as offensive when the classifier's score reaches
    ``threshold``, else flagged when the judge (if one ran; ``None`` = no judgement) said
    unsafe."""
    if not 0.0 < threshold <= 1.0:
        raise ValueError(f"threshold must be in (0, 1], got {threshold}")
    if judge_flags is not None and len(judge_flags) != len(texts):
        raise ValueError("judge_flags must have one entry per text")
    scores = offensive_scores(texts)
    out = []
    for i, score in enumerate(scores):
        if score >= threshold:
            out.append(SafetyVerdict(True, OFFENSIVE_LANGUAGE, round(score, 4)))
        elif judge_flags is not None and judge_flags[i]:
            out.append(SafetyVerdict(True, JUDGE_FLAGGED, round(score, 4)))
        else:
            out.append(SafetyVerdict(False, None, round(score, 4)))
    return out
