"""A server that dies mid-batch, and a planted API key that must appear nowhere."""

import json

import pytest
from dagster import EnvVar, MultiPartitionKey, instance_for_test, materialize

from personahub_assets.definitions import ASSETS
from personahub_assets.lib.common.ids import persona_id
from personahub_assets.lib.common.tables import TABLES, to_arrow
from personahub_assets.lib.synthesis.generation import GenerationRequest
from personahub_assets.resources.duckdb_session import locked_connection
from personahub_assets.resources.embeddings import EmbeddingsResource
from personahub_assets.resources.llm import LLMResource
from personahub_assets.resources.warehouse import WarehouseResource
from personahub_assets_tests.batch_helpers import empty_batch
from personahub_assets_tests.servers import FaultServer

SECRET = "sk-planted-3f9c1a7e5d2b48c6a0e1"


def _req(i: int) -> GenerationRequest:
    prompt = f"FAULT:ok item {i}"
    return GenerationRequest(completion_prompt=prompt, chat_messages=(("user", prompt),),
                             max_tokens=8)


def test_server_dying_mid_batch_is_flagged_and_resumed(tmp_path):
    cache = str(tmp_path / "c.duckdb")
    with FaultServer(die_after=3) as dying:
        llm = LLMResource(backend="openai", base_url=dying.base_url, model="m", cache_path=cache,
                          max_concurrency=1, chunk_size=1, timeout_s=0.5, max_retries=1,
                          backoff_base_s=0.01)
        results = llm.generate([_req(i) for i in range(6)])
    assert [r.error is None for r in results] == [True, True, True, False, False, False]
    assert all(r.finish_reason == "error" and r.text == "" for r in results[3:])
    with FaultServer() as revived:  # the server comes back, at another address
        llm = LLMResource(backend="openai", base_url=revived.base_url, model="m",
                          cache_path=cache)
        again = llm.generate([_req(i) for i in range(6)])
        assert revived.total == 3  # only the three failed items are asked again
    assert [r.cached for r in again] == [True] * 3 + [False] * 3
    assert all(r.error is None for r in again)


@pytest.mark.slow
def test_planted_api_key_never_reaches_logs_tables_or_exports(tmp_path, monkeypatch, capfd):
    monkeypatch.setenv("PERSONAHUB_TEST_SECRET", SECRET)
    wh = WarehouseResource(path=str(tmp_path / "w.duckdb"))
    personas = ["A lighthouse keeper who logs every passing ship.",
                "A violin maker who chooses spruce by tapping it."]
    with FaultServer() as server, instance_for_test() as instance:
        batch = empty_batch(wh, instance)
        wh.replace_partition("persona_hub", {}, to_arrow("persona_hub", [
            {"persona_id": persona_id(p), "persona": p, "batch": batch, "method": "text",
             "depth": 0} for p in personas]))
        key = MultiPartitionKey({"batch": batch, "domain": "instruction"})
        llm = LLMResource(
            backend="openai", base_url=server.base_url, model="m", prompt_style="chat",
            api_key=EnvVar("PERSONAHUB_TEST_SECRET"), cache_path=str(tmp_path / "c.duckdb"))
        resources = {"warehouse": wh, "embeddings": EmbeddingsResource(), "llm": llm,
                     "judge_llm": llm}
        for selection in ("synthetic_data", "dataset_export"):
            result = materialize(
                ASSETS, selection=[selection],
                partition_key=key if selection == "synthetic_data" else batch, instance=instance,
                resources=resources, run_config={"ops": {"dataset_export": {"config": {
                    "exports_dir": str(tmp_path / "exports")}}}} if selection ==
                "dataset_export" else None)
            assert result.success
        # The key was really used...
        assert server.auth_headers and set(server.auth_headers) == {f"Bearer {SECRET}"}
        # ...and is nowhere else: not in any event, log line or metadata of the runs,
        haystack = []
        for run in instance.get_runs():
            haystack += [repr(e) for e in instance.all_logs(run.run_id)]
            haystack.append(json.dumps(run.run_config, default=str))
            haystack.append(repr(run.tags))
    # not in any table of the warehouse or of the response cache,
    searched = set()
    for db in (tmp_path / "w.duckdb", tmp_path / "c.duckdb"):
        with locked_connection(db) as conn:
            names = [r[0] for r in conn.execute(
                "SELECT table_name FROM information_schema.tables").fetchall()]
            for name in names:
                searched.add(name)
                haystack += [repr(row) for row in conn.execute(
                    f'SELECT * FROM "{name}"').fetchall()]
    assert set(TABLES) | {"llm_cache"} <= searched
    # not in any exported file, and not in what the process printed.
    for path in (tmp_path / "exports").rglob("*"):
        if path.is_file():
            haystack.append(path.read_bytes().decode("utf-8", "replace"))
    out, err = capfd.readouterr()
    haystack += [out, err]
    assert len(haystack) > 10
    assert not [h for h in haystack if SECRET in h]
