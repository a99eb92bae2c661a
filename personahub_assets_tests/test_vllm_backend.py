"""The vllm backend runs where vLLM and a CUDA GPU exist; elsewhere its tests skip and say why."""

import os

import pytest

from personahub_assets.prompts import SYNTHESIS_TEMPLATES, persona_to_persona
from personahub_assets.resources.backends.vllm_local import vllm_available
from personahub_assets.resources.llm import LLMResource

AVAILABLE, WHY = vllm_available()
MODEL = os.environ.get("PERSONAHUB_VLLM_TEST_MODEL", "")


def test_vllm_backend_says_why_it_cannot_run(tmp_path):
    if AVAILABLE:
        pytest.skip("vLLM and a GPU are present here")
    llm = LLMResource(backend="vllm", model="any", cache_path=str(tmp_path / "c.duckdb"))
    with pytest.raises(RuntimeError, match=f"cannot run here: {WHY}"):
        llm.generate([persona_to_persona.TEMPLATE.request(
            {"persona": "A tailor.", "relation": "client"}, seed=1)])


@pytest.mark.skipif(not MODEL, reason="set PERSONAHUB_VLLM_TEST_MODEL to a local model folder")
@pytest.mark.skipif(not AVAILABLE, reason=f"vllm backend needs vLLM and a GPU: {WHY}")
def test_vllm_batch_structured_output_and_cache(tmp_path):
    llm = LLMResource(backend="vllm", model=MODEL, cache_path=str(tmp_path / "c.duckdb"),
                      prompt_style=os.environ.get("PERSONAHUB_VLLM_TEST_STYLE", "chat"))
    t = persona_to_persona.TEMPLATE
    reqs = [t.request({"persona": f"A tailor in city {i}.", "relation": "client"}, seed=i)
            for i in range(16)]
    results = llm.generate(reqs)
    assert all(r.error is None and r.text.strip() and r.completion_tokens for r in results)
    npc = SYNTHESIS_TEMPLATES["npc"].request({"persona": "A lighthouse keeper.",
                                              "world": "a foggy island"}, seed=1)
    (structured,) = llm.generate([npc])
    assert set(structured.parsed) == {"name", "description", "interaction"}
    assert all(r.cached for r in llm.generate(reqs))
