"""Deterministic validation of model output: a value is kept, or rejected with a reason."""

from __future__ import annotations

import json
import re
from typing import Any

from jsonschema import Draft202012Validator

from personahub_assets.lib.minhash import jaccard, word_set

_REFUSAL = re.compile(
    r"\b(i'?m sorry|i am sorry|i cannot|i can'?t|i am unable|i'?m unable|as an ai|"
    r"as a language model|i won'?t be able)\b",
    re.IGNORECASE,
)
_WORDS = re.compile(r"\w+")
_QUESTION = re.compile(r"[?]|\b(find|how|what|which|who|determine|calculate|show)\b",
                       re.IGNORECASE)

#: The OpenAI function-calling shape every tool sample must have.
FUNCTION_SCHEMA: dict[str, Any] = {
    "type": "object",
    "required": ["name", "description", "parameters"],
    "properties": {
        "name": {"type": "string", "pattern": "^[A-Za-z_][A-Za-z0-9_]{0,63}$"},
        "description": {"type": "string", "minLength": 10},
        "parameters": {
            "type": "object",
            "required": ["type", "properties"],
            "properties": {
                "type": {"const": "object"},
                "properties": {
                    "type": "object",
                    "minProperties": 1,
                    "additionalProperties": {
                        "type": "object",
                        "required": ["type"],
                        "properties": {
                            "type": {"enum": ["string", "number", "integer", "boolean",
                                              "array", "object"]},
                            "description": {"type": "string"},
                        },
                    },
                },
                "required": {"type": "array", "items": {"type": "string"}},
            },
        },
    },
}

#: What an NPC sample must hold.
NPC_SCHEMA: dict[str, Any] = {
    "type": "object",
    "required": ["name", "description", "interaction"],
    "properties": {
        "name": {"type": "string", "minLength": 2},
        "description": {"type": "string", "minLength": 15},
        "interaction": {"type": "string", "minLength": 15},
    },
}

_FUNCTION_VALIDATOR = Draft202012Validator(FUNCTION_SCHEMA)
_NPC_VALIDATOR = Draft202012Validator(NPC_SCHEMA)


def is_refusal(text: str) -> bool:
    """True when the text reads as a model declining the task."""
    return bool(_REFUSAL.search(text))


def first_line(text: str) -> str:
    """The first non-empty line, stripped of surrounding quotes and spaces."""
    for line in text.strip().splitlines():
        line = line.strip().strip('"').strip()
        if line:
            return line
    return ""


def word_count(text: str) -> int:
    """Number of word tokens in a text."""
    return len(_WORDS.findall(text))


def copies_source(candidate: str, source: str, n: int = 8, max_share: float = 0.5) -> bool:
    """True when at least ``max_share`` of the candidate's word n-grams occur in the source."""
    cand = _WORDS.findall(candidate.casefold())
    if len(cand) < n:
        return False
    src = _WORDS.findall(source.casefold())
    src_grams = {tuple(src[i : i + n]) for i in range(len(src) - n + 1)}
    grams = [tuple(cand[i : i + n]) for i in range(len(cand) - n + 1)]
    return sum(g in src_grams for g in grams) / len(grams) >= max_share


def validate_persona(
    raw: str,
    finish_reason: str,
    source_text: str | None = None,
    min_words: int = 4,
    max_words: int = 60,
) -> tuple[str | None, str | None]:
    """Return ``(persona, None)`` when the output is a usable persona, else ``(None, reason)``."""
    if finish_reason == "length":
        return None, "truncated"
    persona = first_line(raw)
    if not persona:
        return None, "empty"
    if is_refusal(persona):
        return None, "refusal"
    words = word_count(persona)
    if words < min_words:
        return None, "too_short"
    if words > max_words:
        return None, "too_long"
    if source_text and (copies_source(persona, source_text)
                        or jaccard(word_set(persona), word_set(source_text)) >= 0.8):
        return None, "copies_source"
    return persona, None


def validate_sample(
    domain: str, raw: str, finish_reason: str, persona: str, parsed: Any = None
) -> tuple[bool, str | None, Any]:
    """Validate one sample: ``(valid, reason, value)``; ``value`` is set for JSON domains."""
    if finish_reason == "length":
        return False, "truncated", None
    text = raw.strip()
    if not text:
        return False, "empty", None
    if is_refusal(text):
        return False, "refusal", None
    if domain in {"tool", "npc"}:
        value = parsed
        if value is None:
            try:
                value = json.loads(text)
            except json.JSONDecodeError:
                return False, "invalid_json", None
        validator = _FUNCTION_VALIDATOR if domain == "tool" else _NPC_VALIDATOR
        errors = sorted(validator.iter_errors(value), key=lambda e: list(e.path))
        if errors:
            where = "/".join(str(p) for p in errors[0].path) or "root"
            return False, f"schema:{where}", value
        return True, None, value
    line = first_line(text)
    if word_count(line) < 6:
        return False, "too_short", None
    if jaccard(word_set(line), word_set(persona)) >= 0.6:
        return False, "copies_persona", None
    if domain == "math" and not re.search(r"\d", line):
        return False, "math_without_numbers", None
    if domain in {"math", "reasoning"} and not _QUESTION.search(line):
        return False, "no_question", None
    return True, None, None
