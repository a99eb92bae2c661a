"""The client for OpenAI-compatible embedding servers (``POST {base_url}/embeddings``)."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from typing import Any

import numpy as np

from personahub_assets.lib.common.openai_calls import (
    AdaptiveLimit,
    CallFailed,
    CallStats,
    ReplicaPool,
    call_with_retry,
    request_headers,
)
from personahub_assets.lib.common.retry import RetryPolicy
from personahub_assets.lib.curation.coverage import language_mask, script_coverage
from personahub_assets.lib.curation.vectors import normalize


class EmbeddingsAPIError(RuntimeError):
    """An embeddings server kept failing or sent a response that could not be read."""


class OpenAIEmbeddingsEncoder:
    """Client for an OpenAI-compatible ``POST {base_url}/embeddings`` endpoint.

    Texts are sent in batches of ``batch_size``, up to ``max_concurrency`` batches at once,
    through the official ``openai`` client with its own retries off: timeouts, dropped
    connections, 429 and 5xx answers are retried by :mod:`personahub_assets.lib.common.retry` (a
    ``Retry-After`` header wins) and 429s lower the concurrency (AIMD). Each response's
    ``data[].index`` puts the vectors back in input order.

    Args:
        base_url: Server root including the version, e.g. ``http://127.0.0.1:8000/v1``;
            several replicas separated by commas.
        model: Model name sent with every request.
        api_key: Sent as a bearer token when not empty.
        batch_size: Texts per request.
        timeout_s: Per-request timeout.
        max_retries: Retries per batch after the first attempt.
        dimensions: Optional ``dimensions`` request field (for models that can shorten output).
        max_concurrency: Batches in flight at once.
        scripts: Scripts the served model was trained on, for ``coverage``; None (default)
            trusts it with every script, as multilingual embedding servers are.
        languages: Languages it was trained on, for ``coverage``; None (default): all.
    """

    name = "openai"

    def __init__(self, base_url: str, model: str, api_key: str = "", *, batch_size: int = 256,
                 timeout_s: float = 60.0, max_retries: int = 4, dimensions: int | None = None,
                 max_concurrency: int = 4, scripts: Sequence[str] | None = None,
                 languages: Sequence[str] | None = None):
        urls = [u.rstrip("/") for u in base_url.replace(",", " ").split()]
        if not urls:
            raise ValueError("base_url is required, e.g. http://127.0.0.1:8000/v1")
        if not model:
            raise ValueError("model is required")
        if batch_size < 1 or max_concurrency < 1:
            raise ValueError("batch_size and max_concurrency must be >= 1")
        self.base_urls = urls
        self.model = model
        self._api_key = api_key
        self.batch_size = batch_size
        self.timeout_s = timeout_s
        self._retry = RetryPolicy(max_retries=max_retries)
        self.dimensions = dimensions
        self.max_concurrency = max_concurrency
        self.concurrency_limit = float(max_concurrency)
        self.stats = CallStats()
        self.scripts = tuple(scripts) if scripts else None
        self.languages = tuple(languages) if languages else None

    @property
    def requests_sent(self) -> int:
        """Every request sent, retries included."""
        return self.stats.attempts

    def coverage(self, texts: Sequence[str]) -> np.ndarray:
        """Share of each text's letters in the scripts the served model knows."""
        return script_coverage(texts, self.scripts) * language_mask(texts, self.languages)

    def encode(self, texts: Sequence[str]) -> np.ndarray:
        """Unit-norm float32 embeddings of ``texts`` from the server, in input order."""
        batches = [[str(text) for text in texts[start : start + self.batch_size]]
                   for start in range(0, len(texts), self.batch_size)]
        rows = [row for batch in asyncio.run(self._encode_all(batches)) for row in batch]
        if not rows:
            return np.zeros((0, self.dimensions or 0), np.float32)
        widths = {len(row) for row in rows}
        if len(widths) != 1:
            raise EmbeddingsAPIError(f"embeddings of different widths: {sorted(widths)}")
        return normalize(rows)

    async def _encode_all(self, batches: list[list[str]]) -> list[list[list[float]]]:
        pool = ReplicaPool.connect(self.base_urls, self._api_key, self.timeout_s)
        limit = AdaptiveLimit(self.max_concurrency, self.concurrency_limit)
        try:
            return await asyncio.gather(*[self._post(pool, limit, b) for b in batches])
        finally:
            self.concurrency_limit = limit.limit
            await pool.close()

    async def _post(self, pool: ReplicaPool, limit: AdaptiveLimit,
                    batch: list[str]) -> list[list[float]]:
        extra: dict[str, Any] = {"dimensions": self.dimensions} if self.dimensions else {}
        extra["extra_headers"] = request_headers(self._api_key)

        async def send(client):
            return await client.embeddings.create(model=self.model, input=batch,
                                                  encoding_format="float", **extra)

        try:
            response, _ = await call_with_retry(pool, send, self._retry, self.stats, limit)
        except CallFailed as exc:
            raise EmbeddingsAPIError(f"embeddings request failed: {exc}") from None
        return _vectors(response, len(batch))


def _vectors(response: Any, expected: int) -> list[list[float]]:
    """Vectors of one ``/embeddings`` response, ordered by their ``index`` field."""
    try:
        items = sorted(response.data, key=lambda item: int(item.index or 0))
        vectors = [[float(x) for x in item.embedding] for item in items]
    except (AttributeError, ValueError, TypeError) as exc:
        raise EmbeddingsAPIError(f"malformed embeddings response: {exc}") from exc
    if len(vectors) != expected:
        raise EmbeddingsAPIError(f"asked for {expected} embeddings, got {len(vectors)}")
    return vectors
