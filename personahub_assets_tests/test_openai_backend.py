"""The openai backend against real servers on 127.0.0.1: llama.cpp's OpenAI-compatible server
running the embedded model, and a scripted fault server."""

import dataclasses

import pytest

from personahub_assets.lib.generation import GenerationRequest
from personahub_assets.prompts import SYNTHESIS_TEMPLATES, persona_to_persona
from personahub_assets.resources.backends.llamacpp import packaged_model_path
from personahub_assets.resources.backends.openai_compat import RateLimiter, RetryPolicy
from personahub_assets.resources.llm import LLMResource
from personahub_assets_tests.servers import FaultServer, llama_cpp_server


def _req(prompt: str, **kw) -> GenerationRequest:
    return GenerationRequest(completion_prompt=prompt, chat_messages=(("user", prompt),),
                             max_tokens=16, **kw)


def _fault_llm(server: FaultServer, tmp_path, **kw) -> LLMResource:
    defaults = {"backend": "openai", "base_url": server.base_url, "model": "fault",
                "cache_path": str(tmp_path / "cache.duckdb"), "backoff_base_s": 0.01,
                "timeout_s": 1.0, "max_retries": 3}
    return LLMResource(**{**defaults, **kw})


@pytest.fixture(scope="module")
def fault_server():
    with FaultServer(slow_s=2.0) as server:
        yield server


def test_retries_429_and_5xx_then_succeeds(fault_server, tmp_path):
    llm = _fault_llm(fault_server, tmp_path)
    results = llm.generate([_req("FAULT:429_2 a"), _req("FAULT:500_3 b"), _req("FAULT:ok c")])
    assert [r.error for r in results] == [None, None, None]
    assert fault_server.attempts["FAULT:429_2"] == 3
    assert fault_server.attempts["FAULT:500_3"] == 4
    assert results[0].extra["retries"] == 2 and results[1].extra["retries"] == 3


def test_timeout_is_retried(fault_server, tmp_path):
    llm = _fault_llm(fault_server, tmp_path)
    (res,) = llm.generate([_req("FAULT:slow_1 x")])
    assert res.error is None and fault_server.attempts["FAULT:slow_1"] == 2


def test_failures_are_flagged_not_empty_and_do_not_fail_the_batch(fault_server, tmp_path):
    llm = _fault_llm(fault_server, tmp_path)
    results = llm.generate([_req("FAULT:always503 a"), _req("FAULT:bad400 b"),
                            _req("FAULT:malformed c"), _req("FAULT:ok d")])
    assert results[0].error.startswith("HTTP 503")
    assert fault_server.attempts["FAULT:always503"] == 4  # 1 try + 3 retries
    assert results[1].error.startswith("HTTP 400")
    assert fault_server.attempts["FAULT:bad400"] == 1  # a 400 is not retried
    assert results[2].error.startswith("malformed response")
    assert results[3].error is None and results[3].text
    assert all(r.finish_reason == "error" and r.text == "" for r in results[:3])


def test_truncation_is_flagged(fault_server, tmp_path):
    (res,) = _fault_llm(fault_server, tmp_path).generate([_req("FAULT:truncate x")])
    assert res.is_truncated and res.error is None


def test_cache_means_a_rerun_sends_nothing(fault_server, tmp_path):
    llm = _fault_llm(fault_server, tmp_path)
    reqs = [_req(f"FAULT:ok cache {i}") for i in range(5)] + [_req("FAULT:always503 cached?")]
    llm.generate(reqs)
    sent = llm.engine.http_attempts
    assert sent == 5 + 4
    again = _fault_llm(fault_server, tmp_path)
    results = again.generate(reqs)
    # The five finished calls come from the cache; only the failed one is tried again.
    assert again.engine.http_attempts == 4
    assert [r.cached for r in results] == [True] * 5 + [False]


def test_retry_after_header_wins_over_backoff():
    policy = RetryPolicy(backoff_base_s=10.0)
    assert policy.delay(0, "0") == 0.0
    assert policy.delay(0, "1000") == policy.retry_after_max_s
    assert 10.0 <= policy.delay(0, None) <= 20.0
    assert policy.delay(10, None) <= policy.backoff_max_s + 10.0


def test_requests_per_minute_limit_spaces_requests():
    import asyncio
    import time

    limiter = RateLimiter(rpm=3, window_s=0.5)

    async def burst():
        start = time.monotonic()
        for _ in range(6):
            await limiter.acquire(10)
        return time.monotonic() - start

    # Six requests at 3 per window need at least one full window of waiting.
    assert asyncio.run(burst()) >= 0.5


@pytest.mark.model
def test_real_openai_compatible_server(tmp_path):
    """llama-cpp-python's server with the embedded GGUF: completions, chat and JSON."""
    with llama_cpp_server(packaged_model_path()) as base_url:
        llm = LLMResource(backend="openai", base_url=base_url, model="gemma-3-270m",
                          cache_path=str(tmp_path / "cache.duckdb"), max_concurrency=2,
                          json_mode="llamacpp_grammar")
        t = persona_to_persona.TEMPLATE
        reqs = [t.request({"persona": f"A tailor in city {i}.", "relation": "client"}, seed=i)
                for i in range(4)]
        results = llm.generate(reqs)
        assert all(r.error is None and r.text.startswith("A ") for r in results)
        assert all(r.completion_tokens > 0 and r.prompt_tokens > 0 for r in results)
        assert llm.engine.http_attempts == 4

        npc = SYNTHESIS_TEMPLATES["npc"].request(
            {"persona": "A lighthouse keeper.", "world": "a foggy island"}, seed=1)
        (structured,) = llm.generate([npc])
        assert set(structured.parsed) == {"name", "description", "interaction"}

        chat = LLMResource(backend="openai", base_url=base_url, model="gemma-3-270m",
                           prompt_style="chat", cache_path=str(tmp_path / "cache.duckdb"))
        (reply,) = chat.generate([dataclasses.replace(reqs[0], max_tokens=24)])
        assert reply.error is None and reply.text.strip()

        # Same batch again: served from the cache, no HTTP request at all.
        again = LLMResource(backend="openai", base_url=base_url, model="gemma-3-270m",
                            cache_path=str(tmp_path / "cache.duckdb"))
        assert [r.text for r in again.generate(reqs)] == [r.text for r in results]
        assert again.engine.http_attempts == 0
