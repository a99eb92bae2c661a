"""persona_hub on planted duplicates: exact and near duplicates go to the log, not the hub."""

from pathlib import Path

from dagster import materialize

from personahub_assets.definitions import ASSETS
from personahub_assets.lib.ids import persona_id
from personahub_assets.lib.minhash import jaccard, word_set
from personahub_assets.lib.tables import to_arrow
from personahub_assets.resources.llm import LLMResource
from personahub_assets.resources.warehouse import WarehouseResource

BASE = ("A marine biologist who counts seagrass shoots along the Brittany coast every spring "
        "and trains volunteer divers to record them")

NEAR = jaccard(word_set(BASE), word_set(BASE + " carefully"))


def _persona(text: str, shard: int, method: str = "text", depth: int = 0) -> dict:
    return {"persona_id": persona_id(text), "shard": shard, "method": method, "persona": text,
            "doc_id": f"d{shard}", "depth": depth, "backend": "llamacpp", "model": "m.gguf",
            "template": "t", "template_version": "1", "sampling_params": "{}"}


def test_hub_drops_exact_and_near_duplicates_with_reasons(tmp_path):
    wh = WarehouseResource(path=str(tmp_path / "w.duckdb"))
    rows = [
        _persona(BASE, 0),
        _persona(BASE.upper() + ".", 1),  # same normalized text: exact duplicate
        _persona(BASE + " carefully", 1, method="relation", depth=1),  # Jaccard 20/21
        _persona("A bus driver in Nairobi who teaches chess to children on weekends", 0),
    ]
    wh.replace_partition("personas", {}, to_arrow("personas", rows))
    result = materialize(ASSETS, selection=["persona_hub"], resources={
        "warehouse": wh, "llm": LLMResource(cache_path=str(tmp_path / "c.duckdb"))})
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
    resources = {"warehouse": wh, "llm": LLMResource(cache_path=str(tmp_path / "c.duckdb"))}
    result = materialize(ASSETS, selection=["imported_personas", "persona_hub"],
                         resources=resources, run_config={"ops": {"imported_personas": {
                             "config": {"sources": [str(SAMPLE_PERSONAS)]}}}})
    assert result.success
    assert all(ev.passed for ev in result.get_asset_check_evaluations())
    lines = SAMPLE_PERSONAS.read_text().splitlines()
    assert wh.scalar("SELECT count(*) FROM personas WHERE method = 'import'") == len(lines) - 1
    assert wh.rows("SELECT reason FROM rejected_personas") == [{"reason": "too_short"}]
    assert wh.scalar("SELECT count(*) FROM persona_hub") == len(lines) - 2  # one exact copy
    assert wh.rows("SELECT stage FROM persona_dedup_log") == [{"stage": "exact"}]
    assert wh.scalar("SELECT count(DISTINCT backend || model) FROM persona_hub") == 1


def test_hub_filters_personal_data_and_non_personas(tmp_path):
    wh = WarehouseResource(path=str(tmp_path / "w.duckdb"))
    clean = "A ferry mechanic in Tromso who keeps a notebook of every engine he has rebuilt"
    rows = [_persona(clean, 0),
            _persona("A tutor who can be reached at tutor.anna@mail.example.com for lessons", 0),
            _persona("I am sorry, but I cannot describe a person from this text at all", 1),
            _persona("Chef", 1)]
    wh.replace_partition("personas", {}, to_arrow("personas", rows))
    result = materialize(ASSETS, selection=["persona_hub"], resources={
        "warehouse": wh, "llm": LLMResource(cache_path=str(tmp_path / "c.duckdb"))})
    assert result.success
    checks = {ev.check_name: ev.passed for ev in result.get_asset_check_evaluations()}
    assert checks["hub_no_pii"] and all(checks.values())
    assert [h["persona"] for h in wh.rows("SELECT persona FROM persona_hub")] == [clean]
    log = {r["stage"]: r["persona"] for r in wh.rows(
        "SELECT stage, persona FROM persona_dedup_log")}
    assert set(log) == {"filter:pii:email", "filter:refusal_or_instruction", "filter:length"}
    assert "mail.example.com" not in log["filter:pii:email"]  # the log keeps it redacted
