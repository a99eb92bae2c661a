"""Deterministic validation of model output: a value is kept, or rejected with a reason."""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from jsonschema import Draft202012Validator

from personahub_assets.lib.curation.shingles import jaccard, word_set
from personahub_assets.lib.ingest.language import word_units

# A model declining the task, in the languages personas most often come in. "I can't" alone
# is not a refusal ("I can't start the day without coffee"): it needs a task verb after it.
_REFUSAL = re.compile(
    r"\b(?:i'?m sorry|i am sorry|i apologi[sz]e|as an ai\b|as a(?:n ai)? language model|"
    r"(?:i cannot|i can'?t|i am unable to|i'?m unable to|i won'?t be able to|i'?m not able to)"
    r" (?:help|assist|provide|comply|fulfil+|create|generate|complete|write|answer|do th[ai]s))"
    # Chinese, Japanese, Korean
    r"|抱歉|对不起|作为(?:一个)?(?:AI|人工智能|语言模型)|我(?:无法|不能)(?:提供|完成|帮助|生成|回答|满足)"
    r"|申し訳(?:ありません|ございません)|(?:AI|人工知能|言語モデル)として|お答えできません|できかねます"
    r"|죄송합니다|죄송하지만|(?:AI|언어 모델)로서|도와드릴 수 없"
    # Russian, Arabic
    r"|\bизвините\b|к сожалению, я не могу|\bкак (?:ии|искусственный интеллект|языковая модель)\b"
    r"|\bя не могу (?:помочь|предоставить|выполнить|создать|ответить)"
    r"|عذرا|عذرًا|عذراً|أعتذر|لا أستطيع (?:المساعدة|تقديم|إنشاء|تلبية)"
    r"|كنموذج لغوي|بصفتي (?:نموذج|ذكاء)"
    # Spanish, Portuguese, French, German
    r"|\blo siento\b|\bno puedo (?:ayudar|proporcionar|crear|cumplir)|\bdesculpe\b"
    r"|\bnão posso (?:ajudar|fornecer|criar)|\bje suis désolée?\b"
    r"|\bje ne peux pas (?:aider|fournir|créer|répondre)|\ben tant qu'(?:ia|assistant)\b"
    r"|\bes tut mir leid\b|\bich kann (?:dabei )?nicht helfen|\bals (?:ki|sprachmodell)\b",
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

#: Names that function-calling APIs accept for functions and their parameters.
TOOL_NAME_PATTERN = "^[a-zA-Z0-9_-]{1,64}$"
_JSON_TYPES = ["string", "number", "integer", "boolean", "array", "object"]

#: The OpenAI function-calling shape every tool sample must have.
FUNCTION_SCHEMA: dict[str, Any] = {
    "type": "object",
    "required": ["name", "description", "parameters"],
    "properties": {
        "name": {"type": "string", "pattern": TOOL_NAME_PATTERN},
        "description": {"type": "string", "minLength": 10},
        "parameters": {
            "type": "object",
            "required": ["type", "properties"],
            "properties": {
                "type": {"const": "object"},
                "properties": {
                    "type": "object",
                    "minProperties": 1,
                    "propertyNames": {"pattern": TOOL_NAME_PATTERN},
                    "additionalProperties": {
                        "type": "object",
                        "required": ["type"],
                        "properties": {
                            "type": {"enum": _JSON_TYPES},
                            "description": {"type": "string"},
                        },
                    },
                },
                "required": {"type": "array", "items": {"type": "string"},
                             "uniqueItems": True},
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


def word_count(text: str) -> float:
    """Length of a text in word units: words where words are spaced, a fixed number of
    characters per word in Chinese, Japanese, Thai and the like (see ``lib.language``)."""
    return word_units(text)


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

    A domain with ``json_schema`` expects JSON valid against it (and, with
    ``tool_definition``, a function definition an API accepts). A text domain keeps the
    first line and checks its length, optional regular expression, numbers and question.
    """

    min_words: int = 6
    max_words: int = 400
    must_match: str | None = None
    require_number: bool = False
    require_question: bool = False
    json_schema: Mapping[str, Any] | None = None
    max_persona_overlap: float = 0.6
    tool_definition: bool = False

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
    "tool": DomainRules(json_schema=FUNCTION_SCHEMA, tool_definition=True),
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
        issue = tool_definition_issue(value) if rules.tool_definition else None
        if issue:
            return False, issue, value
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


# Openers of text that talks about a persona, a text or the task instead of being a persona.
# First-person personas ("I am a nurse who...", "We have two kids...") are personas, as
# released sets write them; "IT manager" is one too.
_NOT_A_PERSONA = re.compile(
    r"^(?:(?:you|your|here|this|these|(?-i:it|It))\b|(?:sure|certainly|okay|ok)\b"
    r"|(?:the )?persona\s*:"
    r"|以下是|这是一个|这段|这篇|该文本|本文|好的|当然"
    r"|以下は|これは|この(?:文章|テキスト|記事)|はい、|もちろん"
    r"|다음은|이 텍스트|물론"
    r"|вот\b|это (?:текст|статья)\b|данный текст|в этом тексте|конечно\b"
    r"|إليك|هذا النص|هذه المقالة|بالتأكيد"
    r"|aquí (?:está|tienes)\b|este texto\b|voici\b|ce texte\b|hier ist\b|dieser text\b)",
    re.IGNORECASE,
)


def is_not_a_persona(text: str) -> bool:
    """True when the text opens like a comment on a persona or a text, not like a persona."""
    return bool(_NOT_A_PERSONA.match(text.strip().lstrip("\"'«“「")))


def hub_filter_reason(persona: str, min_words: int = 4, max_words: int = 80) -> str | None:
    """Why a persona may not enter the hub: personal data, length, refusal, not a persona.

    Length is in word units (:func:`word_count`), so the bounds mean the same in every script.
    """
    from personahub_assets.lib.personas.pii import find_pii

    kinds = find_pii(persona)
    if kinds:
        return "pii:" + "+".join(kinds)
    words = word_count(persona)
    if words < min_words or words > max_words:
        return "length"
    if is_refusal(persona) or echoes_instruction(persona, None):
        return "refusal_or_instruction"
    if is_not_a_persona(persona):
        return "not_a_persona"
    return None


def tool_definition_issue(value: Any) -> str | None:
    """What a function-calling API would refuse in a tool definition that already matches
    :data:`FUNCTION_SCHEMA`, or None.

    Names must match :data:`TOOL_NAME_PATTERN` in full (a JSON Schema ``pattern`` lets a
    trailing newline through), ``required`` may name only declared parameters, and
    ``parameters`` must itself be a valid JSON Schema.
    """
    from jsonschema.exceptions import SchemaError

    if not re.fullmatch(TOOL_NAME_PATTERN[1:-1], value["name"]):
        return "tool:name"
    parameters = value["parameters"]
    declared = parameters["properties"]
    if any(not re.fullmatch(TOOL_NAME_PATTERN[1:-1], name) for name in declared):
        return "tool:parameter_name"
    if set(parameters.get("required", [])) - set(declared):
        return "tool:required_not_declared"
    try:
        Draft202012Validator.check_schema(parameters)
    except SchemaError:
        return "tool:invalid_json_schema"
    return None
