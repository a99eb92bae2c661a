"""The judge's verdicts as data, planted bad samples, and how well scores separate them."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

#: The kinds of planted bad sample the judge is measured on.
PLANTED_KINDS = ("empty", "off_topic", "copied_persona", "truncated")


@dataclass(frozen=True)
class Verdict:
    """A judge's reading of one sample; ``error`` says why there is no score."""

    score: int | None
    reason: str | None
    unsafe: bool | None
    error: str | None = None


def read_verdict(parsed: Any, error: str | None = None) -> Verdict:
    """A verdict from the judge's parsed JSON, or the reason it cannot be read."""
    if error is not None:
        return Verdict(None, None, None, "llm_error")
    if not isinstance(parsed, Mapping):
        return Verdict(None, None, None, "invalid_json")
    score = parsed.get("score")
    if isinstance(score, bool) or not isinstance(score, int) or not 1 <= score <= 5:
        return Verdict(None, None, None, "score_out_of_range")
    reason = parsed.get("reason")
    unsafe = parsed.get("unsafe")
    return Verdict(score, str(reason).strip() if reason is not None else None,
                   unsafe if isinstance(unsafe, bool) else None)


def judge_sample_text(text: str, response: str | None = None) -> str:
    """What the judge reads: the sample, and for an instruction its answer too."""
    if response:
        return f"{text}\n\nAnswer given:\n{response}"
    return text


def planted_bad(sample: str, persona: str, unrelated: str) -> dict[str, str]:
    """Bad versions of a good sample: empty, off-topic (another persona's sample), a copy of
    the persona, and the sample cut off after a third of its words."""
    tokens = sample.split()
    return {
        "empty": "",
        "off_topic": unrelated,
        "copied_persona": persona,
        "truncated": " ".join(tokens[: max(1, len(tokens) // 3)]),
    }


def auc(good: Sequence[float], bad: Sequence[float]) -> float | None:
    """Probability that a good sample outscores a bad one (ties count half): 0.5 is chance,
    1.0 perfect separation. ``None`` without both kinds."""
    if not good or not bad:
        return None
    wins = sum(1.0 if g > b else 0.5 if g == b else 0.0 for g in good for b in bad)
    return wins / (len(good) * len(bad))


def separation(good: Sequence[float | None], bad_by_kind: Mapping[str, Sequence[float | None]],
               threshold: int = 3) -> dict[str, Any]:
    """AUC and mean score per planted kind, and how many bad samples a minimum score of
    ``threshold`` would drop (missing scores count as 1, as an export would treat them)."""
    def fill(xs):
        return [1.0 if x is None else float(x) for x in xs]

    g = fill(good)
    out: dict[str, Any] = {
        "good": {"n": len(g), "mean_score": round(sum(g) / len(g), 3) if g else None,
                 "kept_at_threshold": sum(x >= threshold for x in g)},
        "threshold": threshold,
    }
    all_bad: list[float] = []
    for kind, scores in bad_by_kind.items():
        b = fill(scores)
        all_bad += b
        out[kind] = {"n": len(b), "mean_score": round(sum(b) / len(b), 3) if b else None,
                     "auc": _round(auc(g, b)), "dropped_at_threshold": sum(x < threshold
                                                                            for x in b)}
    out["all_bad"] = {"n": len(all_bad), "auc": _round(auc(g, all_bad)),
                      "dropped_at_threshold": sum(x < threshold for x in all_bad)}
    return out


def _round(x: float | None) -> float | None:
    return None if x is None else round(x, 4)
