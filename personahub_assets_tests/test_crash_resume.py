"""Kill a synthesis materialization mid-batch (SIGKILL), re-run it, and count model calls."""

import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest
from dagster import MultiPartitionKey, instance_for_test, materialize

from personahub_assets.definitions import ASSETS
from personahub_assets.lib.common.ids import persona_id
from personahub_assets.lib.common.tables import to_arrow
from personahub_assets.resources.duckdb_session import locked_connection
from personahub_assets.resources.embeddings import EmbeddingsResource
from personahub_assets.resources.llm import LLMResource
from personahub_assets.resources.warehouse import WarehouseResource
from personahub_assets_tests.batch_helpers import empty_batch

pytestmark = pytest.mark.model
ROOT = Path(__file__).resolve().parents[1]

PERSONAS = [f"A {job} who lives in {town} and plans every week on paper."
            for job, town in [("potter", "Delft"), ("ranger", "Banff"), ("welder", "Gdansk"),
                              ("florist", "Nice"), ("pilot", "Tromso"), ("cobbler", "Fez"),
                              ("jeweller", "Jaipur"), ("tiler", "Seville")]]

CHILD = textwrap.dedent("""
    import sys
    from dagster import DagsterInstance, MultiPartitionKey, materialize
    from personahub_assets.definitions import ASSETS
    from personahub_assets.partitions import BATCHES
    from personahub_assets.resources.embeddings import EmbeddingsResource
    from personahub_assets.resources.llm import LLMResource
    from personahub_assets.resources.warehouse import WarehouseResource
    tmp, batch = sys.argv[1], sys.argv[2]
    instance = DagsterInstance.ephemeral()
    instance.add_dynamic_partitions(BATCHES, [batch])
    materialize(ASSETS, selection=["synthetic_data"], instance=instance,
                partition_key=MultiPartitionKey({"batch": batch, "domain": "knowledge"}),
                resources={"warehouse": WarehouseResource(path=tmp + "/w.duckdb"),
                           "embeddings": EmbeddingsResource(),
                           "llm": LLMResource(cache_path=tmp + "/cache.duckdb", chunk_size=1),
                           "judge_llm": LLMResource(cache_path=tmp + "/cache.duckdb",
                                                    chunk_size=1)},
                run_config={"ops": {"synthetic_data": {"config": {"max_personas": 0}}}})
""")


def _cached(tmp) -> int:
    if not (tmp / "cache.duckdb").exists():
        return 0
    with locked_connection(tmp / "cache.duckdb") as conn:
        tables = {r[0] for r in conn.execute("SELECT table_name FROM information_schema.tables")
                  .fetchall()}
        return conn.execute("SELECT count(*) FROM llm_cache").fetchone()[0] if (
            "llm_cache" in tables) else 0


def test_killed_run_resumes_without_repeating_finished_calls(tmp_path):
    wh = WarehouseResource(path=str(tmp_path / "w.duckdb"))
    with instance_for_test() as instance:
        batch = empty_batch(wh, instance)
        wh.replace_partition("persona_hub", {}, to_arrow("persona_hub", [
            {"persona_id": persona_id(p), "persona": p, "method": "text", "depth": 0,
             "batch": batch} for p in PERSONAS]))

        child = subprocess.Popen([sys.executable, "-c", CHILD, str(tmp_path), batch],
                                 stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                                 env={**os.environ}, cwd=ROOT)
        try:  # generous: two model calls take minutes on a busy two-core machine
            deadline = time.monotonic() + 900
            while _cached(tmp_path) < 2:
                assert child.poll() is None, "the run finished before it could be killed"
                assert time.monotonic() < deadline
                time.sleep(0.2)
        finally:
            child.send_signal(signal.SIGKILL)
            child.wait()
        finished = _cached(tmp_path)
        assert 2 <= finished < len(PERSONAS)
        assert wh.scalar("SELECT count(*) FROM synthetic_samples") == 0  # nothing half-written

        result = materialize(
            ASSETS, selection=["synthetic_data"], instance=instance,
            partition_key=MultiPartitionKey({"batch": batch, "domain": "knowledge"}),
            resources={"warehouse": wh, "embeddings": EmbeddingsResource(),
                       "llm": LLMResource(cache_path=str(tmp_path / "cache.duckdb")),
                       "judge_llm": LLMResource(cache_path=str(tmp_path / "cache.duckdb"))},
            run_config={"ops": {"synthetic_data": {"config": {"max_personas": 0}}}})
    assert result.success
    meta = result.get_asset_materialization_events()[0].materialization.metadata
    assert meta["llm_cached"].value == finished
    assert meta["llm_calls"].value == len(PERSONAS) - finished
    assert wh.scalar("SELECT count(*) FROM synthetic_samples WHERE batch = ?",
                     [batch]) == len(PERSONAS)
