"""The synthesis schedule launches exactly the missing and the stale partitions."""

from dagster import MultiPartitionKey, build_schedule_context, instance_for_test, materialize

from personahub_assets.automation import synthesis_refresh_schedule
from personahub_assets.definitions import ASSETS
from personahub_assets.partitions import domain_shard_partitions
from personahub_assets.resources.embeddings import EmbeddingsResource
from personahub_assets.resources.llm import LLMResource
from personahub_assets.resources.warehouse import WarehouseResource


def test_schedule_requests_missing_then_stale_partitions(tmp_path):
    with instance_for_test() as instance:
        _check_schedule(instance, tmp_path)


def _check_schedule(instance, tmp_path):
    resources = {"warehouse": WarehouseResource(path=str(tmp_path / "w.duckdb")),
                 "embeddings": EmbeddingsResource(),
                 "llm": LLMResource(cache_path=str(tmp_path / "c.duckdb"))}
    all_keys = set(domain_shard_partitions.get_partition_keys())

    skip = synthesis_refresh_schedule(build_schedule_context(instance=instance))
    assert "never been materialized" in skip.skip_message

    # An empty hub: synthesis partitions materialize with no model call.
    assert materialize(ASSETS, selection=["persona_hub"], instance=instance,
                       resources=resources).success
    done = [MultiPartitionKey({"domain": "math", "shard": s}) for s in ("0", "1")]
    for key in done:
        assert materialize(ASSETS, selection=["synthetic_data"], partition_key=key,
                           instance=instance, resources=resources).success

    requests = synthesis_refresh_schedule(build_schedule_context(instance=instance))
    assert {r.partition_key for r in requests} == all_keys - set(done)
    assert {r.tags["personahub/reason"] for r in requests} == {"missing"}

    assert materialize(ASSETS, selection=["persona_hub"], instance=instance,
                       resources=resources).success
    requests = synthesis_refresh_schedule(build_schedule_context(instance=instance))
    assert {r.partition_key for r in requests} == all_keys
    assert {r.partition_key for r in requests if r.tags["personahub/reason"] == "stale"} == set(
        done)
    assert len({r.run_key for r in requests}) == len(requests)


def test_report_shows_latest_result_per_check_and_partition(tmp_path):
    from personahub_assets.report import format_report, latest_check_results, write_html_report

    with instance_for_test() as instance:
        resources = {"warehouse": WarehouseResource(path=str(tmp_path / "w.duckdb")),
                     "embeddings": EmbeddingsResource(),
                     "llm": LLMResource(cache_path=str(tmp_path / "c.duckdb"))}
        assert format_report(latest_check_results(instance)).startswith("No asset check")
        for _ in range(2):  # two runs: only the latest result of each check is shown
            assert materialize(ASSETS, selection=["persona_hub"], instance=instance,
                               resources=resources).success
        # An empty hub gives an empty partition: its valid-rate check fails with WARN.
        materialize(ASSETS, selection=["synthetic_data"], instance=instance, resources=resources,
                    partition_key=MultiPartitionKey({"domain": "math", "shard": "1"}))
        rows = latest_check_results(instance)
        assert [(r.asset, r.check, r.partition, r.passed) for r in rows] == [
            ("persona_hub", "hub_accounted", "-", True),
            ("persona_hub", "hub_no_embedding_near_duplicates", "-", True),
            ("persona_hub", "hub_no_near_duplicates", "-", True),
            ("persona_hub", "hub_no_pii", "-", True),
            ("persona_hub", "hub_unique_ids", "-", True),
            ("synthetic_data", "samples_provenance", "math|1", True),
            ("synthetic_data", "samples_valid_rate", "math|1", False),
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


def test_incoming_sensor_fires_once_per_change():
    import json

    from dagster import build_sensor_context

    from personahub_assets.automation import INCOMING_DIR, incoming_files_sensor

    result = incoming_files_sensor(build_sensor_context())
    assert "no supported files" in result.skip_message
    INCOMING_DIR.mkdir(parents=True, exist_ok=True)
    (INCOMING_DIR / "drop.jsonl").write_text(json.dumps({"text": "hello"}) + "\n")
    first = incoming_files_sensor(build_sensor_context())
    assert [r.partition_key for r in first.run_requests] == ["0", "1"]
    assert first.run_requests[0].run_config["ops"]["web_documents"]["config"]["source"] == str(
        INCOMING_DIR)
    again = incoming_files_sensor(build_sensor_context(cursor=first.cursor))
    assert again.skip_message == "no new or changed files"
    (INCOMING_DIR / "more.jsonl").write_text(json.dumps({"text": "more"}) + "\n")
    changed = incoming_files_sensor(build_sensor_context(cursor=first.cursor))
    assert changed.cursor != first.cursor and len(changed.run_requests) == 2


def test_a_backfill_run_can_carry_several_synthesis_partitions(tmp_path):
    """The backfill policy hands one run a range of partitions; each is written and
    materialized separately."""
    from dagster import Definitions

    from personahub_assets.automation import synthesis_job

    resources = {"warehouse": WarehouseResource(path=str(tmp_path / "w.duckdb")),
                 "embeddings": EmbeddingsResource(),
                 "llm": LLMResource(cache_path=str(tmp_path / "c.duckdb"))}
    defs = Definitions(assets=ASSETS, jobs=[synthesis_job], resources=resources)
    with instance_for_test() as instance:
        assert materialize(ASSETS, selection=["persona_hub"], instance=instance,
                           resources=resources).success
        result = defs.resolve_job_def("synthesis_job").execute_in_process(
            instance=instance, tags={"dagster/asset_partition_range_start": "math|0",
                                     "dagster/asset_partition_range_end": "reasoning|1"})
        assert result.success
        keys = sorted(m.partition for m in result.get_asset_materialization_events())
        assert keys == ["math|0", "math|1", "reasoning|0", "reasoning|1"]
        meta = result.get_asset_materialization_events()[0].materialization.metadata
        assert meta["partitions_in_run"].value == 4
