"""Crash matrix, concurrent runs and idempotency: nothing lost, nothing half-written,
nothing paid twice."""

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from personahub_assets.lib.faults import ENV
from personahub_assets.lib.tables import TABLES
from personahub_assets.resources.warehouse import WarehouseResource

SAMPLE = Path(__file__).resolve().parents[1] / "data" / "sample" / "web_documents.jsonl"

# Runs one stage in a child process (so it can be SIGKILLed) and prints nothing.
CHILD = textwrap.dedent("""
    import json, sys
    from dagster import MultiPartitionKey, materialize
    from personahub_assets.definitions import ASSETS
    from personahub_assets.resources.embeddings import EmbeddingsResource
    from personahub_assets.resources.llm import LLMResource
    from personahub_assets.resources.warehouse import WarehouseResource
    tmp, selection, key = sys.argv[1], sys.argv[2].split(","), sys.argv[3]
    if "|" in key:
        key = MultiPartitionKey(dict(zip(("domain", "shard"), key.split("|"))))
    ops = {"web_documents": {"config": {"source": tmp + "/corpus.jsonl"}},
           "synthetic_data": {"config": {"max_personas": 2}},
           "dataset_export": {"config": {"exports_dir": tmp + "/exports"}}}
    result = materialize(
        ASSETS, selection=selection, partition_key=None if key == "-" else key,
        resources={"warehouse": WarehouseResource(path=tmp + "/w.duckdb"),
                   "embeddings": EmbeddingsResource(),
                   "llm": LLMResource(cache_path=tmp + "/c.duckdb")},
        run_config={"ops": {k: v for k, v in ops.items() if k in selection}})
    sys.exit(0 if result.success else 3)
""")

COMMIT = "warehouse_before_commit"
STAGES = [  # (selection, partition key, where the kill happens)
    ("web_documents", "0", COMMIT), ("web_documents", "1", COMMIT),
    ("text_personas", "0", COMMIT), ("text_personas", "1", COMMIT),
    ("relation_personas", "0", COMMIT), ("relation_personas", "1", COMMIT),
    ("persona_hub", "-", COMMIT),
    ("synthetic_data", "knowledge|0", COMMIT), ("synthetic_data", "knowledge|1", COMMIT),
    ("dataset_export", "knowledge", "export_before_rename"),
]


def _run(tmp: Path, selection: str, key: str, fault: str | None = None) -> int:
    env = {**os.environ}
    env.pop(ENV, None)
    if fault:
        env[ENV] = fault
    return subprocess.run([sys.executable, "-c", CHILD, str(tmp), selection, key], env=env,
                          capture_output=True, timeout=600).returncode


def _snapshot(tmp: Path) -> dict[str, list]:
    with WarehouseResource(path=str(tmp / "w.duckdb")).session() as conn:
        return {t: sorted(conn.execute(f'SELECT * FROM "{t}"').fetchall(), key=repr)
                for t in TABLES}


def _corpus(tmp: Path) -> None:
    (tmp / "corpus.jsonl").write_text("\n".join(SAMPLE.read_text().splitlines()[:6]) + "\n")


@pytest.mark.model
def test_sigkill_inside_every_partition_write_loses_nothing(tmp_path):
    """For each stage: kill the run between its DELETE and its COMMIT, check the partition
    kept its old rows, re-run, and end exactly where an uninterrupted run ends."""
    reference, crashed = tmp_path / "reference", tmp_path / "crashed"
    for d in (reference, crashed):
        d.mkdir()
        _corpus(d)
    outcomes = []
    for selection, key, fault in STAGES:
        assert _run(reference, selection, key) == 0, (selection, key)
        before = _snapshot(crashed)
        code = _run(crashed, selection, key, fault=fault)
        outcomes.append((selection, key, code))
        assert code == -9, f"{selection}[{key}] was not killed (exit {code})"
        assert _snapshot(crashed) == before, f"{selection}[{key}] left a partial write"
        if selection == "dataset_export":  # killed before the rename: no file at the real path
            assert not (crashed / "exports/knowledge/knowledge.jsonl").exists()
        assert _run(crashed, selection, key) == 0
    assert _snapshot(crashed) == _snapshot(reference)
    knowledge = [json.loads(line) for line in
                 (crashed / "exports/knowledge/knowledge.jsonl").read_text().splitlines()]
    assert len(knowledge) == sum(1 for r in _snapshot(crashed)["synthetic_samples"]
                                 if r[1] == "knowledge" and r[9])
    (tmp_path / "crash_matrix.json").write_text(json.dumps(outcomes))


def test_concurrent_runs_on_different_partitions_share_the_warehouse(tmp_path):
    """Two runs, each in its own process, write different shards of the same tables at once."""
    _corpus(tmp_path)
    procs = [subprocess.Popen([sys.executable, "-c", CHILD, str(tmp_path), "web_documents",
                               shard], stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
             for shard in ("0", "1")]
    codes = [p.wait(300) for p in procs]
    assert codes == [0, 0], [p.stderr.read()[-2000:] for p in procs]
    wh = WarehouseResource(path=str(tmp_path / "w.duckdb"))
    assert wh.scalar("SELECT count(*) FROM documents") + wh.scalar(
        "SELECT count(*) FROM rejected_documents") == 6
    assert wh.scalar("SELECT count(DISTINCT shard) FROM documents") == 2


_text = st.text(alphabet=st.characters(codec="utf-8", exclude_categories=("Cs",)),
                max_size=400)
_record = st.fixed_dictionaries({"url": st.none() | st.text(max_size=20),
                                 "text": _text | st.just("A sentence about gardens. " * 12)})


@settings(max_examples=15, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(records=st.lists(_record, max_size=8), shard=st.sampled_from(["0", "1"]))
def test_materializing_a_partition_twice_equals_once(tmp_path_factory, records, shard):
    from dagster import materialize

    from personahub_assets.definitions import ASSETS
    from personahub_assets.resources.embeddings import EmbeddingsResource
    from personahub_assets.resources.llm import LLMResource

    tmp = tmp_path_factory.mktemp("idem")
    (tmp / "corpus.jsonl").write_text("".join(json.dumps(r) + "\n" for r in records))
    resources = {"warehouse": WarehouseResource(path=str(tmp / "w.duckdb")),
                 "embeddings": EmbeddingsResource(),
                 "llm": LLMResource(cache_path=str(tmp / "c.duckdb"))}
    config = {"ops": {"web_documents": {"config": {"source": str(tmp / "corpus.jsonl")}}}}
    snapshots = []
    for _ in range(2):
        assert materialize(ASSETS, selection=["web_documents"], partition_key=shard,
                           resources=resources, run_config=config).success
        snapshots.append(_snapshot(tmp))
    assert snapshots[0] == snapshots[1]
