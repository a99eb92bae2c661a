"""The openai backend against real servers on 127.0.0.1: llama.cpp's OpenAI-compatible server
running the embedded model, and a scripted fault server."""

import asyncio
import dataclasses
import threading
import time

import pytest

from personahub_assets.lib.common.openai_calls import AdaptiveLimit
from personahub_assets.lib.personas.validation import validate_sample
from personahub_assets.lib.synthesis.generation import GenerationRequest
from personahub_assets.prompts import DOMAIN_RULES, SYNTHESIS_TEMPLATES, persona_to_persona
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
def llama_server():
    """One llama.cpp server with the embedded GGUF for the module's model tests."""
    with llama_cpp_server(packaged_model_path()) as base_url:
        yield base_url


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
def test_real_openai_compatible_server(tmp_path, llama_server):
    """llama-cpp-python's server with the embedded GGUF: completions, chat and JSON."""
    base_url = llama_server
    llm = LLMResource(backend="openai", base_url=base_url, model="gemma-3-270m",
                      cache_path=str(tmp_path / "cache.duckdb"), max_concurrency=2)
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
    # llama-cpp-python's server answers /models as owner "me" and takes a grammar.
    assert llm.engine.effective_json_mode() == "llamacpp_grammar"

    chat = LLMResource(backend="openai", base_url=base_url, model="gemma-3-270m",
                       prompt_style="chat", cache_path=str(tmp_path / "cache.duckdb"))
    (reply,) = chat.generate([dataclasses.replace(reqs[0], max_tokens=24)])
    assert reply.error is None and reply.text.strip()

    # Same batch again: served from the cache, no HTTP request at all.
    again = LLMResource(backend="openai", base_url=base_url, model="gemma-3-270m",
                        cache_path=str(tmp_path / "cache.duckdb"))
    assert [r.text for r in again.generate(reqs)] == [r.text for r in results]
    assert again.engine.http_attempts == 0


def test_429s_lower_the_concurrency_limit_and_every_request_succeeds(tmp_path):
    with FaultServer(max_in_flight=2, answer_s=0.05) as server:
        llm = _fault_llm(server, tmp_path, max_concurrency=8, max_retries=12, chunk_size=64,
                         timeout_s=10.0)
        results = llm.generate([_req(f"FAULT:ok aimd {i}") for i in range(40)])
        meta = llm.summarize(results)
    assert [r.error for r in results] == [None] * 40
    assert server.rejected > 0 and meta["llm_rate_limited"] == server.rejected
    # Counted on the server: every request got one 200, after its 429s.
    assert server.total == 40 + server.rejected <= meta["llm_http_attempts"]
    assert meta["llm_concurrency_lowest"] <= 4 and meta["llm_replicas"] == 1


def test_adaptive_limit_halves_once_per_round_and_recovers():
    async def run():
        limit = AdaptiveLimit(8)
        epochs = [await limit.acquire() for _ in range(4)]
        for epoch in epochs:  # four 429s of one round cut the limit once
            await limit.release(epoch, overloaded=True, succeeded=False)
        assert (limit.limit, limit.decreases) == (4.0, 1)
        for _ in range(40):
            epoch = await limit.acquire()
            await limit.release(epoch, overloaded=False, succeeded=True)
        return limit.limit

    assert asyncio.run(run()) == 8.0


def test_pool_spreads_requests_over_replicas(tmp_path):
    with FaultServer(answer_s=0.05) as a, FaultServer(answer_s=0.05) as b:
        llm = _fault_llm(a, tmp_path, base_url=f"{a.base_url}, {b.base_url}",
                         max_concurrency=4)
        results = llm.generate([_req(f"FAULT:ok spread {i}") for i in range(24)])
    assert all(r.error is None for r in results)
    assert a.total + b.total == 24 and min(a.total, b.total) >= 8


def test_pool_drops_a_dead_replica_and_its_requests_go_to_the_other(tmp_path):
    with FaultServer(answer_s=0.05) as a, FaultServer(answer_s=0.05, die_after=3) as b:
        # No retries at all: moving off a dead replica does not use one up.
        llm = _fault_llm(a, tmp_path, base_url=f"{a.base_url},{b.base_url}",
                         max_concurrency=4, max_retries=0)
        results = llm.generate([_req(f"FAULT:ok pool {i}") for i in range(20)])
        meta = llm.summarize(results)
    assert [r.error for r in results] == [None] * 20
    assert llm.engine.dropped_replicas == [b.base_url.rstrip("/")]
    assert b.total >= 4 and a.total == 20 - 3  # b answered three, then died
    assert meta["llm_replicas_dropped"] == 1 and meta["llm_http_attempts"] >= a.total + b.total


def _json_domain_requests(n: int) -> list[tuple[str, GenerationRequest]]:
    out = []
    for domain, template in SYNTHESIS_TEMPLATES.items():
        if template.json_schema is None:
            continue
        for i in range(n):
            variables = {"persona": f"A beekeeper who sells honey at a market, number {i}."}
            variables.update({var: "a river port of merchants and ferries"
                              for var, _ in template.fields if var not in variables})
            out.append((domain, template.request(variables, seed=100 + i)))
    return out


def _assert_valid(domain: str, result) -> None:
    template = SYNTHESIS_TEMPLATES[domain]
    parsed = result.parsed
    if parsed is not None and template.convert is not None:
        parsed = template.convert(parsed)
    valid, reason, _ = validate_sample(DOMAIN_RULES[domain], result.text, result.finish_reason,
                                       "A beekeeper.", parsed)
    assert valid, (domain, reason, result.text, result.error)


@pytest.mark.model
@pytest.mark.parametrize("prompt_style", ["completion", "chat"])
def test_every_json_domain_is_valid_through_a_llamacpp_server(tmp_path, prompt_style,
                                                             llama_server):
    items = _json_domain_requests(2)
    assert {d for d, _ in items} >= {"npc", "tool"}
    llm = LLMResource(backend="openai", base_url=llama_server, model="gemma-3-270m",
                      prompt_style=prompt_style, max_concurrency=2,
                      cache_path=str(tmp_path / "cache.duckdb"))
    results = llm.generate([r for _, r in items])
    for (domain, _), result in zip(items, results, strict=True):
        _assert_valid(domain, result)


@pytest.mark.model
def test_completion_json_without_guided_decoding_stops_at_the_format_end(tmp_path,
                                                                        llama_server):
    """No grammar: the stop sequences end the answer where the few-shot format does, instead
    of the model running on into another example until the token limit."""
    items = _json_domain_requests(2)
    llm = LLMResource(backend="openai", base_url=llama_server, model="gemma-3-270m",
                      json_mode="none", max_concurrency=2,
                      cache_path=str(tmp_path / "cache.duckdb"))
    results = llm.generate([r for _, r in items])
    assert not [r.text for r in results if r.is_truncated or r.error]


@pytest.mark.model
def test_two_llamacpp_servers_one_killed_mid_batch(tmp_path):
    processes = []
    model = packaged_model_path()
    with llama_cpp_server(model, processes=processes) as first, \
            llama_cpp_server(model, processes=processes) as second:
        llm = LLMResource(backend="openai", base_url=f"{first},{second}", model="gemma-3-270m",
                          max_concurrency=4, max_retries=0, chunk_size=64,
                          cache_path=str(tmp_path / "cache.duckdb"))
        t = persona_to_persona.TEMPLATE
        reqs = [t.request({"persona": f"A tailor in city {i}.", "relation": "client"}, seed=i)
                for i in range(16)]

        def kill_second_when_busy():
            deadline = time.monotonic() + 120
            while llm.engine.http_attempts < 6 and time.monotonic() < deadline:
                time.sleep(0.01)
            processes[1].kill()

        killer = threading.Thread(target=kill_second_when_busy)
        killer.start()
        results = llm.generate(reqs)
        killer.join()
    assert [r.error for r in results] == [None] * 16
    assert all(r.text.startswith("A ") for r in results)
    assert llm.engine.dropped_replicas == [second]
    # The requests the killed server held were sent again, to the first one.
    assert llm.engine.http_attempts > 16


def test_leading_json_is_kept_and_the_tail_dropped_and_counted(fault_server, tmp_path):
    schema = {"type": "object", "properties": {"name": {"type": "string"}}}
    llm = _fault_llm(fault_server, tmp_path)
    (res,) = llm.generate([_req("FAULT:jsontail x", json_schema=schema)])
    assert res.parsed == {"name": "Ada"} and res.text == '{"name": "Ada"}'
    # The value is complete; only the dropped tail ran into the token limit.
    assert res.finish_reason == "stop" and res.extra["server_finish_reason"] == "length"
    assert res.extra["trailing_chars"] > 0
    assert llm.summarize([res])["llm_trailing_text_dropped"] == 1
    assert fault_server.attempts["FAULT:jsontail"] == 1  # no second try was needed
