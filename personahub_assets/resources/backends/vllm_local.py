"""The ``vllm`` backend: the in-process offline engine (``vllm.LLM``) on GPUs.

A whole chunk goes to the engine in one call, so vLLM batches it continuously; prefix caching
is on, and every template puts its fixed part before the persona, so the shared prefix blocks
are computed once. Structured output uses vLLM's guided (structured) decoding.
"""

from __future__ import annotations

import threading
import time
from typing import Any

from personahub_assets.lib.synthesis.generation import GenerationRequest, GenerationResult

_ENGINES: dict[tuple, Any] = {}
_LOCK = threading.Lock()


def vllm_available() -> tuple[bool, str]:
    """Whether vLLM can run here, and why not."""
    try:
        import vllm  # noqa: F401
    except ImportError:
        return False, "vllm is not installed"
    try:
        import torch
    except ImportError:
        return False, "torch is not installed"
    if not torch.cuda.is_available():
        return False, "no CUDA GPU is visible"
    return True, ""


def _structured_params(schema: dict[str, Any]) -> dict[str, Any]:
    """Sampling-parameter keywords for JSON-schema-constrained decoding, across vLLM versions."""
    try:
        from vllm.sampling_params import StructuredOutputsParams

        return {"structured_outputs": StructuredOutputsParams(json=schema)}
    except ImportError:
        from vllm.sampling_params import GuidedDecodingParams

        return {"guided_decoding": GuidedDecodingParams(json=schema)}


class VLLMBackend:
    """Batches a chunk of requests through one ``LLM.generate`` or ``LLM.chat`` call."""

    name = "vllm"

    def __init__(self, model: str, max_model_len: int = 4096, gpu_memory_utilization: float = 0.85,
                 tensor_parallel_size: int = 1):
        ok, why = vllm_available()
        if not ok:
            raise RuntimeError(f"the vllm backend cannot run here: {why}")
        if not model:
            raise ValueError("the vllm backend needs a model (a local path or a cached name)")
        self.model_name = model
        self._key = (model, max_model_len, gpu_memory_utilization, tensor_parallel_size)

    def _engine(self):
        with _LOCK:
            if self._key not in _ENGINES:
                from vllm import LLM

                model, max_len, mem, tp = self._key
                _ENGINES[self._key] = LLM(model=model, max_model_len=max_len,
                                          gpu_memory_utilization=mem, tensor_parallel_size=tp,
                                          enable_prefix_caching=True, trust_remote_code=False)
            return _ENGINES[self._key]

    def _sampling(self, request: GenerationRequest, prompt_style: str):
        from vllm import SamplingParams

        extra = _structured_params(request.json_schema) if request.json_schema else {}
        return SamplingParams(max_tokens=request.max_tokens, temperature=request.temperature,
                              top_p=request.top_p, seed=request.seed,
                              stop=request.stops_for(prompt_style) or None, **extra)

    def generate(
        self, requests: list[GenerationRequest], prompt_style: str
    ) -> list[GenerationResult]:
        """One engine call for the whole chunk; a failure marks every item of it as errored."""
        llm = self._engine()
        params = [self._sampling(r, prompt_style) for r in requests]
        start = time.perf_counter()
        try:
            if prompt_style == "completion":
                outputs = llm.generate([r.completion_prompt for r in requests], params,
                                       use_tqdm=False)
            else:
                convs = [[{"role": role, "content": c} for role, c in r.chat_messages]
                         for r in requests]
                outputs = llm.chat(convs, params, use_tqdm=False)
        except Exception as exc:  # the engine failed the chunk: flag each item, never empty
            err = f"{type(exc).__name__}: {exc}"
            return [GenerationResult(text="", finish_reason="error", error=err) for _ in requests]
        per_item = (time.perf_counter() - start) / max(len(requests), 1)
        results = []
        for request, out in zip(requests, outputs, strict=True):
            completion = out.outputs[0]
            prefix = request.response_prefix if prompt_style == "completion" else ""
            results.append(GenerationResult(
                text=prefix + completion.text,
                finish_reason=completion.finish_reason or "stop",
                prompt_tokens=len(out.prompt_token_ids or []),
                completion_tokens=len(completion.token_ids),
                latency_s=per_item,
            ))
        return results
