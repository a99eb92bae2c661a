"""The ``openai`` backend: any OpenAI-compatible server (OpenAI, vllm serve, llama.cpp, SGLang).

Requests of a batch run concurrently (bounded), with timeouts, retries with exponential backoff
and jitter on 429, 5xx, timeouts and dropped connections (a ``Retry-After`` header wins), and
optional requests-per-minute and tokens-per-minute limits.
"""

from __future__ import annotations

import asyncio
import json
import time
from collections import deque
from typing import Any

import httpx

from personahub_assets.lib.generation import GenerationRequest, GenerationResult
from personahub_assets.lib.retry import RETRY_STATUS, RetryPolicy

__all__ = ["RETRY_STATUS", "OpenAICompatBackend", "RateLimiter", "RetryPolicy"]

JSON_MODES = ("response_format", "llamacpp_grammar", "guided_json", "none")


class RateLimiter:
    """Requests-per-minute and tokens-per-minute limits over a sliding 60 s window."""

    def __init__(self, rpm: int = 0, tpm: int = 0, window_s: float = 60.0):
        self.rpm, self.tpm, self.window_s = rpm, tpm, window_s
        self._events: deque[tuple[float, int]] = deque()
        self._lock = asyncio.Lock()

    async def acquire(self, tokens: int) -> None:
        """Wait until one more request of ``tokens`` tokens fits in the window."""
        if not self.rpm and not self.tpm:
            return
        async with self._lock:
            while True:
                now = time.monotonic()
                while self._events and now - self._events[0][0] >= self.window_s:
                    self._events.popleft()
                used = sum(t for _, t in self._events)
                fits_rpm = not self.rpm or len(self._events) < self.rpm
                fits_tpm = not self.tpm or used + tokens <= self.tpm or not self._events
                if fits_rpm and fits_tpm:
                    self._events.append((now, tokens))
                    return
                await asyncio.sleep(self.window_s - (now - self._events[0][0]) + 0.001)


def estimate_tokens(request: GenerationRequest) -> int:
    """A cheap upper-ish estimate of a request's tokens for the tokens-per-minute limit."""
    chars = len(request.completion_prompt) or sum(len(c) for _, c in request.chat_messages)
    return chars // 4 + request.max_tokens


class OpenAICompatBackend:
    """Talks to ``{base_url}/completions`` or ``{base_url}/chat/completions``."""

    name = "openai"

    def __init__(
        self,
        base_url: str,
        model: str,
        api_key: str = "",
        max_concurrency: int = 8,
        timeout_s: float = 120.0,
        retry: RetryPolicy | None = None,
        rpm: int = 0,
        tpm: int = 0,
        json_mode: str = "response_format",
    ):
        if not base_url:
            raise ValueError("the openai backend needs base_url (e.g. http://127.0.0.1:8000/v1)")
        if not model:
            raise ValueError("the openai backend needs a model name")
        if json_mode not in JSON_MODES:
            raise ValueError(f"json_mode must be one of {JSON_MODES}")
        self.base_url = base_url.rstrip("/")
        self.model_name = model
        self._api_key = api_key
        self.max_concurrency = max_concurrency
        self.timeout_s = timeout_s
        self.retry = retry or RetryPolicy()
        self.rpm, self.tpm = rpm, tpm
        self.json_mode = json_mode
        self.http_attempts = 0  # every HTTP request sent, retries included

    def generate(
        self, requests: list[GenerationRequest], prompt_style: str
    ) -> list[GenerationResult]:
        """Run a batch concurrently; results come back in request order."""
        return asyncio.run(self._generate_all(requests, prompt_style))

    async def _generate_all(self, requests, prompt_style):
        limiter = RateLimiter(self.rpm, self.tpm)
        semaphore = asyncio.Semaphore(self.max_concurrency)
        headers = {"Authorization": f"Bearer {self._api_key}"} if self._api_key else {}
        async with httpx.AsyncClient(timeout=self.timeout_s, headers=headers) as client:
            return await asyncio.gather(*[
                self._one(client, semaphore, limiter, r, prompt_style) for r in requests])

    def _payload(self, request: GenerationRequest, prompt_style: str) -> tuple[str, dict]:
        body: dict[str, Any] = {
            "model": self.model_name,
            "max_tokens": request.max_tokens,
            "temperature": request.temperature,
            "top_p": request.top_p,
            "seed": request.seed,
        }
        if request.stops_for(prompt_style):
            body["stop"] = request.stops_for(prompt_style)
        if prompt_style == "completion":
            path = "/completions"
            body["prompt"] = request.completion_prompt
        else:
            path = "/chat/completions"
            body["messages"] = [{"role": r, "content": c} for r, c in request.chat_messages]
        schema = request.json_schema
        if schema is not None:
            if self.json_mode == "response_format":
                body["response_format"] = {"type": "json_schema", "json_schema": {
                    "name": "output", "schema": schema, "strict": True}}
            elif self.json_mode == "guided_json":
                body["guided_json"] = schema
            elif self.json_mode == "llamacpp_grammar":
                from llama_cpp.llama_grammar import json_schema_to_gbnf

                body["grammar"] = json_schema_to_gbnf(json.dumps(schema))
        return path, body

    async def _one(self, client, semaphore, limiter, request, prompt_style) -> GenerationResult:
        path, body = self._payload(request, prompt_style)
        start = time.perf_counter()
        last_error = "no attempt made"
        async with semaphore:
            for attempt in range(self.retry.max_retries + 1):
                await limiter.acquire(estimate_tokens(request))
                retry_after = None
                self.http_attempts += 1
                try:
                    resp = await client.post(self.base_url + path, json=body)
                except (httpx.TimeoutException, httpx.TransportError) as exc:
                    last_error = f"{type(exc).__name__}: {exc}"
                else:
                    if resp.status_code == 200:
                        try:
                            return _parse_response(resp.json(), request, prompt_style,
                                                   time.perf_counter() - start, attempt)
                        except (ValueError, KeyError, IndexError, TypeError) as exc:
                            last_error = f"malformed response: {type(exc).__name__}: {exc}"
                    else:
                        last_error = f"HTTP {resp.status_code}: {resp.text[:200]}"
                        if resp.status_code not in RETRY_STATUS:
                            break
                        retry_after = resp.headers.get("retry-after")
                if attempt < self.retry.max_retries:
                    await asyncio.sleep(self.retry.delay(attempt, retry_after))
        return GenerationResult(text="", finish_reason="error", error=last_error,
                                latency_s=time.perf_counter() - start)


def _parse_response(data: dict, request: GenerationRequest, prompt_style: str,
                    latency_s: float, retries: int) -> GenerationResult:
    choice = data["choices"][0]
    if prompt_style == "completion":
        text = request.response_prefix + (choice.get("text") or "")
    else:
        text = (choice.get("message") or {}).get("content") or ""
    usage = data.get("usage") or {}
    result = GenerationResult(
        text=text,
        finish_reason=choice.get("finish_reason") or "stop",
        prompt_tokens=int(usage.get("prompt_tokens") or 0),
        completion_tokens=int(usage.get("completion_tokens") or 0),
        latency_s=latency_s,
    )
    if retries:
        result.extra["retries"] = retries
    return result
