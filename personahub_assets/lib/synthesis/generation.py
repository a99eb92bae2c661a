"""The request and result types of the inference resource (plain data, no backend code)."""

from __future__ import annotations

import json
import re
from dataclasses import asdict, dataclass, field
from typing import Any

from personahub_assets.lib.common.ids import stable_hash


@dataclass(frozen=True)
class GenerationRequest:
    """One model call, in both prompt styles; the resource sends the one its model needs.

    ``completion_prompt`` is the few-shot form for base models, ``chat_messages`` the form for
    instruct models. ``json_schema`` asks for structured output (a grammar on llama.cpp).
    ``response_prefix`` ends the completion prompt and is put back in front of its output.
    """

    completion_prompt: str
    chat_messages: tuple[tuple[str, str], ...]
    max_tokens: int = 96
    temperature: float = 0.7
    top_p: float = 0.95
    seed: int = 0
    stop: tuple[str, ...] = ("\n",)
    json_schema: dict[str, Any] | None = None
    response_prefix: str = ""

    def stops_for(self, prompt_style: str) -> list[str]:
        """Stop sequences to send: the chat form drops the newline stops that keep a base
        model's completion on one line (instruct models may open with a newline)."""
        if prompt_style == "chat":
            return [s for s in self.stop if s.strip()]
        return list(self.stop)

    def sampling_params(self) -> dict[str, Any]:
        """The parameters that shape the output, as stored in provenance."""
        return {
            "max_tokens": self.max_tokens,
            "temperature": self.temperature,
            "top_p": self.top_p,
            "seed": self.seed,
            "stop": list(self.stop),
            "json_schema": self.json_schema is not None,
        }

    def cache_key(self, backend: str, model: str, prompt_style: str) -> str:
        """Hash of (backend, model, the prompt actually sent, parameters)."""
        prompt: Any = (self.completion_prompt if prompt_style == "completion"
                       else [list(m) for m in self.chat_messages])
        payload = json.dumps(
            {"params": self.sampling_params(), "schema": self.json_schema, "prompt": prompt},
            sort_keys=True,
        )
        return stable_hash("llm", backend, model, prompt_style, payload, length=32)


@dataclass
class GenerationResult:
    """What came back for one request. ``error`` is set instead of ever returning silently empty."""

    text: str
    finish_reason: str
    prompt_tokens: int = 0
    completion_tokens: int = 0
    latency_s: float = 0.0
    error: str | None = None
    parsed: Any = None
    cached: bool = False
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def is_ok(self) -> bool:
        """True when the call produced text and did not fail."""
        return self.error is None

    @property
    def is_truncated(self) -> bool:
        """True when the output was cut off by the token limit."""
        return self.finish_reason == "length"

    def to_json(self) -> str:
        """Serialized form for the response cache."""
        data = asdict(self)
        data.pop("cached")
        return json.dumps(data)

    @classmethod
    def from_json(cls, raw: str) -> GenerationResult:
        """Inverse of :meth:`to_json`; marks the result as served from cache."""
        return cls(**json.loads(raw), cached=True)


_FENCE_OPEN = re.compile(r"^```[a-zA-Z]*\s*")
_DECODER = json.JSONDecoder()


def parse_leading_json(text: str) -> tuple[Any, str, int]:
    """The JSON value a text starts with: ``(value, its text, characters dropped after it)``.

    Models often go on after a complete JSON value (a base model into the next few-shot
    example, an instruct model into an explanation); that tail is not part of the answer. A
    Markdown code fence around the value is allowed. ``value`` is None when the text does not
    start with a JSON value.
    """
    body = _FENCE_OPEN.sub("", text.strip(), count=1) if text.lstrip().startswith("```") \
        else text.strip()
    try:
        value, end = _DECODER.raw_decode(body)
    except (json.JSONDecodeError, TypeError):
        return None, text, 0
    tail = body[end:].strip()
    if tail.startswith("```"):
        tail = tail[3:].strip()
    return value, body[:end], len(tail)


def summarize(results: list[GenerationResult]) -> dict[str, float | int]:
    """Usage and throughput of a batch, for asset metadata (cached results cost nothing)."""
    fresh = [r for r in results if not r.cached]
    seconds = sum(r.latency_s for r in fresh)
    completion = sum(r.completion_tokens for r in fresh)
    return {
        "llm_calls": len(fresh),
        "llm_cached": len(results) - len(fresh),
        "llm_errors": sum(r.error is not None for r in results),
        "llm_truncated": sum(r.is_truncated for r in results),
        "llm_trailing_text_dropped": sum(bool(r.extra.get("trailing_chars")) for r in results),
        "prompt_tokens": sum(r.prompt_tokens for r in fresh),
        "completion_tokens": completion,
        "model_seconds": round(seconds, 3),
        "completion_tokens_per_s": round(completion / seconds, 2) if seconds else 0.0,
    }


def provenance(
    backend: str, model: str, template: str, template_version: str,
    request: GenerationRequest, result: GenerationResult,
) -> dict[str, object]:
    """The provenance columns every generated row carries."""
    return {
        "backend": backend,
        "model": model,
        "template": template,
        "template_version": template_version,
        "sampling_params": json.dumps(request.sampling_params(), sort_keys=True),
        "prompt_tokens": result.prompt_tokens,
        "completion_tokens": result.completion_tokens,
    }


def seed_for(*parts: object) -> int:
    """A deterministic 31-bit sampling seed for an item, so re-runs sample the same text."""
    return int(stable_hash("seed", *parts, length=8), 16) & 0x7FFFFFFF
