"""The inference resource on the real embedded model (llama.cpp, Gemma 3 270M, CPU)."""

import dataclasses

import pytest

from personahub_assets.lib.synthesis.generation import summarize
from personahub_assets.prompts import SYNTHESIS_TEMPLATES, persona_to_persona
from personahub_assets.resources.llm import LLMResource

pytestmark = pytest.mark.model


def _requests(n: int):
    t = persona_to_persona.TEMPLATE
    return [t.request({"persona": f"A baker in town number {i}.", "relation": "supplier"},
                      seed=i) for i in range(n)]


def test_batch_is_cached_and_a_rerun_makes_no_call(tmp_path):
    llm = LLMResource(cache_path=str(tmp_path / "cache.duckdb"))
    first = llm.generate(_requests(3))
    assert [r.error for r in first] == [None, None, None]
    assert all(r.text.startswith("A") and r.completion_tokens > 0 for r in first)
    assert summarize(first)["llm_calls"] == 3
    second = llm.generate(_requests(3))
    assert summarize(second)["llm_calls"] == 0
    assert [r.text for r in second] == [r.text for r in first]
    assert all(r.cached for r in second)


def test_one_failing_item_does_not_fail_the_batch(tmp_path):
    llm = LLMResource(cache_path=str(tmp_path / "cache.duckdb"), n_ctx=512)
    good = _requests(2)
    too_long = dataclasses.replace(good[0], completion_prompt="word " * 2000)
    results = llm.generate([good[0], too_long, good[1]])
    assert results[0].error is None and results[2].error is None
    assert results[1].error and results[1].finish_reason == "error" and results[1].text == ""
    # Errors are not cached: the next run tries the failed item again.
    again = llm.generate([too_long])
    assert not again[0].cached and again[0].error


def test_truncation_is_flagged(tmp_path):
    llm = LLMResource(cache_path=str(tmp_path / "cache.duckdb"))
    req = dataclasses.replace(SYNTHESIS_TEMPLATES["knowledge"].request(
        {"persona": "A glass blower in Murano."}, seed=1), max_tokens=3)
    (res,) = llm.generate([req])
    assert res.is_truncated and res.completion_tokens == 3


def test_structured_output_follows_the_schema(tmp_path):
    llm = LLMResource(cache_path=str(tmp_path / "cache.duckdb"))
    template = SYNTHESIS_TEMPLATES["npc"]
    (res,) = llm.generate([template.request(
        {"persona": "A lighthouse keeper who collects storm stories.",
         "world": "a windy archipelago of fishing villages"}, seed=3)])
    assert res.error is None
    assert isinstance(res.parsed, dict)
    assert set(res.parsed) == {"name", "description", "interaction"}


def test_unknown_backend_is_a_clear_error(tmp_path):
    with pytest.raises(ValueError, match="unknown backend"):
        LLMResource(backend="nope", cache_path=str(tmp_path / "c.duckdb")).generate(_requests(1))


def test_batched_structured_outputs_all_follow_their_schemas(tmp_path):
    """Several constrained requests at once go through continuous batching, where the grammar
    is checked after sampling (and the vocabulary masked only for a rejected token): every
    output must still be JSON valid against its request's schema."""
    import json

    import jsonschema

    from personahub_assets.prompts import persona_attributes

    llm = LLMResource(cache_path=str(tmp_path / "cache.duckdb"), n_parallel=4)
    personas = ["A lighthouse keeper who collects storm stories.",
                "A tram driver in Lisbon who restores old clocks.",
                "A beekeeper who teaches statistics at night school."]
    requests = [SYNTHESIS_TEMPLATES["npc"].request(
        {"persona": p, "world": "a windy archipelago of fishing villages"}, seed=i)
        for i, p in enumerate(personas)]
    requests += [persona_attributes.TEMPLATE.request({"persona": p}, seed=10 + i)
                 for i, p in enumerate(personas)]
    results = llm.generate(requests)
    assert [r.error for r in results] == [None] * len(requests)
    for request, result in zip(requests, results, strict=True):
        assert result.finish_reason == "stop", result.text
        jsonschema.validate(json.loads(result.text), request.json_schema)


@pytest.mark.parametrize("n_parallel", [1, 4])
def test_stop_sequences_never_cut_a_constrained_output(tmp_path, n_parallel):
    """A blank line inside a JSON object once cut a judge verdict short (its template stops
    at a blank line, and the grammar allows whitespace). Under a grammar the output ends with
    the JSON value, so no stop sequence applies: here one that every object contains."""
    import json

    import jsonschema

    llm = LLMResource(cache_path=str(tmp_path / "cache.duckdb"), n_parallel=n_parallel)
    template = SYNTHESIS_TEMPLATES["npc"]
    requests = [dataclasses.replace(template.request(
        {"persona": p, "world": "a windy archipelago of fishing villages"}, seed=5), stop=('"',))
        for p in ("A lighthouse keeper who collects storm stories.",
                  "A ferry mechanic who paints seabirds.")]
    for request, result in zip(requests, llm.generate(requests), strict=True):
        assert result.error is None
        jsonschema.validate(json.loads(result.text), request.json_schema)


def _grammar_accepts(text: str, schema) -> bool:
    """Whether llama.cpp's grammar for ``schema`` lets the embedded model's tokens of ``text``
    through, one token at a time, as the batched sampler checks them."""
    import ctypes
    import math
    import os

    import llama_cpp

    from personahub_assets.resources.backends.llamacpp import (
        json_gbnf,
        load_model,
        packaged_model_path,
    )

    llm = load_model(packaged_model_path(), 2048, os.cpu_count() or 1)
    vocab = llama_cpp.llama_model_get_vocab(llm._model.model)
    grammar = llama_cpp.llama_sampler_init_grammar(vocab, json_gbnf(schema).encode(), b"root")
    one = (llama_cpp.llama_token_data * 1)()
    arr = llama_cpp.llama_token_data_array(data=one, size=1, selected=-1, sorted=False)
    try:
        for token in llm.tokenize(text.encode(), add_bos=False, special=False):
            one[0].id, one[0].logit, one[0].p = token, 1.0, 0.0
            arr.size = 1
            llama_cpp.llama_sampler_apply(grammar, ctypes.byref(arr))
            if math.isinf(one[0].logit):
                return False
            llama_cpp.llama_sampler_accept(grammar, token)
        return True
    finally:
        llama_cpp.llama_sampler_free(grammar)


def test_the_json_grammar_keeps_raw_control_characters_out_of_strings():
    """A judge verdict once came back with a raw newline inside its reason (the converter's
    string rule allowed it), which is not JSON. The grammar now holds strings to JSON."""
    from personahub_assets.prompts import judge

    good = '{"score": 2, "reason": "On topic, but cut off.\\nSecond line.", "unsafe": false}'
    bad = '{"score": 2, "reason": "On topic, but cut off.\nRubric: more", "unsafe": false}'
    assert _grammar_accepts(good, judge.SCHEMA)
    assert not _grammar_accepts(bad, judge.SCHEMA)
