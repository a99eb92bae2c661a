"""persona_hub on planted duplicates: exact and near duplicates go to the log, not the hub."""

from pathlib import Path

import pytest
from dagster import DagsterInstance, EnvVar, materialize

from personahub_assets.definitions import ASSETS
from personahub_assets.lib.common.ids import persona_id
from personahub_assets.lib.common.tables import to_arrow
from personahub_assets.lib.curation.encoders import MiniLMEncoder
from personahub_assets.lib.curation.shingles import jaccard, word_set
from personahub_assets.resources.embeddings import EmbeddingsResource
from personahub_assets.resources.llm import LLMResource
from personahub_assets.resources.warehouse import WarehouseResource
from personahub_assets_tests.batch_helpers import empty_batch, register
from personahub_assets_tests.servers import embeddings_api

BASE = ("A marine biologist who counts seagrass shoots along the Brittany coast every spring "
        "and trains volunteer divers to record them")

NEAR = jaccard(word_set(BASE), word_set(BASE + " carefully"))


def _persona(text: str, doc: int, method: str = "text", depth: int = 0) -> dict:
    return {"persona_id": persona_id(text), "method": method, "persona": text,
            "doc_id": f"d{doc}", "depth": depth, "backend": "llamacpp", "model": "m.gguf",
            "template": "t", "template_version": "1", "sampling_params": "{}"}


def _curate(tmp_path, rows: list[dict], embeddings=None, **config):
    """The rows as one batch's personas, then persona_hub materialized for that batch."""
    wh = WarehouseResource(path=str(tmp_path / "w.duckdb"))
    with DagsterInstance.ephemeral() as instance:
        key = empty_batch(wh, instance)
        wh.replace_partition("personas", {}, to_arrow("personas", [
            {**r, "batch": key} for r in rows]))
        result = materialize(ASSETS, selection=["persona_hub"], partition_key=key,
                             instance=instance, resources={
                                 "warehouse": wh, "embeddings": embeddings or EmbeddingsResource(),
                                 "llm": LLMResource(cache_path=str(tmp_path / "c.duckdb")),
                                 "judge_llm": LLMResource(cache_path=str(tmp_path / "c.duckdb"))},
                             run_config={"ops": {"persona_hub": {"config": config}}})
    return wh, result


def test_hub_drops_exact_and_near_duplicates_with_reasons(tmp_path):
    rows = [
        _persona(BASE, 0),
        _persona(BASE.upper() + ".", 1),  # same normalized text: exact duplicate
        _persona(BASE + " carefully", 1, method="relation", depth=1),  # Jaccard 20/21
        _persona("A bus driver in Nairobi who teaches chess to children on weekends", 0),
    ]
    wh, result = _curate(tmp_path, rows)
    assert result.success
    assert all(ev.passed for ev in result.get_asset_check_evaluations())
    hub = wh.rows("SELECT persona FROM persona_hub ORDER BY persona")
    assert {h["persona"] for h in hub} == {rows[0]["persona"], rows[3]["persona"]}
    log = wh.rows("SELECT stage, duplicate_of, similarity, method FROM persona_dedup_log "
                  "ORDER BY stage")
    assert log == [
        {"stage": "exact", "duplicate_of": persona_id(BASE), "similarity": 1.0, "method": "text"},
        {"stage": "minhash", "duplicate_of": persona_id(BASE), "similarity": round(NEAR, 4),
         "method": "relation"},
    ]


SAMPLE_PERSONAS = Path(__file__).resolve().parents[1] / "data/sample/personas.jsonl"


def test_imported_persona_set_joins_the_hub(tmp_path):
    wh = WarehouseResource(path=str(tmp_path / "w.duckdb"))
    resources = {"warehouse": wh, "embeddings": EmbeddingsResource(),
                 "llm": LLMResource(cache_path=str(tmp_path / "c.duckdb")),
                 "judge_llm": LLMResource(cache_path=str(tmp_path / "c.duckdb"))}
    with DagsterInstance.ephemeral() as instance:
        [key] = register(wh, instance, SAMPLE_PERSONAS, kind="personas")
        result = materialize(ASSETS, selection=["imported_personas", "persona_hub"],
                             partition_key=key, instance=instance, resources=resources)
    assert result.success
    assert all(ev.passed for ev in result.get_asset_check_evaluations())
    lines = SAMPLE_PERSONAS.read_text().splitlines()
    assert wh.scalar("SELECT count(*) FROM personas WHERE method = 'import'") == len(lines) - 1
    assert wh.rows("SELECT reason FROM rejected_personas") == [{"reason": "too_short"}]
    assert wh.scalar("SELECT count(*) FROM persona_hub") == len(lines) - 2  # one exact copy
    assert wh.rows("SELECT stage FROM persona_dedup_log") == [{"stage": "exact"}]
    assert wh.scalar("SELECT count(DISTINCT backend || model) FROM persona_hub") == 1


def test_hub_filters_personal_data_and_non_personas(tmp_path):
    clean = "A ferry mechanic in Tromso who keeps a notebook of every engine he has rebuilt"
    rows = [_persona(clean, 0),
            _persona("A tutor who can be reached at tutor.anna@mail.example.com for lessons", 0),
            _persona("I am sorry, but I cannot describe a person from this text at all", 1),
            _persona("Chef", 1)]
    wh, result = _curate(tmp_path, rows)
    assert result.success
    checks = {ev.check_name: ev.passed for ev in result.get_asset_check_evaluations()}
    assert checks["hub_no_pii"] and all(checks.values())
    assert [h["persona"] for h in wh.rows("SELECT persona FROM persona_hub")] == [clean]
    log = {r["stage"]: r["persona"] for r in wh.rows(
        "SELECT stage, persona FROM persona_dedup_log")}
    assert set(log) == {"filter:pii:email", "filter:refusal_or_instruction", "filter:length"}
    assert "mail.example.com" not in log["filter:pii:email"]  # the log keeps it redacted


# Paraphrases that MinHash keeps (word Jaccard 0.73 and 0.69) but sentence embeddings catch.
CURATOR = ("A museum curator in Krakow who digitises medieval manuscripts for an online archive.",
           "A museum curator in Krakow who digitizes medieval manuscripts for the online archive.")
BEEKEEPER = ("A beekeeper in rural Kenya who teaches schoolchildren about pollinators.",
             "A beekeeper in rural Kenya who teaches school children about the pollinators.")
DRIVER = "A bus driver in Nairobi who teaches chess to children on weekends"


def _embedding_hub(tmp_path, embeddings: EmbeddingsResource, **config):
    rows = [_persona(t, i % 2) for i, t in enumerate([*CURATOR, *BEEKEEPER, DRIVER])]
    wh, result = _curate(tmp_path, rows, embeddings, **config)
    assert result.success
    checks = {ev.check_name: ev.passed for ev in result.get_asset_check_evaluations()}
    assert all(checks.values()), checks
    metadata = result.asset_materializations_for_node("persona_hub")[0].metadata
    return wh, {k: v.value for k, v in metadata.items()}


def _assert_one_of_each_pair_dropped(wh):
    hub = {r["persona"] for r in wh.rows("SELECT persona FROM persona_hub")}
    assert DRIVER in hub and len(hub) == 3
    assert len(hub & set(CURATOR)) == 1 and len(hub & set(BEEKEEPER)) == 1
    log = wh.rows("SELECT persona, stage, duplicate_of, similarity FROM persona_dedup_log")
    assert {e["stage"] for e in log} == {"embedding"} and len(log) == 2
    for entry in log:
        pair = CURATOR if entry["persona"] in CURATOR else BEEKEEPER
        (other,) = set(pair) - {entry["persona"]}
        assert entry["duplicate_of"] == persona_id(other)


def test_embedding_dedup_drops_paraphrases_that_minhash_keeps(tmp_path):
    wh, metadata = _embedding_hub(tmp_path, EmbeddingsResource())
    _assert_one_of_each_pair_dropped(wh)
    assert all(e["similarity"] >= 0.9 for e in wh.rows("SELECT similarity FROM persona_dedup_log"))
    assert metadata["near_duplicates"] == 0 and metadata["embedding_near_duplicates"] == 2
    assert metadata["embedding_encoder"] == "static"
    assert metadata["hub_size"] == 3 and metadata["kept"] == 3
    assert "](data:image/svg+xml;base64," in metadata["dedup_funnel"]  # a picture in the UI


def test_embedding_threshold_is_configurable_and_the_stage_can_be_switched_off(tmp_path):
    wh, metadata = _embedding_hub(tmp_path / "strict", EmbeddingsResource(),
                                  embedding_threshold=0.99)
    assert metadata["hub_size"] == 5 and metadata["embedding_near_duplicates"] == 0
    wh, metadata = _embedding_hub(tmp_path / "off", EmbeddingsResource(),
                                  embedding_dedup=False)
    assert metadata["hub_size"] == 5 and "embedding_encoder" not in metadata


@pytest.mark.model
def test_embedding_dedup_through_an_openai_compatible_server(tmp_path, monkeypatch):
    """The packaged MiniLM behind a real HTTP /v1/embeddings endpoint, key from the env."""
    monkeypatch.setenv("TEST_EMBEDDINGS_KEY", "sk-embed-test")
    with embeddings_api(MiniLMEncoder(), api_key="sk-embed-test") as (url, seen):
        wh, metadata = _embedding_hub(tmp_path, EmbeddingsResource(
            encoder="openai", base_url=url, model="all-MiniLM-L6-v2",
            api_key=EnvVar("TEST_EMBEDDINGS_KEY")))
    _assert_one_of_each_pair_dropped(wh)
    assert metadata["embedding_encoder"] == "openai:all-MiniLM-L6-v2"
    assert len(seen) == 1 and len(seen[0]["input"]) == 5  # one batch, not sent twice
    assert "sk-embed-test" not in str(metadata)
