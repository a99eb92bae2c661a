"""The whole asset graph materialized on the real embedded model, on a tiny corpus."""

import json
from pathlib import Path

import pyarrow.parquet as pq
import pytest
from dagster import DagsterInstance, MultiPartitionKey, materialize
from datasets import load_dataset

from personahub_assets.definitions import ASSETS
from personahub_assets.lib.common.tables import TABLES
from personahub_assets.prompts import DOMAINS
from personahub_assets.resources.embeddings import EmbeddingsResource
from personahub_assets.resources.llm import LLMResource
from personahub_assets.resources.warehouse import WarehouseResource
from personahub_assets_tests.batch_helpers import register

pytestmark = pytest.mark.model

SAMPLE = Path(__file__).resolve().parents[1] / "data" / "sample" / "web_documents.jsonl"
BATCH_RECORDS = 4  # the corpus's seven lines as two batches
LLM_ASSETS = ("text_personas", "relation_personas", "synthetic_data", "math_verification")


def _tiny_corpus(path: Path) -> None:
    """Seven lines, two batches: four documents from four fields and three bad lines, the
    last an exact copy (in the second batch) of a document of the first batch."""
    good = SAMPLE.read_text().splitlines()[:8:2]
    first = json.loads(good[0])
    lines = [
        good[0], good[1],
        '{"url": "https://broken.example", "text": "no closing brace"',
        good[2],
        json.dumps({"url": "https://short.example", "text": "Too short to use."}),
        good[3],
        json.dumps({"url": "https://copy.example", "text": "  " + first["text"] + "\n\n"}),
    ]
    path.write_text("\n".join(lines) + "\n")


def _materialize_all(tmp: Path, instance: DagsterInstance) -> dict[str, int]:
    """Register the corpus (a no-op the second time), run every asset on every partition;
    return the number of fresh model calls per asset."""
    resources = {
        "warehouse": WarehouseResource(path=str(tmp / "warehouse.duckdb")),
        "embeddings": EmbeddingsResource(),
        "llm": LLMResource(cache_path=str(tmp / "cache.duckdb")),
        "judge_llm": LLMResource(cache_path=str(tmp / "cache.duckdb")),
    }
    batches = register(resources["warehouse"], instance, tmp / "corpus.jsonl",
                       max_records=BATCH_RECORDS)
    assert len(batches) == 2
    calls = dict.fromkeys(LLM_ASSETS, 0)

    def run(selection, key, ops=None):
        result = materialize(ASSETS, selection=selection, partition_key=key, instance=instance,
                             resources=resources,
                             run_config={"ops": {k: {"config": v} for k, v in (ops or {}).items()}})
        assert result.success
        for ev in result.get_asset_check_evaluations():
            assert ev.passed or ev.severity.value == "WARN", (ev.check_name, key, ev.metadata)
        for mat in result.get_asset_materialization_events():
            name = mat.asset_key.to_user_string()
            if name in calls:
                calls[name] += mat.materialization.metadata["llm_calls"].value

    for batch in batches:
        run(["web_documents", "text_personas", "relation_personas"], batch)
    for batch in batches:
        run(["persona_hub"], batch)
    for domain in DOMAINS:
        for batch in batches:
            run(["synthetic_data"], MultiPartitionKey({"batch": batch, "domain": domain}),
                {"synthetic_data": {"max_personas": 1}})
    for batch in batches:
        run(["math_verification"], batch)
    for batch in batches:  # every domain's file of the batch
        run(["dataset_export"], batch, {"dataset_export": {"exports_dir": str(tmp / "exports")}})
    return calls


def _snapshot(tmp: Path) -> dict[str, list[tuple]]:
    wh = WarehouseResource(path=str(tmp / "warehouse.duckdb"))
    with wh.session() as conn:
        return {t: sorted(conn.execute(f'SELECT * FROM "{t}"').fetchall(), key=repr)
                for t in TABLES}


@pytest.fixture(scope="module")
def pipeline(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("pipeline")
    _tiny_corpus(tmp / "corpus.jsonl")
    instance = DagsterInstance.ephemeral()
    first_calls = _materialize_all(tmp, instance)
    first = _snapshot(tmp)
    second_calls = _materialize_all(tmp, instance)
    second = _snapshot(tmp)
    return tmp, first_calls, first, second_calls, second


# Filled only when something is rejected or duplicated (test_curation plants duplicates), or
# when the tiny run happens to produce a valid math problem (test_verification covers it).
MAY_BE_EMPTY = {"rejected_personas", "persona_dedup_log", "math_solutions", "math_answers",
                # only after a retraction; IVF centroids only once the hub passes 100k
                "retracted_files", "hub_index",
                # the quality assets are not part of this graph run (test_quality_assets)
                "persona_attributes", "instruction_responses", "sample_quality"}


def test_every_table_is_filled(pipeline):
    _, _, tables, _, _ = pipeline
    filled = {t: len(rows) > 0 for t, rows in tables.items() if t not in MAY_BE_EMPTY}
    assert filled == {t: True for t in TABLES if t not in MAY_BE_EMPTY}


def test_personas_are_accounted_through_curation(pipeline):
    _, _, tables, _, _ = pipeline
    assert len(tables["personas"]) == len(tables["persona_hub"]) + len(
        tables["persona_dedup_log"])


def test_bad_documents_are_rejected_with_their_reason(pipeline):
    tmp, *_ = pipeline
    wh = WarehouseResource(path=str(tmp / "warehouse.duckdb"))
    reasons = sorted(r["reason"].split(":")[0] for r in wh.rows(
        "SELECT reason FROM rejected_documents"))
    assert reasons == ["exact_duplicate_of", "malformed_json", "too_short"]
    assert wh.scalar("SELECT count(*) FROM documents") == 4
    # The copy in the second batch names the batch and document it repeats.
    first, second = [r["batch"] for r in wh.rows("SELECT batch FROM batches ORDER BY seq")]
    original = wh.scalar("SELECT doc_id FROM documents WHERE record_no = 0")
    assert wh.rows("SELECT batch, url, reason FROM rejected_documents WHERE reason LIKE "
                   "'exact_duplicate_of:%'") == [{
                       "batch": second, "url": "https://copy.example",
                       "reason": f"exact_duplicate_of:{first}/{original}"}]
    assert {r["batch"]: r["n"] for r in wh.rows(
        "SELECT batch, count(*) AS n FROM documents GROUP BY batch")} == {first: 3, second: 1}


def test_generated_rows_carry_provenance(pipeline):
    tmp, *_ = pipeline
    wh = WarehouseResource(path=str(tmp / "warehouse.duckdb"))
    for table in ("personas", "synthetic_samples", "persona_hub"):
        rows = wh.rows(f"SELECT backend, model, template, template_version, sampling_params "
                       f"FROM {table}")
        assert rows and all(all(v for v in r.values()) for r in rows), table
        assert {r["backend"] for r in rows} == {"llamacpp"}
        assert all(r["model"].endswith(".gguf") for r in rows)
    lineage = wh.rows(
        "SELECT c.relation, EXISTS (SELECT 1 FROM personas p WHERE p.persona_id = "
        "c.parent_persona_id AND p.depth = c.depth - 1 AND p.doc_id = c.doc_id) AS has_parent "
        "FROM personas c WHERE c.method = 'relation'")
    assert lineage and all(r["has_parent"] and r["relation"] for r in lineage)


def test_every_domain_has_samples_and_exports(pipeline):
    tmp, *_ = pipeline
    wh = WarehouseResource(path=str(tmp / "warehouse.duckdb"))
    batches = [r["batch"] for r in wh.rows("SELECT batch FROM batches ORDER BY seq")]
    curated = {r["batch"] for r in wh.rows("SELECT DISTINCT batch FROM persona_hub")}
    assert curated == set(batches)
    per_domain = {r["domain"]: r["n"] for r in wh.rows(
        "SELECT domain, count(*) AS n FROM synthetic_samples GROUP BY domain")}
    assert per_domain == dict.fromkeys(DOMAINS, len(batches))  # one persona per batch
    for domain in DOMAINS:
        folder = tmp / "exports" / domain
        total = 0
        for batch in batches:
            valid = wh.scalar("SELECT count(*) FROM synthetic_samples WHERE domain = ? AND "
                              "batch = ? AND valid", [domain, batch])
            total += valid
            jsonl, parquet = folder / f"{batch}.jsonl", folder / f"{batch}.parquet"
            if not valid:  # a batch with nothing valid leaves no file behind
                assert not jsonl.exists() and not parquet.exists()
                continue
            rows = [json.loads(line) for line in jsonl.read_text().splitlines()]
            assert len(rows) == valid and {r["batch"] for r in rows} == {batch}
            assert all(r["input persona"] and r["synthesized text"] for r in rows)
            assert pq.read_table(parquet).num_rows == valid
            assert all(("verified" in r) == (domain == "math") for r in rows)
        if total:  # the domain's folder is one dataset that grows by batch
            dataset = load_dataset("parquet", data_files=str(folder / "*.parquet"),
                                   split="train", cache_dir=str(tmp / "hf-cache"))
            assert dataset.num_rows == total and "input persona" in dataset.column_names


def test_second_materialization_changes_nothing_and_calls_no_model(pipeline):
    _, first_calls, first, second_calls, second = pipeline
    assert sum(first_calls.values()) > 0
    assert second_calls == dict.fromkeys(LLM_ASSETS, 0)
    assert second == first
