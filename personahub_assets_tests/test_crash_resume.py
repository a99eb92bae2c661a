"""Kill a synthesis materialization mid-batch (SIGKILL), re-run it, and count model calls."""

import os
import signal
import subprocess
import sys
import textwrap
import time

import pytest
from dagster import MultiPartitionKey, materialize

from personahub_assets.definitions import ASSETS
from personahub_assets.lib.ids import persona_id, shard_of
from personahub_assets.lib.tables import to_arrow
from personahub_assets.resources.duckdb_session import locked_connection
from personahub_assets.resources.embeddings import EmbeddingsResource
from personahub_assets.resources.llm import LLMResource
from personahub_assets.resources.warehouse import WarehouseResource
from personahub_assets.settings import SETTINGS

pytestmark = pytest.mark.model

PERSONAS = [f"A {job} who lives in {town} and plans every week on paper."
            for job, town in [("potter", "Delft"), ("ranger", "Banff"), ("welder", "Gdansk"),
                              ("florist", "Nice"), ("pilot", "Tromso"), ("cobbler", "Fez"),
                              ("jeweller", "Jaipur"), ("tiler", "Seville")]]

CHILD = textwrap.dedent("""
    import sys
    from dagster import MultiPartitionKey, materialize
    from personahub_assets.definitions import ASSETS
    from personahub_assets.resources.embeddings import EmbeddingsResource
    from personahub_assets.resources.llm import LLMResource
    from personahub_assets.resources.warehouse import WarehouseResource
    tmp, shard = sys.argv[1], sys.argv[2]
    materialize(ASSETS, selection=["synthetic_data"],
                partition_key=MultiPartitionKey({"domain": "knowledge", "shard": shard}),
                resources={"warehouse": WarehouseResource(path=tmp + "/w.duckdb"),
                           "embeddings": EmbeddingsResource(),
                           "llm": LLMResource(cache_path=tmp + "/cache.duckdb", chunk_size=1)})
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
    by_shard = {s: [p for p in PERSONAS if shard_of(persona_id(p), SETTINGS.num_shards) == s]
                for s in range(SETTINGS.num_shards)}
    shard, mine = max(by_shard.items(), key=lambda kv: len(kv[1]))
    assert len(mine) >= 4
    wh.replace_partition("persona_hub", {}, to_arrow("persona_hub", [
        {"persona_id": persona_id(p), "persona": p, "method": "text", "depth": 0,
         "shard": shard_of(persona_id(p), SETTINGS.num_shards)} for p in PERSONAS]))

    child = subprocess.Popen([sys.executable, "-c", CHILD, str(tmp_path), str(shard)],
                             stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                             env={**os.environ})
    deadline = time.monotonic() + 180
    while _cached(tmp_path) < 2:
        assert child.poll() is None, "the run finished before it could be killed"
        assert time.monotonic() < deadline
        time.sleep(0.2)
    child.send_signal(signal.SIGKILL)
    child.wait()
    finished = _cached(tmp_path)
    assert 2 <= finished < len(mine)
    assert wh.scalar("SELECT count(*) FROM synthetic_samples") == 0  # nothing half-written

    result = materialize(
        ASSETS, selection=["synthetic_data"],
        partition_key=MultiPartitionKey({"domain": "knowledge", "shard": str(shard)}),
        resources={"warehouse": wh, "embeddings": EmbeddingsResource(),
                   "llm": LLMResource(cache_path=str(tmp_path / "cache.duckdb"))})
    assert result.success
    meta = result.get_asset_materialization_events()[0].materialization.metadata
    assert meta["llm_cached"].value == finished
    assert meta["llm_calls"].value == len(mine) - finished
    assert wh.scalar("SELECT count(*) FROM synthetic_samples") == len(mine)
