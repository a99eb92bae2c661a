"""Verifiable constraints for instruction data, in the spirit of IFEval, written for this project.

An instruction sample gets 1 to 3 constraints drawn deterministically from its seed. Each
constraint is a kind with parameters; it renders as one sentence the assistant reads after the
request, and a deterministic checker says whether a response obeys it. Nothing here calls a
model: a verdict is code, so it can be trusted as a training label.

| kind | group | the response must |
|---|---|---|
| min_words | length | have at least N words |
| max_words | length | have at most N words |
| max_sentences | sentences | have at most N sentences |
| include_keywords | keywords | contain every listed keyword (whole word, any case) |
| avoid_keywords | avoid | contain none of the listed words |
| bullet_list | format | be exactly N bullet points, one per line, each starting with "* " |
| json_format | format | be one valid JSON value (a fenced ```json block is accepted) |
| title | title | contain a title wrapped in double angle brackets, like <<Title>> |
| lowercase | case | contain no upper-case letter |
| uppercase | case | contain no lower-case letter |
| no_commas | punctuation | contain no comma |
| end_phrase | ending | end with the exact phrase (trailing spaces ignored) |
| postscript | ending | end with a paragraph that starts with "P.S." |
| quoted | wrapping | be wrapped in double quotation marks |

Kinds of one group exclude each other, and a few pairs across groups are declared
incompatible (JSON cannot also carry a title or end with a phrase).
"""

from __future__ import annotations

import json
import random
import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

_WORD = re.compile(r"[^\W_]+(?:['’-][^\W_]+)*", re.UNICODE)
# A sentence ends at . ! ? (or their full-width forms) followed by space or the end.
_SENTENCE_END = re.compile(r"[.!?。！？]+(?=\s|$)")
_BULLET = re.compile(r"^\s*[*\-•]\s+\S")
_TITLE = re.compile(r"<<[^<>\n]+>>")
_FENCE = re.compile(r"^```(?:json)?\s*(.*?)\s*```$", re.DOTALL | re.IGNORECASE)

#: Words a response may be asked to avoid: fillers that add nothing.
AVOIDABLE_WORDS = ("very", "really", "basically", "actually", "just", "simply", "literally",
                   "things", "stuff", "obviously")
#: Fallback keywords when the request offers none of its own.
FALLBACK_KEYWORDS = ("plan", "example", "reason", "step", "result", "budget", "time", "goal")
#: Closing phrases a response may be asked to end with.
END_PHRASES = ("Hope this helps.", "Let me know what you think.", "That is all for now.",
               "Ask me if anything is unclear.")
_STOPWORDS = frozenset(re.findall(r"\w+", (
    "a an and are as at be been but by can could did do does for from had has have how i "
    "if in into is it its me my of on or our please should so than that the their them "
    "then there these they this to was we were what when where which who why will with "
    "would you your about after also any before each more most need only other some such "
    "want help make write give tell draft suggest explain list create "
)))


def words(text: str) -> list[str]:
    """The words of ``text`` (letters and digits in any script, inner apostrophes kept)."""
    return _WORD.findall(text)


def sentences(text: str) -> list[str]:
    """The sentences of ``text``: pieces ending in . ! ? (or the end), blank ones dropped."""
    parts = _SENTENCE_END.split(text)
    return [p for p in parts if words(p)]


def _has_word(text: str, word: str) -> bool:
    return re.search(r"(?<!\w)" + re.escape(word) + r"(?!\w)", text, re.IGNORECASE) is not None


def _json_value(text: str) -> Any:
    body = text.strip()
    fenced = _FENCE.match(body)
    if fenced:
        body = fenced.group(1)
    return json.loads(body)


def _is_json(text: str) -> bool:
    try:
        _json_value(text)
    except (json.JSONDecodeError, ValueError):
        return False
    return True


def _bullets(text: str) -> tuple[int, int]:
    """(bullet lines, other non-blank lines)."""
    lines = [line for line in text.splitlines() if line.strip()]
    bullets = sum(bool(_BULLET.match(line)) for line in lines)
    return bullets, len(lines) - bullets


def _postscript(text: str) -> bool:
    paragraphs = [p.strip() for p in re.split(r"\n\s*\n|\n", text.strip()) if p.strip()]
    return bool(paragraphs) and len(paragraphs) > 1 and paragraphs[-1].startswith(("P.S.", "P.S"))


@dataclass(frozen=True)
class Kind:
    """A constraint kind: how it is phrased, checked and drawn."""

    name: str
    group: str
    phrase: Callable[[Mapping[str, Any]], str]
    check: Callable[[str, Mapping[str, Any]], bool]
    draw: Callable[[random.Random, Sequence[str]], dict[str, Any]]


def _draw_keywords(rng: random.Random, candidates: Sequence[str]) -> dict[str, Any]:
    pool = list(dict.fromkeys(candidates)) or list(FALLBACK_KEYWORDS)
    return {"keywords": sorted(rng.sample(pool, k=min(len(pool), rng.choice((1, 2)))))}


KINDS: dict[str, Kind] = {k.name: k for k in (
    Kind("min_words", "length",
         lambda p: f"Use at least {p['n']} words.",
         lambda r, p: len(words(r)) >= p["n"],
         lambda rng, _: {"n": rng.choice((20, 30, 40, 60))}),
    Kind("max_words", "length",
         lambda p: f"Keep the answer to {p['n']} words or fewer.",
         lambda r, p: len(words(r)) <= p["n"],
         lambda rng, _: {"n": rng.choice((25, 40, 60, 80))}),
    Kind("max_sentences", "sentences",
         lambda p: f"Answer in no more than {p['n']} sentences.",
         lambda r, p: len(sentences(r)) <= p["n"],
         lambda rng, _: {"n": rng.choice((2, 3, 4))}),
    Kind("include_keywords", "keywords",
         lambda p: "Mention the words " + ", ".join(f'"{w}"' for w in p["keywords"]) + ".",
         lambda r, p: all(_has_word(r, w) for w in p["keywords"]),
         _draw_keywords),
    Kind("avoid_keywords", "avoid",
         lambda p: "Do not use the words " + ", ".join(f'"{w}"' for w in p["keywords"]) + ".",
         lambda r, p: not any(_has_word(r, w) for w in p["keywords"]),
         lambda rng, _: {"keywords": sorted(rng.sample(AVOIDABLE_WORDS, k=2))}),
    Kind("bullet_list", "format",
         lambda p: f"Format the answer as exactly {p['n']} bullet points, each on its own line "
                   f"starting with \"* \".",
         lambda r, p: _bullets(r) == (p["n"], 0),
         lambda rng, _: {"n": rng.choice((2, 3, 4))}),
    Kind("json_format", "format",
         lambda p: "Give the whole answer as valid JSON.",
         lambda r, p: _is_json(r),
         lambda rng, _: {}),
    Kind("title", "title",
         lambda p: "Give the answer a title in double angle brackets, like <<My title>>.",
         lambda r, p: bool(_TITLE.search(r)),
         lambda rng, _: {}),
    Kind("lowercase", "case",
         lambda p: "Write everything in lower-case letters; no capitals at all.",
         lambda r, p: r == r.lower() and any(c.isalpha() for c in r),
         lambda rng, _: {}),
    Kind("uppercase", "case",
         lambda p: "Write everything in capital letters.",
         lambda r, p: r == r.upper() and any(c.isalpha() for c in r),
         lambda rng, _: {}),
    Kind("no_commas", "punctuation",
         lambda p: "Do not use any commas.",
         lambda r, p: "," not in r and "，" not in r,
         lambda rng, _: {}),
    Kind("end_phrase", "ending",
         lambda p: f"Finish with this exact phrase: \"{p['phrase']}\"",
         lambda r, p: r.rstrip().endswith(p["phrase"]),
         lambda rng, _: {"phrase": rng.choice(END_PHRASES)}),
    Kind("postscript", "ending",
         lambda p: "Add a postscript at the end, on its own line starting with \"P.S.\".",
         lambda r, p: _postscript(r),
         lambda rng, _: {}),
    Kind("quoted", "wrapping",
         lambda p: "Wrap the entire answer in double quotation marks.",
         lambda r, p: len(r.strip()) > 2 and r.strip()[0] == '"' and r.strip()[-1] == '"',
         lambda rng, _: {}),
)}

#: Pairs of kinds that cannot hold together (beyond one kind per group).
INCOMPATIBLE = frozenset(frozenset(p) for p in (
    ("json_format", "title"), ("json_format", "end_phrase"), ("json_format", "postscript"),
    ("json_format", "quoted"), ("json_format", "uppercase"), ("json_format", "lowercase"),
    ("json_format", "no_commas"), ("json_format", "max_sentences"),
    ("bullet_list", "quoted"), ("bullet_list", "postscript"), ("bullet_list", "title"),
    ("bullet_list", "end_phrase"), ("quoted", "end_phrase"), ("quoted", "postscript"),
    ("quoted", "title"), ("uppercase", "end_phrase"), ("lowercase", "end_phrase"),
    ("uppercase", "postscript"), ("lowercase", "title"), ("uppercase", "title"),
    ("lowercase", "include_keywords"), ("uppercase", "include_keywords"),
    ("max_words", "bullet_list"),
))


def keyword_candidates(text: str) -> list[str]:
    """Content words of a request (lower-cased, 5+ letters, no stopwords), in order."""
    out = [w.lower() for w in words(text) if len(w) >= 5 and w.isalpha()]
    return [w for w in dict.fromkeys(out) if w not in _STOPWORDS]


def compatible(kinds: Sequence[str]) -> bool:
    """True when no two kinds share a group or are declared incompatible."""
    groups = [KINDS[k].group for k in kinds]
    if len(set(groups)) != len(groups):
        return False
    return not any(frozenset((a, b)) in INCOMPATIBLE for i, a in enumerate(kinds)
                   for b in kinds[i + 1:])


def draw_constraints(seed: int, request: str = "", max_n: int = 3) -> list[dict[str, Any]]:
    """1 to ``max_n`` compatible constraints, the same for the same seed and request.

    Keywords to include come from the request's own content words, so the constraint fits it.
    Each constraint is ``{"kind", "params", "text"}``.
    """
    if max_n < 1:
        raise ValueError("max_n must be >= 1")
    rng = random.Random(seed)
    n = rng.randint(1, max_n)
    chosen: list[str] = []
    for name in rng.sample(sorted(KINDS), k=len(KINDS)):
        if len(chosen) == n:
            break
        if compatible([*chosen, name]):
            chosen.append(name)
    candidates = keyword_candidates(request)
    out = []
    for name in sorted(chosen):
        params = KINDS[name].draw(rng, candidates)
        out.append({"kind": name, "params": params, "text": KINDS[name].phrase(params)})
    return out


def instruction_text(request: str, constraints: Sequence[Mapping[str, Any]]) -> str:
    """The request followed by its constraints, as the assistant reads it."""
    return " ".join([request.strip(), *(c["text"] for c in constraints)])


def check(response: str, constraint: Mapping[str, Any]) -> bool:
    """Whether ``response`` obeys one constraint; an unknown kind raises ``KeyError``."""
    return bool(KINDS[constraint["kind"]].check(response, constraint.get("params") or {}))


def verify(response: str | None, constraints: Sequence[Mapping[str, Any]]) -> list[bool]:
    """One verdict per constraint; a missing or blank response obeys nothing."""
    if response is None or not response.strip():
        return [False] * len(constraints)
    return [check(response, c) for c in constraints]


def parse_constraints(raw: str) -> list[dict[str, Any]]:
    """Constraints from their stored JSON; raises ``ValueError`` with a reason when bad."""
    try:
        value = json.loads(raw)
    except (json.JSONDecodeError, TypeError) as exc:
        raise ValueError(f"constraints are not JSON: {exc}") from exc
    if not isinstance(value, list) or not all(isinstance(c, dict) for c in value):
        raise ValueError("constraints must be a list of objects")
    for c in value:
        if c.get("kind") not in KINDS:
            raise ValueError(f"unknown constraint kind {c.get('kind')!r}")
    return value
