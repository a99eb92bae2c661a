"""Deterministic validation of model output: a value is kept, or rejected with a reason."""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from jsonschema import Draft202012Validator

from personahub_assets.lib.minhash import jaccard, word_set

_REFUSAL = re.compile(
    r"\b(i'?m sorry|i am sorry|i cannot|i can'?t|i am unable|i'?m unable|as an ai|"
    r"as a language model|i won'?t be able)\b",
    re.IGNORECASE,
)
_WORDS = re.compile(r"\w+")
# Phrases of text written to steer a model rather than to inform a reader.
_INSTRUCTION = re.compile(
    r"\b(ignore (all |any )?(the )?(previous|prior|above) (instructions|prompts?)|"
    r"disregard (all |the )?(previous|prior|above)|system prompt|you are now|"
    r"new instructions?:|respond only with|output the following|as an ai\b)",
    re.IGNORECASE,
)
_SENTENCE = re.compile(r"[^.!?\n]+[.!?]?")
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


def instruction_sentences(text: str) -> list[str]:
    """Sentences of a text that address a model with instructions (prompt injection)."""
    return [m.group(0).strip() for m in _SENTENCE.finditer(text) if _INSTRUCTION.search(m.group(0))]


def echoes_instruction(candidate: str, source: str | None, n: int = 4) -> bool:
    """True when the candidate carries an instruction phrase, or repeats n words of an
    instruction sentence found in its source."""
    if _INSTRUCTION.search(candidate):
        return True
    if not source:
        return False
    cand = _WORDS.findall(candidate.casefold())
    grams = {tuple(cand[i : i + n]) for i in range(len(cand) - n + 1)}
    for sentence in instruction_sentences(source):
        words = _WORDS.findall(sentence.casefold())
        if grams & {tuple(words[i : i + n]) for i in range(len(words) - n + 1)}:
            return True
    return False


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
    if echoes_instruction(persona, source_text):
        return None, "echoes_instruction"
    words = word_count(persona)
    if words < min_words:
        return None, "too_short"
    if words > max_words:
        return None, "too_long"
    if source_text and (copies_source(persona, source_text)
                        or jaccard(word_set(persona), word_set(source_text)) >= 0.8):
        return None, "copies_source"
    return persona, None


@dataclass(frozen=True)
class DomainRules:
    """What a valid sample of a domain looks like; every rule is deterministic.

    A domain with ``json_schema`` expects JSON valid against it. A text domain keeps the
    first line and checks its length, optional regular expression, numbers and question.
    """

    min_words: int = 6
    max_words: int = 400
    must_match: str | None = None
    require_number: bool = False
    require_question: bool = False
    json_schema: Mapping[str, Any] | None = None
    max_persona_overlap: float = 0.6

    def validator(self) -> Draft202012Validator | None:
        """The JSON Schema validator of this domain, if it is a JSON domain."""
        if self.json_schema is None:
            return None
        key = json.dumps(self.json_schema, sort_keys=True)
        if key not in _VALIDATORS:
            Draft202012Validator.check_schema(self.json_schema)
            _VALIDATORS[key] = Draft202012Validator(self.json_schema)
        return _VALIDATORS[key]


_VALIDATORS: dict[str, Draft202012Validator] = {}

#: Rules of the six built-in domains.
BUILTIN_RULES: dict[str, DomainRules] = {
    "math": DomainRules(require_number=True, require_question=True),
    "reasoning": DomainRules(require_question=True),
    "instruction": DomainRules(),
    "knowledge": DomainRules(min_words=12),
    "npc": DomainRules(json_schema=NPC_SCHEMA),
    "tool": DomainRules(json_schema=FUNCTION_SCHEMA),
}


def validate_sample(
    rules: DomainRules, raw: str, finish_reason: str, persona: str, parsed: Any = None
) -> tuple[bool, str | None, Any]:
    """Validate one sample: ``(valid, reason, value)``; ``value`` is set for JSON domains."""
    if finish_reason == "length":
        return False, "truncated", None
    text = raw.strip()
    if not text:
        return False, "empty", None
    if is_refusal(text):
        return False, "refusal", None
    validator = rules.validator()
    if validator is not None:
        value = parsed
        if value is None:
            try:
                value = json.loads(text)
            except json.JSONDecodeError:
                return False, "invalid_json", None
        errors = sorted(validator.iter_errors(value), key=lambda e: list(e.path))
        if errors:
            where = "/".join(str(p) for p in errors[0].path) or "root"
            return False, f"schema:{where}", value
        return True, None, value
    line = first_line(text)
    words = word_count(line)
    if words < rules.min_words:
        return False, "too_short", None
    if words > rules.max_words:
        return False, "too_long", None
    if jaccard(word_set(line), word_set(persona)) >= rules.max_persona_overlap:
        return False, "copies_persona", None
    if rules.require_number and not re.search(r"\d", line):
        return False, "no_number", None
    if rules.require_question and not _QUESTION.search(line):
        return False, "no_question", None
    if rules.must_match and not re.search(rules.must_match, line):
        return False, "pattern_mismatch", None
    return True, None, None


_NOT_A_PERSONA = re.compile(r"^(i|we|you|my|our|your|here|this|these|it)\b", re.IGNORECASE)


def hub_filter_reason(persona: str, min_words: int = 4, max_words: int = 80) -> str | None:
    """Why a persona may not enter the hub: personal data, length, refusal, not a persona."""
    from personahub_assets.lib.pii import find_pii

    kinds = find_pii(persona)
    if kinds:
        return "pii:" + "+".join(kinds)
    words = word_count(persona)
    if words < min_words or words > max_words:
        return "length"
    if is_refusal(persona) or echoes_instruction(persona, None):
        return "refusal_or_instruction"
    if _NOT_A_PERSONA.match(persona.strip()):
        return "not_a_persona"
    return None
