"""Automation outside the driver: the incoming-files sensor registers batches and adds their
partitions, the nightly schedule requests only missing synthesis of curated batches, a backfill
run carries several synthesis partitions, and the check report."""

import dataclasses
import json
from datetime import datetime, timezone

import pytest
from dagster import (
    Definitions,
    MultiPartitionKey,
    SensorResult,
    build_schedule_context,
    build_sensor_context,
    instance_for_test,
    materialize,
)

from personahub_assets import automation
from personahub_assets.automation import (
    MAX_RETRIES_TAG,
    incoming_files_sensor,
    nightly_synthesis_backfill,
)
from personahub_assets.definitions import ASSETS
from personahub_assets.partitions import BATCHES
from personahub_assets.prompts import DOMAINS
from personahub_assets.resources.embeddings import EmbeddingsResource
from personahub_assets.resources.llm import LLMResource
from personahub_assets.resources.warehouse import WarehouseResource
from personahub_assets_tests.batch_helpers import add_partitions, empty_batch

TEXT = ("The ferry timetable changes in October, when the evening crossing is dropped and the "
        "morning boat leaves half an hour later to wait for the school bus from the village. ")


def _resources(tmp_path) -> dict:
    return {"warehouse": WarehouseResource(path=str(tmp_path / "w.duckdb")),
            "embeddings": EmbeddingsResource(),
            "llm": LLMResource(cache_path=str(tmp_path / "c.duckdb")),
            "judge_llm": LLMResource(cache_path=str(tmp_path / "c.duckdb"))}


def _doc(name: str) -> str:
    return json.dumps({"url": f"https://example.org/{name}", "text": f"{name}. {TEXT * 2}"})


def _sense(instance, warehouse):
    """One sensor tick; the partitions it asks for are added, as the daemon would."""
    result = incoming_files_sensor(build_sensor_context(instance=instance,
                                                        resources={"warehouse": warehouse}))
    if isinstance(result, SensorResult):
        for request in result.dynamic_partitions_requests:
            assert request.partitions_def_name == BATCHES
            instance.add_dynamic_partitions(BATCHES, list(request.partition_keys))
    return result


def _added(result) -> list[str]:
    assert isinstance(result, SensorResult), getattr(result, "skip_message", result)
    assert result.run_requests in (None, [])  # the automation sensors request the runs
    return [k for r in result.dynamic_partitions_requests for k in r.partition_keys]


def _ledger(warehouse) -> list[str]:
    return [r["batch"] for r in warehouse.rows("SELECT batch FROM batches ORDER BY seq")]


def test_incoming_sensor_registers_each_new_content_once(tmp_path, monkeypatch):
    incoming = tmp_path / "data" / "incoming"
    monkeypatch.setattr(automation, "SETTINGS",
                        dataclasses.replace(automation.SETTINGS, data_dir=tmp_path / "data"))
    warehouse = WarehouseResource(path=str(tmp_path / "w.duckdb"))
    with instance_for_test() as instance:
        assert "no new files" in _sense(instance, warehouse).skip_message

        (incoming / "pages").mkdir(parents=True)
        (incoming / "pages" / "drop.jsonl").write_text(_doc("drop") + "\n")
        (incoming / "personas").mkdir()
        (incoming / "personas" / "set.jsonl").write_text(
            json.dumps({"persona": "A ferry captain who knows every reef."}) + "\n")
        first = _added(_sense(instance, warehouse))
        assert len(first) == 2 and first == _ledger(warehouse)
        assert sorted(k[0] for k in first) == ["d", "p"]  # a document and a persona batch
        assert instance.get_dynamic_partitions(BATCHES) == first

        # The same files again: nothing registered, no partition asked for.
        assert "no new files" in _sense(instance, warehouse).skip_message

        # A new file and a changed file: one new batch holding both, the old ones stay.
        (incoming / "more.jsonl").write_text(_doc("more") + "\n")
        (incoming / "pages" / "drop.jsonl").write_text(_doc("drop, edited") + "\n")
        second = _added(_sense(instance, warehouse))
        assert len(second) == 1 and second[0] not in first
        assert _ledger(warehouse) == first + second
        parts = warehouse.rows("SELECT path FROM batch_files WHERE batch = ? ORDER BY path",
                               second)
        assert [p["path"].split("incoming/")[1] for p in parts] == [
            "more.jsonl", "pages/drop.jsonl"]

        # A batch registered while the sensor was not watching (its partition never added)
        # is added on the next tick.
        behind = tmp_path / "elsewhere.jsonl"
        behind.write_text(_doc("elsewhere") + "\n")
        [late] = automation.register_source(warehouse, str(behind))
        assert _added(_sense(instance, warehouse)) == [late.key]
        assert instance.get_dynamic_partitions(BATCHES) == _ledger(warehouse)


@pytest.mark.slow
def test_nightly_backfill_requests_only_missing_synthesis_of_curated_batches(tmp_path):
    resources = _resources(tmp_path)
    wh = resources["warehouse"]
    when = datetime(2026, 12, 2, 2, 0, tzinfo=timezone.utc)
    with instance_for_test() as instance:
        curated, partly, uncurated = (empty_batch(wh, instance, name) for name in "abc")

        def tick():
            return nightly_synthesis_backfill(build_schedule_context(
                instance=instance, scheduled_execution_time=when))

        assert "every curated batch is synthesized" in tick().skip_message  # none curated
        for batch in (curated, partly):  # an empty hub: synthesis makes no model call
            assert materialize(ASSETS, selection=["persona_hub"], partition_key=batch,
                               instance=instance, resources=resources).success
        done = MultiPartitionKey({"batch": partly, "domain": "math"})
        assert materialize(ASSETS, selection=["synthetic_data"], partition_key=done,
                           instance=instance, resources=resources).success

        requests = tick()
        wanted = {str(MultiPartitionKey({"batch": b, "domain": d}))
                  for b in (curated, partly) for d in DOMAINS} - {str(done)}
        assert {str(r.partition_key) for r in requests} == wanted
        assert uncurated not in {str(r.partition_key).split("|")[0] for r in requests}
        assert len({r.run_key for r in requests}) == len(requests)
        assert all(r.run_key.startswith("nightly-20261202-") for r in requests)
        assert all(r.tags[MAX_RETRIES_TAG] == automation.RUN_TAGS[MAX_RETRIES_TAG]
                   for r in requests)

        for key in wanted:
            assert materialize(ASSETS, selection=["synthetic_data"], partition_key=key,
                               instance=instance, resources=resources).success
        assert "every curated batch is synthesized" in tick().skip_message


def test_the_code_location_loads_with_every_job():
    from personahub_assets.definitions import defs

    Definitions.validate_loadable(defs)
    for job in automation.JOBS:
        assert defs.resolve_job_def(job.name).name == job.name


@pytest.mark.slow
def test_report_shows_latest_result_per_check_and_partition(tmp_path):
    from personahub_assets.cli.report import format_report, latest_check_results, write_html_report
    from personahub_assets.lib.common.ids import persona_id
    from personahub_assets.lib.common.tables import to_arrow
    from personahub_assets_tests.servers import FaultServer

    resources = _resources(tmp_path)
    wh = resources["warehouse"]
    with instance_for_test() as instance, FaultServer() as server:
        assert format_report(latest_check_results(instance)).startswith("No asset check")
        batch = empty_batch(wh, instance)
        # One imported persona whose marker makes the scripted server truncate every reply.
        persona = "A ferry engineer who chalks FAULT:truncate on every worn engine part"
        wh.replace_partition("personas", {"batch": batch}, to_arrow("personas", [{
            "persona_id": persona_id(persona), "persona": persona, "batch": batch,
            "method": "import", "depth": 0, "backend": "import", "model": "set.jsonl",
            "template": "import", "template_version": "1", "sampling_params": "{}"}]))
        for _ in range(2):  # two runs: only the latest result of each check is shown
            assert materialize(ASSETS, selection=["persona_hub"], partition_key=batch,
                               instance=instance, resources=resources).success
        # Every sample truncated: the partition's valid-rate check fails with WARN.
        key = MultiPartitionKey({"batch": batch, "domain": "math"})
        resources["llm"] = LLMResource(backend="openai", base_url=server.base_url, model="m",
                                       cache_path=str(tmp_path / "c.duckdb"))
        assert materialize(ASSETS, selection=["synthetic_data"], instance=instance,
                           resources=resources, partition_key=key).success
        assert wh.scalar("SELECT count(*) FROM synthetic_samples WHERE NOT valid") == 1
        rows = latest_check_results(instance)
        assert [(r.asset, r.check, r.partition, r.passed) for r in rows] == [
            ("persona_hub", "hub_accounted", batch, True),
            ("persona_hub", "hub_no_embedding_near_duplicates", batch, True),
            ("persona_hub", "hub_no_near_duplicates", batch, True),
            ("persona_hub", "hub_no_pii", batch, True),
            ("persona_hub", "hub_unique_ids", batch, True),
            ("synthetic_data", "samples_provenance", str(key), True),
            ("synthetic_data", "samples_valid_rate", str(key), False),
        ]
        text = format_report(rows)
        assert "FAILED (WARN)" in text
        assert text.rstrip().endswith("7 check results: 6 passed, 1 failed (0 of severity ERROR).")

        page = write_html_report(rows, resources["warehouse"], tmp_path / "out" / "report.html")
        html = page.read_text()
        for heading in ("Persona dedup funnel", "Hub persona length", "Validity per domain",
                        "Asset checks (latest result)"):
            assert f">{heading}<" in html
        assert html.count("<svg") == 3 and "samples_valid_rate" in html and "FAILED (WARN)" in html


@pytest.mark.slow
def test_a_backfill_run_can_carry_several_synthesis_partitions(tmp_path):
    """A backfill hands one run a range of partitions (the backfill policy allows six); each
    is written and materialized separately."""
    resources = _resources(tmp_path)
    with instance_for_test() as instance:
        batch = empty_batch(resources["warehouse"], instance)
        other = empty_batch(resources["warehouse"], instance, "other")
        for b in (batch, other):
            assert materialize(ASSETS, selection=["persona_hub"], partition_key=b,
                               instance=instance, resources=resources).success
        first, last = (str(MultiPartitionKey({"batch": batch, "domain": d}))
                       for d in (DOMAINS[0], DOMAINS[2]))
        result = materialize(ASSETS, selection=["synthetic_data"], instance=instance,
                             resources=resources,
                             tags={"dagster/asset_partition_range_start": first,
                                   "dagster/asset_partition_range_end": last})
        assert result.success
        keys = sorted(str(m.partition) for m in result.get_asset_materialization_events())
        assert keys == sorted(str(MultiPartitionKey({"batch": batch, "domain": d}))
                              for d in DOMAINS[:3])
        meta = result.get_asset_materialization_events()[0].materialization.metadata
        assert meta["partitions_in_run"].value == 3
        add_partitions(instance, [batch, other])  # known keys: adding again changes nothing
        assert instance.get_dynamic_partitions(BATCHES) == [batch, other]
