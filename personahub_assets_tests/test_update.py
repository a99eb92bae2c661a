"""The update driver: new data adds and never replaces, and automation carries it through."""

import json
from pathlib import Path

import pytest
from dagster import AssetKey, instance_for_test

from personahub_assets.automation import materialized_partitions, register_source
from personahub_assets.cli.update import run_update
from personahub_assets.definitions import ASSETS
from personahub_assets.lib.common.tables import TABLES
from personahub_assets.prompts import DOMAINS
from personahub_assets.resources.embeddings import EmbeddingsResource
from personahub_assets.resources.llm import LLMResource
from personahub_assets.resources.warehouse import WarehouseResource
from personahub_assets.settings import SETTINGS
from personahub_assets_tests.batch_helpers import add_partitions

SAMPLE = Path(__file__).resolve().parents[1] / "data" / "sample" / "web_documents.jsonl"
BATCH_TABLES = [t for t in TABLES if "batch" in TABLES[t].names and t != "batch_files"]


def _write(path: Path, lines: list[str]) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("\n".join(lines) + "\n")
    return path


def _snapshot(wh: WarehouseResource) -> dict[str, dict[str, set]]:
    """Every row of every batch table, by batch, compared by content."""
    out: dict[str, dict[str, set]] = {}
    with wh.session() as conn:
        for table in BATCH_TABLES:
            cur = conn.execute(f'SELECT * FROM "{table}"')
            names = [d[0] for d in cur.description]
            for row in cur.fetchall():
                batch = row[names.index("batch")]
                out.setdefault(table, {}).setdefault(batch, set()).add(repr(row))
    return out


def _llm_calls(tmp: Path) -> int:
    import duckdb

    with duckdb.connect(str(tmp / "cache.duckdb"), read_only=True) as conn:
        return conn.execute("SELECT count(*) FROM llm_cache").fetchone()[0]


@pytest.fixture(scope="module")
def world(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("update")
    lines = SAMPLE.read_text().splitlines()
    incoming = tmp / "incoming"
    _write(incoming / "a.jsonl", lines[0:2])
    _write(incoming / "nested" / "b.jsonl", lines[10:12])
    resources = {"warehouse": WarehouseResource(path=str(tmp / "warehouse.duckdb")),
                 "embeddings": EmbeddingsResource(),
                 "llm": LLMResource(cache_path=str(tmp / "cache.duckdb")),
                 "judge_llm": LLMResource(cache_path=str(tmp / "cache.duckdb"))}
    with instance_for_test() as instance:
        yield {"tmp": tmp, "incoming": incoming, "lines": lines, "resources": resources,
               "instance": instance, "wh": resources["warehouse"]}


def _update(world, **kwargs):
    return run_update(ASSETS, world["resources"], world["instance"],
                      incoming=world["incoming"], max_records=2, **kwargs)


@pytest.mark.model
def test_new_data_adds_never_replaces_and_flows_to_the_exports(world):
    wh, tmp = world["wh"], world["tmp"]
    first = _update(world)
    assert [b.seq for b in first.registered] == [1, 2] and not first.failed
    before = _snapshot(wh)
    assert set(before["documents"]) == {b.key for b in first.registered}

    # A third file: only it is ingested, and everything before it stays as it was.
    _write(world["incoming"] / "c.jsonl", world["lines"][20:22])
    second = _update(world)
    [new] = [b.key for b in second.registered]
    assert not second.failed and second.runs
    assert all(str(r.partition).split("|")[0] == new for r in second.runs)
    after = _snapshot(wh)
    for table, by_batch in before.items():
        for batch, rows in by_batch.items():
            assert after[table][batch] == rows, (table, batch)
    assert new in after["documents"] and new in after["synthetic_samples"]
    exported = {d: wh.scalar("SELECT count(*) FROM synthetic_samples WHERE batch = ? AND "
                             "domain = ? AND valid", [new, d]) for d in DOMAINS}
    for domain, n in exported.items():
        path = SETTINGS.exports_dir / domain / f"{new}.jsonl"
        if n:
            assert sum(1 for _ in path.open()) == n
    assert sum(exported.values()) > 0

    # Nothing new: no run, no model call.
    calls = _llm_calls(tmp)
    idle = _update(world)
    assert idle.registered == [] and idle.runs == [] and not idle.failed
    assert _llm_calls(tmp) == calls


@pytest.mark.model
def test_a_batch_registered_behind_the_drivers_back_is_picked_up(world):
    wh = world["wh"]
    source = _write(world["tmp"] / "elsewhere" / "d.jsonl", world["lines"][30:31])
    [batch] = register_source(wh, str(source))  # as the UI's register_batches job does
    add_partitions(world["instance"], [batch.key])
    report = _update(world, register=False)
    assert not report.failed
    assert {str(r.partition).split("|")[0] for r in report.runs} == {batch.key}
    assert wh.scalar("SELECT count(*) FROM documents WHERE batch = ?", [batch.key]) == 1


class LosingWarehouse(WarehouseResource):
    """Fault injection at the storage boundary: the write of one batch's personas loses a
    row, as a faulty disk or a buggy writer would, so that batch's accounting check fails."""

    lose_batch: str = ""

    def replace_partitions(self, writes, guards=()):
        lossy = []
        for table, where, rows in writes:
            if table == "personas" and where.get("batch") == self.lose_batch \
                    and hasattr(rows, "num_rows") and rows.num_rows:
                rows = rows.slice(1)
            lossy.append((table, where, rows))
        super().replace_partitions(lossy, guards)


def _persona_sets(folder: Path) -> list[Path]:
    sets = []
    for n, job in enumerate(("lighthouse keeper", "ferry engineer", "harbour pilot")):
        sets.append(_write(folder / "personas" / f"set{n}.jsonl", [json.dumps(
            {"persona": f"A {job} on a northern island who {verb} every {thing}."})
            for verb, thing in (("records", "storm"), ("repairs", "engine"),
                                ("studies", "chart"))]))
    return sets


@pytest.mark.slow
def test_a_failed_check_blocks_only_its_batch_and_a_failed_run_is_retried_then_reported(
        tmp_path):
    incoming = tmp_path / "incoming"
    _persona_sets(incoming)
    wh = LosingWarehouse(path=str(tmp_path / "w.duckdb"))
    resources = {"warehouse": wh, "embeddings": EmbeddingsResource(),
                 "llm": LLMResource(cache_path=str(tmp_path / "c.duckdb")),
                 "judge_llm": LLMResource(cache_path=str(tmp_path / "c.duckdb"))}
    from personahub_assets.automation import register_incoming

    batches = [b.key for b in register_incoming(wh, incoming)]
    assert len(batches) == 3
    bad = batches[1]
    lossy = LosingWarehouse(path=wh.path, lose_batch=bad)
    resources["warehouse"] = lossy
    with instance_for_test() as instance:
        # A partition key added by hand in the UI, with no batch behind it: its runs fail.
        add_partitions(instance, ["d-000000000000"])
        report = run_update(ASSETS, resources, instance, select=["persona_hub"],
                            incoming=incoming, max_retries=1)
        curated = materialized_partitions(instance, AssetKey("persona_hub"))
        assert curated == {batches[0], batches[2]}  # the other batches flowed past curation
        # Both failed runs were retried once (max_retries=1), then reported: the bare key's
        # (no batch behind it) and the bad batch's (its blocking accounting check failed).
        assert {r.partition: r.attempts for r in report.failed} == {"d-000000000000": 2,
                                                                     bad: 2}
        # Nothing ran past the failed check of the bad batch, and it is reported as skipped.
        assert bad in report.skipped["persona_hub"]
        assert "d-000000000000" in report.skipped["persona_hub"]
        # A second update requests nothing: failed partitions stay failed, visibly.
        again = run_update(ASSETS, resources, instance, select=["persona_hub"],
                           incoming=incoming)
        assert again.runs == []
    text = report.summary()
    assert "FAILED" in text and "skipped" in text
