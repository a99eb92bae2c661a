"""The ``openai`` backend: OpenAI-compatible servers (OpenAI, vllm serve, llama.cpp, SGLang).

Transport is the official ``openai`` client (``AsyncOpenAI``) with its retries off, so every
429 reaches our one retry policy and the adaptive concurrency limit
(:mod:`personahub_assets.lib.common.openai_calls`). Several base URLs make a pool of replicas.
"""

from __future__ import annotations

import asyncio
import json
import time
from typing import Any

from personahub_assets.lib.common.openai_calls import (
    AdaptiveLimit,
    CallFailed,
    CallStats,
    RateLimiter,
    ReplicaPool,
    call_with_retry,
    request_headers,
)
from personahub_assets.lib.common.retry import RetryPolicy
from personahub_assets.lib.synthesis.generation import GenerationRequest, GenerationResult

__all__ = ["JSON_MODES", "OpenAICompatBackend", "RateLimiter", "RetryPolicy"]

#: How a JSON schema reaches the server. ``auto`` asks ``/models`` who serves: llama.cpp's C++
#: server gets its ``json_schema`` field, llama-cpp-python's server a ``grammar``, anything
#: else (OpenAI, vLLM, SGLang) ``response_format``.
JSON_MODES = ("auto", "response_format", "json_schema", "llamacpp_grammar", "guided_json",
              "none")
_SERVER_JSON_MODE = {"llamacpp": "json_schema", "me": "llamacpp_grammar"}


def estimate_tokens(request: GenerationRequest) -> int:
    """A cheap upper-ish estimate of a request's tokens for the tokens-per-minute limit."""
    chars = len(request.completion_prompt) or sum(len(c) for _, c in request.chat_messages)
    return chars // 4 + request.max_tokens


def split_base_urls(base_url: str) -> list[str]:
    """Base URLs from one setting: several replicas are separated by commas or spaces."""
    return [u.rstrip("/") for u in base_url.replace(",", " ").split() if u.strip()]


class OpenAICompatBackend:
    """Sends ``/completions`` or ``/chat/completions`` requests to one server or a pool."""

    name = "openai"

    def __init__(
        self,
        base_url: str | list[str],
        model: str,
        api_key: str = "",
        max_concurrency: int = 8,
        timeout_s: float = 120.0,
        retry: RetryPolicy | None = None,
        rpm: int = 0,
        tpm: int = 0,
        json_mode: str = "auto",
    ):
        urls = split_base_urls(base_url) if isinstance(base_url, str) else list(base_url)
        if not urls:
            raise ValueError("the openai backend needs base_url (e.g. http://127.0.0.1:8000/v1)")
        if not model:
            raise ValueError("the openai backend needs a model name")
        if json_mode not in JSON_MODES:
            raise ValueError(f"json_mode must be one of {JSON_MODES}")
        if max_concurrency < 1:
            raise ValueError("max_concurrency must be >= 1")
        self.base_urls = urls
        self.model_name = model
        self._api_key = api_key
        self.max_concurrency = max_concurrency
        self.timeout_s = timeout_s
        self.retry = retry or RetryPolicy()
        self.rpm, self.tpm = rpm, tpm
        self.json_mode = json_mode
        self.stats = CallStats()
        #: Requests allowed in flight now (AIMD); it carries over from one batch to the next.
        self.concurrency_limit = float(max_concurrency)
        self.lowest_concurrency_limit = float(max_concurrency)
        self.dropped_replicas: list[str] = []
        self._server_json_mode: str | None = None

    @property
    def http_attempts(self) -> int:
        """Every request sent, retries included."""
        return self.stats.attempts

    def metadata(self) -> dict[str, Any]:
        """Figures for asset metadata: the adaptive limit, 429s, replicas (never the key)."""
        return {"llm_concurrency_limit": round(self.concurrency_limit, 2),
                "llm_concurrency_lowest": round(self.lowest_concurrency_limit, 2),
                "llm_rate_limited": self.stats.rate_limited,
                "llm_http_attempts": self.stats.attempts,
                "llm_replicas": len(self.base_urls),
                "llm_replicas_dropped": len(self.dropped_replicas)}

    def generate(
        self, requests: list[GenerationRequest], prompt_style: str
    ) -> list[GenerationResult]:
        """Run a batch concurrently; results come back in request order."""
        return asyncio.run(self._generate_all(requests, prompt_style))

    async def _generate_all(self, requests, prompt_style):
        pool = ReplicaPool.connect([u for u in self.base_urls if u not in self.dropped_replicas]
                                   or self.base_urls, self._api_key, self.timeout_s)
        limit = AdaptiveLimit(self.max_concurrency, self.concurrency_limit)
        limiter = RateLimiter(self.rpm, self.tpm)
        try:
            if any(r.json_schema is not None for r in requests):
                await self._detect_json_mode(pool)
            return await asyncio.gather(*[
                self._one(pool, limit, limiter, r, prompt_style) for r in requests])
        finally:
            self.concurrency_limit = limit.limit
            self.lowest_concurrency_limit = min(self.lowest_concurrency_limit, limit.lowest)
            self.dropped_replicas.extend(u for u in pool.dropped
                                         if u not in self.dropped_replicas)
            await pool.close()

    async def _detect_json_mode(self, pool: ReplicaPool) -> None:
        if self.json_mode != "auto" or self._server_json_mode is not None:
            return
        owner = ""
        try:
            models = await pool.pick().client.models.list(
                extra_headers=request_headers(self._api_key))
            owner = str(getattr(models.data[0], "owned_by", "") or "") if models.data else ""
        except Exception:  # noqa: BLE001 - no /models answer: use the standard field
            owner = ""
        self._server_json_mode = _SERVER_JSON_MODE.get(owner, "response_format")

    def effective_json_mode(self) -> str:
        """The JSON mode in use (``auto`` resolved once a JSON request was sent)."""
        if self.json_mode != "auto":
            return self.json_mode
        return self._server_json_mode or "response_format"

    def _params(self, request: GenerationRequest, prompt_style: str) -> dict[str, Any]:
        params: dict[str, Any] = {
            "model": self.model_name,
            "max_tokens": request.max_tokens,
            "temperature": request.temperature,
            "top_p": request.top_p,
            "seed": request.seed,
            "extra_headers": request_headers(self._api_key),
        }
        if request.stops_for(prompt_style):
            params["stop"] = request.stops_for(prompt_style)
        if prompt_style == "completion":
            params["prompt"] = request.completion_prompt
        else:
            params["messages"] = [{"role": r, "content": c} for r, c in request.chat_messages]
        extra = _structured_output(request.json_schema, self.effective_json_mode())
        if extra:
            params["extra_body"] = extra
        return params

    async def _one(self, pool, limit, limiter, request, prompt_style) -> GenerationResult:
        params = self._params(request, prompt_style)
        start = time.perf_counter()

        async def send(client):
            if prompt_style == "completion":
                return await client.completions.create(**params)
            return await client.chat.completions.create(**params)

        async def wait_for_rate():
            await limiter.acquire(estimate_tokens(request))

        try:
            response, retries = await call_with_retry(pool, send, self.retry, self.stats,
                                                      limit, wait_for_rate)
            result = _result(response, request, prompt_style)
        except CallFailed as exc:
            return GenerationResult(text="", finish_reason="error", error=str(exc),
                                    latency_s=time.perf_counter() - start)
        except (AttributeError, IndexError, TypeError, ValueError) as exc:
            return GenerationResult(text="", finish_reason="error",
                                    error=f"malformed response: {type(exc).__name__}: {exc}",
                                    latency_s=time.perf_counter() - start)
        result.latency_s = time.perf_counter() - start
        if retries:
            result.extra["retries"] = retries
        return result


def _structured_output(schema: dict | None, mode: str) -> dict[str, Any]:
    """Request fields that make the server constrain its output to ``schema``."""
    if schema is None or mode == "none":
        return {}
    if mode == "response_format":
        return {"response_format": {"type": "json_schema", "json_schema": {
            "name": "output", "schema": schema, "strict": True}}}
    if mode == "json_schema":
        return {"json_schema": schema}
    if mode == "guided_json":
        return {"guided_json": schema}
    from llama_cpp.llama_grammar import json_schema_to_gbnf

    return {"grammar": json_schema_to_gbnf(json.dumps(schema))}


def _result(response: Any, request: GenerationRequest, prompt_style: str) -> GenerationResult:
    if not response.choices:
        raise ValueError("no choices in the response")
    choice = response.choices[0]
    if prompt_style == "completion":
        text = request.response_prefix + (choice.text or "")
    else:
        text = (choice.message.content if choice.message else None) or ""
    usage = response.usage
    return GenerationResult(
        text=text,
        finish_reason=choice.finish_reason or "stop",
        prompt_tokens=int(getattr(usage, "prompt_tokens", 0) or 0),
        completion_tokens=int(getattr(usage, "completion_tokens", 0) or 0),
    )
