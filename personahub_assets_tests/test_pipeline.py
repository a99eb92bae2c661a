"""The whole asset graph materialized on the real embedded model, on a tiny corpus."""

import json
from pathlib import Path

import pyarrow.parquet as pq
import pytest
from dagster import DagsterInstance, MultiPartitionKey, materialize
from datasets import load_dataset, load_from_disk

from personahub_assets.definitions import ASSETS
from personahub_assets.lib.attributes import DOMAINS as DOMAIN_TAXONOMY
from personahub_assets.lib.cards import read_front_matter
from personahub_assets.lib.tables import TABLES
from personahub_assets.prompts import DOMAINS
from personahub_assets.resources.embeddings import EmbeddingsResource
from personahub_assets.resources.llm import LLMResource
from personahub_assets.resources.warehouse import WarehouseResource

pytestmark = pytest.mark.model

SAMPLE = Path(__file__).resolve().parents[1] / "data" / "sample" / "web_documents.jsonl"
SHARDS = ["0", "1"]
LLM_ASSETS = ("text_personas", "relation_personas", "synthetic_data", "math_verification",
              "persona_attributes", "instruction_responses", "sample_quality")


def _tiny_corpus(path: Path) -> None:
    lines = SAMPLE.read_text().splitlines()[:8:2]  # four documents from four fields
    first = json.loads(lines[0])
    lines += [
        '{"url": "https://broken.example", "text": "no closing brace"',
        json.dumps({"url": "https://short.example", "text": "Too short to use."}),
        json.dumps({"url": "https://copy.example", "text": "  " + first["text"] + "\n\n"}),
    ]
    path.write_text("\n".join(lines) + "\n")


def _materialize_all(tmp: Path, instance: DagsterInstance) -> dict[str, int]:
    """Run every asset and partition; return the number of fresh model calls per asset."""
    resources = {
        "warehouse": WarehouseResource(path=str(tmp / "warehouse.duckdb")),
        "embeddings": EmbeddingsResource(),
        "llm": LLMResource(cache_path=str(tmp / "cache.duckdb")),
    }
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

    for shard in SHARDS:
        run(["web_documents", "text_personas", "relation_personas"], shard,
            {"web_documents": {"source": str(tmp / "corpus.jsonl")}})
    run(["persona_hub"], None)
    for shard in SHARDS:
        run(["persona_attributes"], shard)
    for domain in DOMAINS:
        for shard in SHARDS:
            run(["synthetic_data"], MultiPartitionKey({"domain": domain, "shard": shard}),
                {"synthetic_data": {"max_personas": 1}})
    for shard in SHARDS:
        run(["math_verification"], shard)
        run(["instruction_responses"], shard)
    for domain in DOMAINS:
        for shard in SHARDS:
            run(["sample_quality"], MultiPartitionKey({"domain": domain, "shard": shard}))
    for domain in DOMAINS:
        run(["dataset_export"], domain,
            {"dataset_export": {"exports_dir": str(tmp / "exports")}})
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
                "instruction_responses"}


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
    per_domain = {r["domain"]: r["n"] for r in wh.rows(
        "SELECT domain, count(*) AS n FROM synthetic_samples GROUP BY domain")}
    assert per_domain == dict.fromkeys(DOMAINS, len(SHARDS))
    for domain in DOMAINS:
        valid = wh.scalar("SELECT count(*) FROM synthetic_samples s JOIN sample_quality q "
                          "USING (sample_id) WHERE s.domain = ? AND s.valid "
                          "AND NOT q.safety_flag", [domain])
        jsonl = tmp / "exports" / domain / f"{domain}.jsonl"
        rows = [json.loads(line) for line in jsonl.read_text().splitlines()]
        assert len(rows) == valid
        assert all(r["input persona"] and r["synthesized text"] for r in rows)
        assert pq.read_table(tmp / "exports" / domain / f"{domain}.parquet").num_rows == valid
        assert all(("verified" in r) == (domain == "math") for r in rows)
        if valid:
            dataset = load_from_disk(str(tmp / "exports" / domain / "hf_dataset"))
            assert dataset.num_rows == valid and "input persona" in dataset.column_names
            card = (tmp / "exports" / domain / "README.md").read_text()
            assert read_front_matter(card)["size_categories"] == ["n<1K"]
            loaded = load_dataset(str(tmp / "exports" / domain), split="train",
                                  cache_dir=str(tmp / "hf_cache"))
            assert loaded.num_rows == valid
            assert all(r["judge_score"] in (1, 2, 3, 4, 5, None) for r in rows)
            scored = sum(r["judge_score"] is not None for r in rows)
            assert scored >= 0.9 * len(rows)
            assert all(r["safety_flag"] is False for r in rows)
            if domain == "instruction":
                assert all(r["constraints"] and r["response"] is not None
                           and isinstance(r["constraints_passed"], bool) for r in rows)


def test_every_hub_persona_has_attributes(pipeline):
    tmp, *_ = pipeline
    wh = WarehouseResource(path=str(tmp / "warehouse.duckdb"))
    hub = wh.scalar("SELECT count(*) FROM persona_hub")
    rows = wh.rows("SELECT a.* FROM persona_attributes a JOIN persona_hub h USING (persona_id)")
    assert len(rows) == hub
    assert all(r["domain"] in DOMAIN_TAXONOMY and r["expertise"] and r["language"]
               for r in rows)
    assert sum(r["occupation"] is not None for r in rows) >= 0.9 * hub


def test_second_materialization_changes_nothing_and_calls_no_model(pipeline):
    _, first_calls, first, second_calls, second = pipeline
    assert sum(first_calls.values()) > 0
    assert second_calls == dict.fromkeys(LLM_ASSETS, 0)
    assert second == first
