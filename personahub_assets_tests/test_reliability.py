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

from personahub_assets.automation import register_source
from personahub_assets.lib.common.tables import TABLES
from personahub_assets.resources.warehouse import WarehouseResource
from personahub_assets.settings import FAULT_ENV as ENV

ROOT = Path(__file__).resolve().parents[1]
SAMPLE = ROOT / "data" / "sample" / "web_documents.jsonl"

# Runs one stage in a child process (so it can be SIGKILLed) and prints nothing. Its
# instance knows every batch the warehouse registered, as the UI's instance would.
CHILD = textwrap.dedent("""
    import sys
    from dagster import DagsterInstance, MultiPartitionKey, materialize
    from personahub_assets.definitions import ASSETS
    from personahub_assets.partitions import BATCHES
    from personahub_assets.resources.embeddings import EmbeddingsResource
    from personahub_assets.resources.llm import LLMResource
    from personahub_assets.resources.warehouse import WarehouseResource
    tmp, selection, key = sys.argv[1], sys.argv[2].split(","), sys.argv[3]
    if "|" in key:
        key = MultiPartitionKey(dict(zip(("batch", "domain"), key.split("|"))))
    warehouse = WarehouseResource(path=tmp + "/w.duckdb")
    instance = DagsterInstance.ephemeral()
    instance.add_dynamic_partitions(BATCHES, [r["batch"] for r in warehouse.rows(
        "SELECT batch FROM batches ORDER BY seq")])
    ops = {"synthetic_data": {"config": {"max_personas": 2}},
           "dataset_export": {"config": {"exports_dir": tmp + "/exports"}}}
    result = materialize(
        ASSETS, selection=selection, partition_key=key, instance=instance,
        resources={"warehouse": warehouse, "embeddings": EmbeddingsResource(),
                   "llm": LLMResource(cache_path=tmp + "/c.duckdb"),
                   "judge_llm": LLMResource(cache_path=tmp + "/c.duckdb")},
        run_config={"ops": {k: v for k, v in ops.items() if k in selection}})
    sys.exit(0 if result.success else 3)
""")

COMMIT = "warehouse_before_commit"
EXPORT = "export_before_rename"
# The registration tables hold the folder the corpus was registered from, which differs
# between two folders, and the hub ledger holds when each batch was curated; every other
# table a stage writes is compared across them (the ledger's counts are the hub_accounted
# check's business).
LEDGER = {"batches", "batch_files", "hub_ledger"}


def _stages(batches: list[str]) -> list[tuple[str, str, str]]:
    """(selection, partition key, where the kill happens), in graph order, for every batch."""
    stages = []
    for asset in ("web_documents", "text_personas", "relation_personas", "persona_hub"):
        stages += [(asset, b, COMMIT) for b in batches]
    stages += [("synthetic_data", f"{b}|knowledge", COMMIT) for b in batches]
    stages += [("dataset_export", b, EXPORT) for b in batches]
    return stages


def _run(tmp: Path, selection: str, key: str, fault: str | None = None) -> int:
    env = {**os.environ}
    env.pop(ENV, None)
    if fault:
        env[ENV] = fault
    return subprocess.run([sys.executable, "-c", CHILD, str(tmp), selection, key], env=env,
                          capture_output=True, timeout=600, cwd=ROOT).returncode


def _snapshot(tmp: Path, skip=frozenset()) -> dict[str, list]:
    with WarehouseResource(path=str(tmp / "w.duckdb")).session() as conn:
        return {t: sorted(conn.execute(f'SELECT * FROM "{t}"').fetchall(), key=repr)
                for t in TABLES if t not in skip}


def _corpus(tmp: Path, max_records: int = 3) -> list[str]:
    """The first six sample documents, registered as batches of ``max_records``."""
    (tmp / "corpus.jsonl").write_text("\n".join(SAMPLE.read_text().splitlines()[:6]) + "\n")
    warehouse = WarehouseResource(path=str(tmp / "w.duckdb"))
    return [b.key for b in register_source(warehouse, str(tmp / "corpus.jsonl"),
                                           max_records=max_records)]


def _valid(tmp: Path, batch: str, domain: str) -> int:
    return WarehouseResource(path=str(tmp / "w.duckdb")).scalar(
        "SELECT count(*) FROM synthetic_samples WHERE batch = ? AND domain = ? AND valid",
        [batch, domain])


@pytest.mark.model
def test_sigkill_inside_every_partition_write_loses_nothing(tmp_path):
    """For each stage and batch: kill the run between its DELETE and its COMMIT, check the
    partition kept its old rows, re-run, and end exactly where an uninterrupted run ends."""
    reference, crashed = tmp_path / "reference", tmp_path / "crashed"
    batches = []
    for d in (reference, crashed):
        d.mkdir()
        batches.append(_corpus(d))
    assert batches[0] == batches[1] and len(batches[0]) == 2  # keys follow content only
    outcomes = []
    for selection, key, fault in _stages(batches[0]):
        assert _run(reference, selection, key) == 0, (selection, key)
        batch = key.split("|")[0]
        # An export with no valid row writes no file, so it never reaches the rename.
        kill = fault != EXPORT or _valid(reference, batch, "knowledge") > 0
        before = _snapshot(crashed)
        code = _run(crashed, selection, key, fault=fault)
        outcomes.append((selection, key, code))
        if not kill:
            assert code == 0, f"{selection}[{key}] failed (exit {code})"
            continue
        assert code == -9, f"{selection}[{key}] was not killed (exit {code})"
        assert _snapshot(crashed) == before, f"{selection}[{key}] left a partial write"
        if selection == "dataset_export":  # killed before the rename: no file at the real path
            assert not (crashed / "exports" / "knowledge" / f"{batch}.jsonl").exists()
        assert _run(crashed, selection, key) == 0
    assert _snapshot(crashed, LEDGER) == _snapshot(reference, LEDGER)
    exported = [b for b in batches[0] if _valid(crashed, b, "knowledge")]
    assert exported, "no knowledge sample was valid, so no export was killed"
    for batch in exported:
        knowledge = [json.loads(line) for line in (
            crashed / "exports" / "knowledge" / f"{batch}.jsonl").read_text().splitlines()]
        assert len(knowledge) == _valid(crashed, batch, "knowledge")
    (tmp_path / "crash_matrix.json").write_text(json.dumps(outcomes))


@pytest.mark.slow
def test_concurrent_runs_on_different_partitions_share_the_warehouse(tmp_path):
    """Two runs, each in its own process, write different batches of the same tables at once."""
    batches = _corpus(tmp_path)
    procs = [subprocess.Popen([sys.executable, "-c", CHILD, str(tmp_path), "web_documents",
                               batch], stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
                              cwd=ROOT)
             for batch in batches]
    codes = [p.wait(300) for p in procs]
    assert codes == [0, 0], [p.stderr.read()[-2000:] for p in procs]
    wh = WarehouseResource(path=str(tmp_path / "w.duckdb"))
    assert wh.scalar("SELECT count(*) FROM documents") + wh.scalar(
        "SELECT count(*) FROM rejected_documents") == 6
    assert wh.scalar("SELECT count(DISTINCT batch) FROM documents") == 2


_text = st.text(alphabet=st.characters(codec="utf-8", exclude_categories=("Cs",)),
                max_size=400)
_record = st.fixed_dictionaries({"url": st.none() | st.text(max_size=20),
                                 "text": _text | st.just("A sentence about gardens. " * 12)})


@pytest.mark.slow
@settings(max_examples=15, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(records=st.lists(_record, max_size=8), which=st.sampled_from([0, 1]))
def test_materializing_a_partition_twice_equals_once(tmp_path_factory, records, which):
    from dagster import instance_for_test, materialize

    from personahub_assets.definitions import ASSETS
    from personahub_assets.resources.embeddings import EmbeddingsResource
    from personahub_assets.resources.llm import LLMResource
    from personahub_assets_tests.batch_helpers import register

    tmp = tmp_path_factory.mktemp("idem")
    (tmp / "corpus.jsonl").write_text("".join(json.dumps(r) + "\n" for r in records))
    resources = {"warehouse": WarehouseResource(path=str(tmp / "w.duckdb")),
                 "embeddings": EmbeddingsResource(),
                 "llm": LLMResource(cache_path=str(tmp / "c.duckdb")),
                 "judge_llm": LLMResource(cache_path=str(tmp / "c.duckdb"))}
    snapshots = []
    with instance_for_test() as instance:
        batches = register(resources["warehouse"], instance, tmp / "corpus.jsonl",
                           max_records=4)
        batch = batches[min(which, len(batches) - 1)]
        for _ in range(2):
            assert materialize(ASSETS, selection=["web_documents"], partition_key=batch,
                               instance=instance, resources=resources).success
            snapshots.append(_snapshot(tmp))
    assert snapshots[0] == snapshots[1]
