"""Batches: how files become batches, the ledger, and ingestion that reads each record once."""

import json
import multiprocessing as mp

import pytest
from dagster import instance_for_test, materialize

from personahub_assets.automation import register_incoming, register_source
from personahub_assets.definitions import ASSETS
from personahub_assets.lib.ingest.batching import (
    DOCUMENTS,
    PERSONAS,
    BatchSpec,
    plan_batches,
    scan_incoming,
)
from personahub_assets.resources.embeddings import EmbeddingsResource
from personahub_assets.resources.llm import LLMResource
from personahub_assets.resources.warehouse import WarehouseResource, WarehouseVersionError
from personahub_assets_tests.batch_helpers import register

TEXT = ("The harbour master logs every vessel that enters the bay, its cargo and its crew, "
        "and keeps the tide tables for the pilots who guide the larger ships past the reef. ")


def _doc(i: int, extra: str = "") -> str:
    return json.dumps({"url": f"https://example.org/{i}{extra}",
                       "text": f"Entry {i}{extra}. " + TEXT * 3})


def _jsonl(path, lines):
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("\n".join(lines) + "\n")
    return path


def test_small_files_are_grouped_large_ones_sliced_persona_sets_kept_whole(tmp_path):
    incoming = tmp_path / "incoming"
    for i in range(5):
        _jsonl(incoming / "pages" / f"page{i}.jsonl", [_doc(i)])
    _jsonl(incoming / "big.jsonl", [_doc(100 + i) for i in range(25)])
    _jsonl(incoming / "personas" / "set.jsonl", [json.dumps({"persona": "A tide pilot."})])
    (incoming / "notes.docx").write_bytes(b"PK\x03\x04 not a format we read")
    (incoming / "half.jsonl.part").write_text("still being written")

    files = scan_incoming(incoming)
    assert [f.path.split("incoming/")[1] for f in files] == [
        "big.jsonl", "notes.docx", "pages/page0.jsonl", "pages/page1.jsonl",
        "pages/page2.jsonl", "pages/page3.jsonl", "pages/page4.jsonl", "personas/set.jsonl"]
    specs = plan_batches(files, max_records=10)
    kinds = [(s.kind, s.records, [(p.start, p.stop) for p in s.parts]) for s in specs]
    assert kinds == [
        (DOCUMENTS, 10, [(0, 10)]), (DOCUMENTS, 10, [(10, 20)]), (DOCUMENTS, 5, [(20, 25)]),
        (PERSONAS, 1, [(0, None)]),
        # the small files form one group (closed last); the unsupported file travels in it,
        # and ingestion rejects it with a reason
        (DOCUMENTS, 6, [(0, None)] * 6),
    ]
    keys = [s.key for s in specs]
    assert len(set(keys)) == len(keys)
    assert all("|" not in k and len(k) <= 16 for k in keys)
    # Stable: the same content plans the same keys; a changed file plans a new batch.
    assert [s.key for s in plan_batches(scan_incoming(incoming), 10)] == keys
    _jsonl(incoming / "pages" / "page4.jsonl", [_doc(4, "changed")])
    registered = {(f.path, f.content_hash) for f in files}
    again = plan_batches(scan_incoming(incoming), 10, registered)
    assert [[p.path.split("incoming/")[1] for p in s.parts] for s in again] == [
        ["pages/page4.jsonl"]]
    assert BatchSpec.from_json(again[0].to_json()) == again[0]


def test_registering_again_is_a_no_op_and_sequence_numbers_follow_registration(tmp_path):
    wh = WarehouseResource(path=str(tmp_path / "w.duckdb"))
    incoming = tmp_path / "incoming"
    _jsonl(incoming / "a.jsonl", [_doc(i) for i in range(3)])
    first = register_incoming(wh, incoming, max_records=10)
    assert [(b.seq, b.is_new) for b in first] == [(1, True)]
    assert register_incoming(wh, incoming, max_records=10) == []
    _jsonl(incoming / "b.jsonl", [_doc(i) for i in range(3, 6)])
    second = register_incoming(wh, incoming, max_records=10)
    assert [(b.seq, b.is_new) for b in second] == [(2, True)]
    # The same content registered again by another path is the same batch.
    again = register_source(wh, str(incoming / "b.jsonl"), max_records=10)
    assert [(b.key, b.seq, b.is_new) for b in again] == [(second[0].key, 2, False)]
    assert wh.scalar("SELECT count(*) FROM batches") == 2


def _register_in_process(path: str, source: str, start) -> list[int]:
    start.wait()
    wh = WarehouseResource(path=path)
    return [b.seq for b in register_source(wh, source, max_records=1)]


@pytest.mark.slow
def test_sequence_numbers_are_allocated_without_races(tmp_path):
    path = str(tmp_path / "w.duckdb")
    sources = []
    for n in range(4):
        sources.append(str(_jsonl(tmp_path / f"s{n}.jsonl", [_doc(10 * n + i)
                                                             for i in range(3)])))
    ctx = mp.get_context("spawn")
    start = ctx.Manager().Event()
    with ctx.Pool(4) as pool:
        results = [pool.apply_async(_register_in_process, (path, s, start)) for s in sources]
        start.set()
        seqs = [r.get(timeout=120) for r in results]
    every = sorted(s for got in seqs for s in got)
    assert every == list(range(1, 13))
    wh = WarehouseResource(path=path)
    assert wh.scalar("SELECT count(DISTINCT seq) FROM batches") == 12


def _resources(tmp_path):
    return {"warehouse": WarehouseResource(path=str(tmp_path / "w.duckdb")),
            "embeddings": EmbeddingsResource(),
            "llm": LLMResource(cache_path=str(tmp_path / "c.duckdb")),
            "judge_llm": LLMResource(cache_path=str(tmp_path / "c.duckdb"))}


def test_each_batch_reads_only_its_slice_and_duplicates_name_the_earlier_batch(tmp_path):
    lines = [_doc(i) for i in range(9)]
    lines[7] = lines[1]  # an exact copy, in the second slice, of a document of the first
    source = _jsonl(tmp_path / "corpus.jsonl", lines)
    resources = _resources(tmp_path)
    wh = resources["warehouse"]
    with instance_for_test() as instance:
        keys = register(wh, instance, source, max_records=5)
        assert len(keys) == 2
        reads = []
        for key in keys:
            result = materialize(ASSETS, selection=["web_documents"], partition_key=key,
                                 instance=instance, resources=resources)
            assert result.success
            [event] = result.get_asset_materialization_events()
            reads.append(event.materialization.metadata["records_read"].value)
        assert reads == [5, 4]  # each record read once, by its own batch
    rows = wh.rows("SELECT batch, record_no FROM documents ORDER BY record_no")
    assert [(r["batch"], r["record_no"]) for r in rows] == [
        (keys[0], 0), (keys[0], 1), (keys[0], 2), (keys[0], 3), (keys[0], 4),
        (keys[1], 5), (keys[1], 6), (keys[1], 8)]
    [dup] = wh.rows("SELECT batch, record_no, reason FROM rejected_documents")
    first_doc = wh.scalar("SELECT doc_id FROM documents WHERE record_no = 1")
    assert dup == {"batch": keys[1], "record_no": 7,
                   "reason": f"exact_duplicate_of:{keys[0]}/{first_doc}"}


def test_unsupported_and_unreadable_files_are_rejected_not_ignored(tmp_path):
    incoming = tmp_path / "incoming"
    _jsonl(incoming / "good.jsonl", [_doc(1)])
    (incoming / "slides.pptx").write_bytes(b"PK\x03\x04")
    (incoming / "table.parquet").write_bytes(b"not parquet at all")
    resources = _resources(tmp_path)
    wh = resources["warehouse"]
    with instance_for_test() as instance:
        # The broken Parquet file cannot be counted, so it is a batch of its own.
        keys = register(wh, instance, incoming, max_records=100)
        assert len(keys) == 2
        for key in keys:
            result = materialize(ASSETS, selection=["web_documents"], partition_key=key,
                                 instance=instance, resources=resources)
            assert result.success
            checks = result.get_asset_check_evaluations()
            assert checks and all(c.passed for c in checks)
    reasons = {r["source"]: r["reason"] for r in wh.rows(
        "SELECT source, reason FROM rejected_documents")}
    assert reasons["slides.pptx"] == "unsupported_format:.pptx"
    assert reasons["table.parquet"] == "broken_parquet"  # named by the Parquet reader
    assert wh.scalar("SELECT count(*) FROM documents") == 1


def test_a_persona_set_batch_finds_its_persona_field_and_a_documents_batch_imports_nothing(
        tmp_path):
    sets = tmp_path / "personas.jsonl"
    _jsonl(sets, [json.dumps({"input persona": "A ferry captain who knows every reef."}),
                  json.dumps({"input persona": "A marine biologist counting seagrass."})])
    resources = _resources(tmp_path)
    wh = resources["warehouse"]
    with instance_for_test() as instance:
        [pkey] = register(wh, instance, sets, kind=PERSONAS)
        [dkey] = register(wh, instance, _jsonl(tmp_path / "d.jsonl", [_doc(1)]))
        for key in (pkey, dkey):
            assert materialize(ASSETS, selection=["imported_personas", "web_documents"],
                               partition_key=key, instance=instance,
                               resources=resources).success
    assert {r["batch"]: r["n"] for r in wh.rows(
        "SELECT batch, count(*) AS n FROM personas GROUP BY batch")} == {pkey: 2}
    assert {r["batch"]: r["n"] for r in wh.rows(
        "SELECT batch, count(*) AS n FROM documents GROUP BY batch")} == {dkey: 1}


def test_a_warehouse_of_the_previous_version_names_the_rebuild_command(tmp_path):
    import duckdb

    path = tmp_path / "old.duckdb"
    with duckdb.connect(str(path)) as conn:
        conn.execute("CREATE TABLE documents (doc_id VARCHAR, shard INTEGER, text VARCHAR)")
    with pytest.raises(WarehouseVersionError, match="make rebuild"):
        WarehouseResource(path=str(path)).rows("SELECT 1")
