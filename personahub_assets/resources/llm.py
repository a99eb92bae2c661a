"""The one inference resource: every model call of the pipeline goes through ``generate``."""

from __future__ import annotations

import logging
import time
from collections.abc import Sequence
from dataclasses import replace
from typing import Any

from dagster import ConfigurableResource
from pydantic import Field, PrivateAttr

from personahub_assets.lib.synthesis.generation import (
    GenerationRequest,
    GenerationResult,
    parse_leading_json,
    summarize,
)
from personahub_assets.resources.response_cache import (
    LocalResponseCache,
    PostgresResponseCache,
    ResponseCache,
)

BACKENDS = ("llamacpp", "openai", "vllm")
PROMPT_STYLES = ("completion", "chat")

default_logger = logging.getLogger("personahub_assets.llm")


class LLMResource(ConfigurableResource):
    """Batch text generation with a response cache, on one of three backends.

    The API key reaches the resource only through a Dagster ``EnvVar``; it is never part of a
    cache key, provenance, metadata or a log line.

    ``backend`` picks the engine: ``llamacpp`` (embedded CPU model, the default), ``openai``
    (any OpenAI-compatible server) or ``vllm`` (in-process GPU engine). ``prompt_style`` picks
    the few-shot ``completion`` form (base models) or the ``chat`` form (instruct models).
    """

    backend: str = Field(default="llamacpp", description=f"One of {BACKENDS}.")
    model: str = Field(default="", description="GGUF path (llamacpp; empty = packaged Gemma 3 "
                                                "270M) or model name (openai, vllm).")
    prompt_style: str = Field(default="completion", description=f"One of {PROMPT_STYLES}.")
    n_ctx: int = Field(default=2048, description="Context window (llamacpp).")
    n_threads: int = Field(default=0, description="CPU threads (llamacpp; 0 = all cores).")
    n_parallel: int = Field(default=8, description="Sequences decoded together (llamacpp "
                                                   "continuous batching; 1 = one at a time).")
    cache_path: str = Field(default="data/llm_cache.duckdb",
                            description="DuckDB file of the response cache.")
    cache_catalog: str = Field(default="", description="Postgres (libpq connection string, no "
                                                       "password) holding a response cache "
                                                       "shared by every worker; empty = the "
                                                       "local cache_path.")
    use_cache: bool = Field(default=True, description="Serve finished calls from the cache.")
    chunk_size: int = Field(default=0, description="Requests per engine call, cache write and "
                                                   "progress line (0 = backend default).")
    # openai backend
    base_url: str = Field(default="", description="OpenAI-compatible base URL, e.g. "
                                                  "http://127.0.0.1:8000/v1 (openai); several "
                                                  "replicas separated by commas.")
    api_key: str = Field(default="", description="API key; set it only through an EnvVar.")
    max_concurrency: int = Field(default=8, description="Most requests in flight at once "
                                 "(openai); 429s lower the limit, successes raise it again.")
    timeout_s: float = Field(default=120.0, description="Per-request timeout (openai).")
    max_retries: int = Field(default=4, description="Retries on 429/5xx/timeouts (openai).")
    backoff_base_s: float = Field(default=0.5, description="First retry delay (openai).")
    requests_per_minute: int = Field(default=0, description="Rate limit, 0 = none (openai).")
    tokens_per_minute: int = Field(default=0, description="Rate limit, 0 = none (openai).")
    json_mode: str = Field(default="auto",
                           description="How a JSON schema is sent (openai): auto (by the "
                                       "server's /models owner), response_format, json_schema "
                                       "(llama.cpp server), llamacpp_grammar, guided_json or "
                                       "none.")
    # vllm backend
    max_model_len: int = Field(default=4096, description="Context length (vllm).")
    gpu_memory_utilization: float = Field(default=0.85, description="GPU memory share (vllm).")
    tensor_parallel_size: int = Field(default=1, description="GPUs per engine (vllm).")

    _backend_impl: Any = PrivateAttr(default=None)

    def _engine(self):
        if self._backend_impl is None:
            if self.backend not in BACKENDS:
                raise ValueError(f"unknown backend {self.backend!r}; choose one of {BACKENDS}")
            if self.prompt_style not in PROMPT_STYLES:
                raise ValueError(f"unknown prompt_style {self.prompt_style!r}")
            if self.backend == "llamacpp":
                from personahub_assets.resources.backends.llamacpp import LlamaCppBackend

                self._backend_impl = LlamaCppBackend(self.model, self.n_ctx, self.n_threads,
                                                     self.n_parallel)
            elif self.backend == "openai":
                from personahub_assets.resources.backends.openai_compat import (
                    OpenAICompatBackend,
                    RetryPolicy,
                )

                self._backend_impl = OpenAICompatBackend(
                    self.base_url, self.model, api_key=self.api_key,
                    max_concurrency=self.max_concurrency, timeout_s=self.timeout_s,
                    retry=RetryPolicy(max_retries=self.max_retries,
                                      backoff_base_s=self.backoff_base_s),
                    rpm=self.requests_per_minute, tpm=self.tokens_per_minute,
                    json_mode=self.json_mode)
            else:
                from personahub_assets.resources.backends.vllm_local import VLLMBackend

                self._backend_impl = VLLMBackend(
                    self.model, max_model_len=self.max_model_len,
                    gpu_memory_utilization=self.gpu_memory_utilization,
                    tensor_parallel_size=self.tensor_parallel_size)
        return self._backend_impl

    def truncate(self, text: str, max_tokens: int) -> tuple[str, int]:
        """(``text`` cut to a budget of ``max_tokens`` model tokens, its full token count).

        The embedded model counts with its own tokenizer; remote backends estimate four
        characters per token, since their tokenizer is not at hand.
        """
        engine = self._engine()
        if hasattr(engine, "truncate"):
            return engine.truncate(text, max_tokens)
        estimate = len(text) // 4 + 1
        return (text if estimate <= max_tokens else text[: max_tokens * 4]), estimate

    @property
    def engine(self):
        """The backend object (for diagnostics such as counting HTTP attempts)."""
        return self._engine()

    def _chunk_size(self) -> int:
        if self.chunk_size > 0:
            return self.chunk_size
        return {"llamacpp": 4 * max(self.n_parallel, 2), "openai": max(4 * self.max_concurrency, 8),
                "vllm": 256}[self.backend]

    def summarize(self, results: Sequence[GenerationResult]) -> dict[str, Any]:
        """Usage and throughput of a batch for asset metadata, plus what the backend adapted
        to (for ``openai``: the concurrency limit now and its lowest, 429s, replicas)."""
        engine = self._engine()
        extra = engine.metadata() if hasattr(engine, "metadata") else {}
        return {**summarize(list(results)), **extra}

    @property
    def model_name(self) -> str:
        """The model as recorded in provenance."""
        return self._engine().model_name

    def generate(
        self,
        requests: Sequence[GenerationRequest],
        log: Any = None,
        label: str = "generate",
    ) -> list[GenerationResult]:
        """Results for a whole batch, in request order; one failed item never fails the batch.

        Finished calls are written to the cache chunk by chunk, so a re-run after a crash makes
        no call for them. Progress (done/total, tokens/s, ETA) goes to ``log``.
        """
        log = log or default_logger
        engine = self._engine()
        keys = [r.cache_key(self.backend, engine.model_name, self.prompt_style) for r in requests]
        results: list[GenerationResult | None] = [None] * len(requests)
        if self.use_cache and requests:
            for i, cached in self._cache_lookup(keys).items():
                results[i] = cached
        todo = [i for i, r in enumerate(results) if r is None]
        total, done_before = len(requests), len(requests) - len(todo)
        if todo:
            log.info(f"{label}: {len(todo)} calls to make, {done_before} served from cache")
        start, tokens, chunk_size = time.perf_counter(), 0, self._chunk_size()
        for offset in range(0, len(todo), chunk_size):
            chunk = todo[offset : offset + chunk_size]
            chunk_results = self._generate_validated(engine, [requests[i] for i in chunk])
            for i, res in zip(chunk, chunk_results, strict=True):
                results[i] = res
                tokens += res.completion_tokens
            if self.use_cache:
                self._cache_store([(keys[i], res) for i, res in zip(chunk, chunk_results,
                                                                    strict=True)
                                   if res.error is None])
            done = offset + len(chunk)
            elapsed = time.perf_counter() - start
            rate = done / elapsed if elapsed else 0.0
            eta = (len(todo) - done) / rate if rate else 0.0
            log.info(
                f"{label}: {done_before + done}/{total} done, "
                f"{tokens / elapsed if elapsed else 0:.1f} tokens/s, "
                f"{rate:.2f} calls/s, ETA {eta:.0f}s"
            )
        return [r for r in results if r is not None]

    def _generate_validated(
        self, engine, requests: list[GenerationRequest]
    ) -> list[GenerationResult]:
        """One engine call for the chunk; structured outputs that do not parse are retried
        once (with another seed), then flagged with ``parse_error``."""
        results = engine.generate(requests, self.prompt_style)
        retry_idx = []
        for i, (req, res) in enumerate(zip(requests, results, strict=True)):
            if req.json_schema is None or res.error is not None:
                continue
            _take_leading_json(res)
            if res.parsed is None and not res.is_truncated:
                retry_idx.append(i)
        if retry_idx:
            retries = engine.generate([replace(requests[i], seed=requests[i].seed + 1)
                                       for i in retry_idx], self.prompt_style)
            for i, retry in zip(retry_idx, retries, strict=True):
                if retry.error is None:
                    _take_leading_json(retry)
                retry.latency_s += results[i].latency_s
                retry.extra["retried"] = True
                results[i] = retry
        for req, res in zip(requests, results, strict=True):
            if req.json_schema is not None and res.parsed is None and res.error is None:
                res.extra["parse_error"] = "invalid_json"
        return results

    def _cache(self) -> ResponseCache:
        if self.cache_catalog:
            return PostgresResponseCache(self.cache_catalog)
        return LocalResponseCache(self.cache_path)

    def _cache_lookup(self, keys: list[str]) -> dict[int, GenerationResult]:
        found = self._cache().lookup(keys)
        return {i: GenerationResult.from_json(found[k]) for i, k in enumerate(keys) if k in found}

    def _cache_store(self, items: list[tuple[str, GenerationResult]]) -> None:
        if not items:
            return
        model = self._engine().model_name
        self._cache().store([(k, self.backend, model, r.to_json()) for k, r in items])


def _take_leading_json(result: GenerationResult) -> None:
    """Keep the JSON value the output starts with; drop and count what follows it.

    A value that parsed is complete even when the tail ran into the token limit, so the
    result then counts as stopped (the server's reason stays in ``extra``).
    """
    value, text, trailing = parse_leading_json(result.text)
    result.parsed = value
    if value is None:
        return
    result.text = text
    if trailing:
        result.extra["trailing_chars"] = trailing
        if result.finish_reason == "length":
            result.extra["server_finish_reason"] = result.finish_reason
            result.finish_reason = "stop"
