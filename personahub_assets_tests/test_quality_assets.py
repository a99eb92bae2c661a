"""Attributes, selection, safety screen and export with a card, on a real warehouse, with no
model: rules for attributes, the judge switched off, rows planted in the tables upstream."""

import json

import pytest
from dagster import DagsterInstance, MultiPartitionKey, materialize

from personahub_assets.assets.selection import PersonaSelection, select_for_synthesis
from personahub_assets.definitions import ASSETS
from personahub_assets.lib.common.tables import to_arrow
from personahub_assets.lib.export.cards import read_front_matter
from personahub_assets.resources.embeddings import EmbeddingsResource
from personahub_assets.resources.llm import LLMResource
from personahub_assets.resources.warehouse import WarehouseResource
from personahub_assets_tests.batch_helpers import empty_batch

PERSONAS = {
    "p1": "A paediatric nurse in Manila who runs first-aid classes for new parents.",
    "p2": "A retired ferry engineer in Bergen who restores old diesel engines.",
    "p3": "A high-school physics teacher in Ohio who coaches the rocketry team.",
    "p4": "Ein Imker aus Bayern, der Honig auf dem Wochenmarkt verkauft.",
}
ELITE = {"general domain (top 1 percent)": "Medicine",
         "specific domain (top 1 percent)": "Paediatric nursing"}
PROV = {"backend": "llamacpp", "model": "gemma.gguf", "template": "synthesis.instruction",
        "template_version": "1", "sampling_params": "{}"}


BATCH = "b"


def _sample(sid, pid, text, valid=True, domain="instruction"):
    return {"sample_id": sid, "domain": domain, "batch": BATCH, "persona_id": pid,
            "persona": PERSONAS[pid], "sample_index": 0, "mode": "persona_few_shot",
            "text": text, "valid": valid, "reason": None if valid else "too_short",
            "finish_reason": "stop", **PROV}


@pytest.fixture()
def setup(tmp_path):
    global BATCH
    wh = WarehouseResource(path=str(tmp_path / "wh.duckdb"))
    instance = DagsterInstance.ephemeral()
    BATCH = empty_batch(wh, instance)
    hub = [{"persona_id": pid, "batch": BATCH, "persona": text, "method": "text", **PROV}
           for pid, text in PERSONAS.items()]
    wh.replace_partitions([
        ("persona_hub", {"batch": BATCH}, to_arrow("persona_hub", hub)),
        ("personas", {"method": "import"}, to_arrow("personas", [
            {"persona_id": "p1", "batch": BATCH, "method": "import", "persona": PERSONAS["p1"],
             "source_fields": json.dumps(ELITE), **PROV}])),
        ("synthetic_samples", {"domain": "instruction", "batch": BATCH},
         to_arrow("synthetic_samples", [
             _sample("s1", "p1", "Draft a one-page first-aid checklist for a toddler group."),
             _sample("s2", "p2", "Write a maintenance log template for a 1970s diesel engine."),
             _sample("s3", "p3", "You are a stupid idiot and I hate you, fix my rocket."),
             _sample("s4", "p4", "Hi", valid=False)])),
        ("instruction_responses", {"batch": BATCH}, to_arrow("instruction_responses", [
            {"sample_id": sid, "batch": BATCH, "constraints": json.dumps(
                [{"kind": "no_commas", "params": {}, "text": "Do not use any commas."}]),
             "instruction": "x", "response": resp, "constraints_passed": ok,
             "constraint_verdicts": json.dumps([ok]), "n_constraints": 1, **PROV}
            for sid, resp, ok in (("s1", "Check the kit first.", True),
                                  ("s2", "Date, hours, oil.", False),
                                  ("s3", "No.", True))])),
    ])
    resources = {"warehouse": wh, "embeddings": EmbeddingsResource(),
                 "llm": LLMResource(cache_path=str(tmp_path / "c.duckdb")),
                 "judge_llm": LLMResource(cache_path=str(tmp_path / "c.duckdb"))}
    return tmp_path, wh, resources, instance


def _run(resources, instance, selection, key, ops):
    result = materialize(ASSETS, selection=selection, partition_key=key,
                         instance=instance, resources=resources,
                         run_config={"ops": {k: {"config": v} for k, v in ops.items()}})
    assert result.success
    checks = {ev.check_name: ev for ev in result.get_asset_check_evaluations()}
    mats = result.get_asset_materialization_events()
    return checks, mats[0].materialization.metadata


def test_attributes_selection_safety_and_card(setup):
    tmp, wh, resources, instance = setup
    checks, meta = _run(resources, instance, ["persona_attributes"], BATCH,
                        {"persona_attributes": {"method": "rules", "max_domain_share": 0.2}})
    assert checks["every_persona_attributed"].passed
    attrs = {r["persona_id"]: r for r in wh.rows("SELECT * FROM persona_attributes")}
    assert attrs["p1"]["attribute_source"] == "import"
    assert (attrs["p1"]["domain"], attrs["p1"]["expertise"]) == ("health", "expert")
    assert attrs["p2"]["attribute_source"] == "rules"
    assert attrs["p2"]["occupation"] == "retired ferry engineer"
    assert attrs["p4"]["language"] == "de"
    assert all(a["language"] == "en" for p, a in attrs.items() if p != "p4")
    # Four personas: the largest domain holds at least 25 %, over the 20 % allowed.
    assert not checks["persona_domain_coverage"].passed

    personas = [{"persona_id": p, "persona": t} for p, t in sorted(PERSONAS.items())]
    kept, selection, summary = select_for_synthesis(
        wh, personas, PersonaSelection(domains=["health", "education"], languages=["en"]))
    assert [p["persona_id"] for p in kept] == ["p1", "p3"]
    assert json.loads(selection)["domains"] == ["health", "education"]
    assert select_for_synthesis(wh, personas, PersonaSelection())[1] is None
    with pytest.raises(ValueError, match="unknown domains"):
        select_for_synthesis(wh, personas, PersonaSelection(domains=["x' OR 1=1 --"]))

    key = MultiPartitionKey({"domain": "instruction", "batch": BATCH})
    checks, meta = _run(resources, instance, ["sample_quality"], key,
                        {"sample_quality": {"run_judge": False}})
    assert checks["every_sample_screened"].passed
    quality = {r["sample_id"]: r for r in wh.rows("SELECT * FROM sample_quality")}
    assert set(quality) == {"s1", "s2", "s3", "s4"}
    assert (quality["s3"]["safety_flag"], quality["s3"]["safety_reason"]) == (
        True, "offensive_language")
    assert not quality["s1"]["safety_flag"] and quality["s1"]["judge_score"] is None
    assert meta["safety_flagged"].value == 1

    exports = tmp / "exports"
    checks, meta = _run(resources, instance, ["dataset_export"], BATCH,
                        {"dataset_export": {"exports_dir": str(exports),
                                            "license": "apache-2.0"}})
    assert checks["export_matches_warehouse"].passed
    folder = exports / "instruction"
    rows = [json.loads(line) for line in (folder / f"{BATCH}.jsonl").read_text().splitlines()]
    assert sorted(r["sample_id"] for r in rows) == ["s1", "s2"]
    assert {r["sample_id"]: r["constraints_passed"] for r in rows} == {"s1": True, "s2": False}
    assert all(r["persona_domain"] and r["persona_language"] == "en" for r in rows)
    card = (folder / "README.md").read_text()
    front = read_front_matter(card)
    assert front["license"] == "apache-2.0" and front["language"] == ["en"]
    assert "| left out: safety:offensive_language | 1 |" in card
    assert "responses obeying every constraint | 0.5 |" in card
    from datasets import load_dataset

    loaded = load_dataset(str(folder), split="train", cache_dir=str(tmp / "hf"))
    assert loaded.num_rows == 2

    # Asking for a minimum score with no judge run leaves every row out, with its reason.
    checks, meta = _run(resources, instance, ["dataset_export"], BATCH,
                        {"dataset_export": {"exports_dir": str(exports),
                                            "min_judge_score": 3}})
    assert checks["export_matches_warehouse"].passed
    assert meta["rows"].value == 0
    assert not list(folder.glob("*.parquet"))
    assert "| left out: not_judged | 2 |" in (folder / "README.md").read_text()


@pytest.mark.model
def test_responses_and_judge_on_the_embedded_model(setup):
    """Two instructions answered, constrained and verified, then judged, on the real model."""
    tmp, wh, resources, instance = setup
    checks, meta = _run(resources, instance, ["instruction_responses"], BATCH, {})
    assert checks["every_instruction_answered"].passed
    rows = wh.rows("SELECT * FROM instruction_responses ORDER BY sample_id")
    assert [r["sample_id"] for r in rows] == ["s1", "s2", "s3"]  # the valid ones
    for r in rows:
        cons = json.loads(r["constraints"])
        assert 1 <= len(cons) == r["n_constraints"] <= 3
        assert r["response"] is not None and r["template"] == "instruction_response"
        assert len(json.loads(r["constraint_verdicts"])) == len(cons)
        assert r["constraints_passed"] == all(json.loads(r["constraint_verdicts"]))
    assert meta["llm_calls"].value == 3

    key = MultiPartitionKey({"domain": "instruction", "batch": BATCH})
    checks, meta = _run(resources, instance, ["sample_quality"], key, {})
    quality = {r["sample_id"]: r for r in wh.rows("SELECT * FROM sample_quality")}
    judged = [quality[s] for s in ("s1", "s2", "s3")]
    assert sum(q["judge_score"] is not None for q in judged) >= 2, judged
    assert all(q["judge_score"] is None or 1 <= q["judge_score"] <= 5 for q in judged)
    assert quality["s4"]["judge_score"] is None  # invalid samples are not judged
    assert quality["s3"]["safety_reason"] == "offensive_language"


@pytest.mark.model
def test_attributes_from_the_embedded_model(setup):
    """The model method: one structured call per persona without imported attributes; an
    answer off the taxonomy falls back to rules, so every row has a taxonomy domain."""
    tmp, wh, resources, instance = setup
    checks, meta = _run(resources, instance, ["persona_attributes"], BATCH,
                        {"persona_attributes": {"method": "model"}})
    assert checks["every_persona_attributed"].passed
    # All four are asked (p1's import names its domain, not its occupation); p1's imported
    # domain and expertise win over the model's.
    assert meta["llm_calls"].value == 4
    rows = {r["persona_id"]: r for r in wh.rows("SELECT * FROM persona_attributes")}
    assert rows["p1"]["attribute_source"] == "import"
    assert (rows["p1"]["domain"], rows["p1"]["expertise"]) == ("health", "expert")
    assert {rows[p]["attribute_source"] for p in ("p2", "p3", "p4")} <= {"model", "rules"}
    assert all(r["domain"] and r["expertise"] and r["occupation"] for r in rows.values())
