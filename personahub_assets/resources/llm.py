"""The one inference resource: every model call of the pipeline goes through ``generate``."""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Sequence
from typing import Any

from dagster import ConfigurableResource
from pydantic import Field, PrivateAttr

from personahub_assets.lib.generation import GenerationRequest, GenerationResult
from personahub_assets.resources.duckdb_session import locked_connection

BACKENDS = ("llamacpp", "openai", "vllm")
PROMPT_STYLES = ("completion", "chat")

_CACHE_DDL = (
    "CREATE TABLE IF NOT EXISTS llm_cache (key VARCHAR PRIMARY KEY, backend VARCHAR, "
    "model VARCHAR, result_json VARCHAR, created_at TIMESTAMP DEFAULT current_timestamp)"
)

default_logger = logging.getLogger("personahub_assets.llm")


class LLMResource(ConfigurableResource):
    """Batch text generation with a response cache, on one of three backends.

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
    cache_path: str = Field(default="data/llm_cache.duckdb",
                            description="DuckDB file of the response cache.")
    use_cache: bool = Field(default=True, description="Serve finished calls from the cache.")
    chunk_size: int = Field(default=8, description="Requests between cache writes and progress.")

    _backend_impl: Any = PrivateAttr(default=None)

    def _engine(self):
        if self._backend_impl is None:
            if self.backend not in BACKENDS:
                raise ValueError(f"unknown backend {self.backend!r}; choose one of {BACKENDS}")
            if self.prompt_style not in PROMPT_STYLES:
                raise ValueError(f"unknown prompt_style {self.prompt_style!r}")
            if self.backend == "llamacpp":
                from personahub_assets.resources.backends.llamacpp import LlamaCppBackend

                self._backend_impl = LlamaCppBackend(self.model, self.n_ctx, self.n_threads)
            else:
                raise NotImplementedError(
                    f"backend {self.backend!r} is not available in this version; "
                    "use backend='llamacpp'"
                )
        return self._backend_impl

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
        start, tokens = time.perf_counter(), 0
        for offset in range(0, len(todo), self.chunk_size):
            chunk = todo[offset : offset + self.chunk_size]
            chunk_results = [self._generate_validated(engine, requests[i]) for i in chunk]
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

    def _generate_validated(self, engine, request: GenerationRequest) -> GenerationResult:
        result = engine.generate([request], self.prompt_style)[0]
        if request.json_schema is None or result.error is not None:
            return result
        result.parsed = _parse_json(result.text)
        if result.parsed is None and not result.is_truncated:
            # Structured output that does not parse is retried once, then flagged.
            retry_request = _with_seed(request, request.seed + 1)
            retry = engine.generate([retry_request], self.prompt_style)[0]
            retry.parsed = _parse_json(retry.text) if retry.error is None else None
            retry.latency_s += result.latency_s
            retry.extra["retried"] = True
            result = retry
        if result.parsed is None and result.error is None:
            result.extra["parse_error"] = "invalid_json"
        return result

    def _cache_lookup(self, keys: list[str]) -> dict[int, GenerationResult]:
        with locked_connection(self.cache_path) as conn:
            conn.execute(_CACHE_DDL)
            rows = conn.execute(
                "SELECT key, result_json FROM llm_cache WHERE key IN (SELECT unnest(?))",
                [keys],
            ).fetchall()
        found = dict(rows)
        return {i: GenerationResult.from_json(found[k]) for i, k in enumerate(keys) if k in found}

    def _cache_store(self, items: list[tuple[str, GenerationResult]]) -> None:
        if not items:
            return
        model = self._engine().model_name
        with locked_connection(self.cache_path) as conn:
            conn.execute(_CACHE_DDL)
            conn.executemany(
                "INSERT OR REPLACE INTO llm_cache (key, backend, model, result_json) "
                "VALUES (?, ?, ?, ?)",
                [(k, self.backend, model, r.to_json()) for k, r in items],
            )


def _parse_json(text: str) -> Any:
    try:
        return json.loads(text)
    except (json.JSONDecodeError, TypeError):
        return None


def _with_seed(request: GenerationRequest, seed: int) -> GenerationRequest:
    from dataclasses import replace

    return replace(request, seed=seed)
