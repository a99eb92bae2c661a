"""Math verification: answer normalization, majority vote, and the asset on the real model."""

import json

import pytest
from dagster import instance_for_test, materialize

from personahub_assets.definitions import ASSETS
from personahub_assets.lib.common.tables import to_arrow
from personahub_assets.lib.synthesis.math_answers import extract_answer, majority, normalize_answer
from personahub_assets.resources.embeddings import EmbeddingsResource
from personahub_assets.resources.llm import LLMResource
from personahub_assets.resources.warehouse import WarehouseResource
from personahub_assets_tests.batch_helpers import empty_batch


@pytest.mark.parametrize(
    ("solution", "answer"),
    [
        ("12 * 6 = 72, plus 4. Answer: 76", "76"),
        ("Answer: $1,200.50", "2401/2"),
        ("so the answer is 3/4.", "3/4"),
        ("Answer: 0.75 litres", "3/4"),
        ("Answer: -4", "-4"),
        ("Answer: Twelve!", "twelve"),
        ("no final line at all", None),
        ("Answer: 1 ... wait, Answer: 2", "2"),
    ],
)
def test_answers_are_extracted_and_normalized(solution, answer):
    assert normalize_answer(extract_answer(solution)) == answer


def test_majority_needs_agreement():
    assert majority(["3", "3", "5"]).is_verified(2)
    assert not majority(["3", "4", "5"]).is_verified(2)
    assert not majority([None, None, None]).is_verified(1)
    assert majority(["4", "5", "5"]).answer == "5"


PROBLEMS = [
    "A farmer has 3 fields with 20 cows each. How many cows does he have?",
    "A ticket costs 8 dollars. What do 5 tickets cost?",
    "A shelf holds 14 books and 6 are taken away. How many books remain?",
]


@pytest.mark.model
def test_math_verification_asset_and_export(tmp_path):
    wh = WarehouseResource(path=str(tmp_path / "w.duckdb"))
    resources = {"warehouse": wh, "embeddings": EmbeddingsResource(),
                 "llm": LLMResource(cache_path=str(tmp_path / "c.duckdb")),
                 "judge_llm": LLMResource(cache_path=str(tmp_path / "c.duckdb"))}
    with instance_for_test() as instance:
        batch = empty_batch(wh, instance)
        samples = [{"sample_id": f"s{i}", "domain": "math", "batch": batch,
                    "persona_id": f"p{i}", "persona": "A farmer.", "sample_index": 0,
                    "text": text, "valid": True, "backend": "llamacpp", "model": "m",
                    "template": "t", "template_version": "1", "sampling_params": "{}"}
                   for i, text in enumerate(PROBLEMS)]
        samples.append({**samples[0], "sample_id": "bad", "valid": False,
                        "reason": "truncated"})
        wh.replace_partition("synthetic_samples", {}, to_arrow("synthetic_samples", samples))
        result = materialize(ASSETS, selection=["math_verification"], partition_key=batch,
                             instance=instance, resources=resources)
        assert result.success
        assert all(ev.passed for ev in result.get_asset_check_evaluations())
        solutions = wh.rows("SELECT sample_id, count(*) AS n FROM math_solutions GROUP BY 1")
        assert {r["sample_id"]: r["n"] for r in solutions} == {"s0": 3, "s1": 3, "s2": 3}
        answers = wh.rows("SELECT * FROM math_answers ORDER BY sample_id")
        assert [a["sample_id"] for a in answers] == ["s0", "s1", "s2"]
        assert all(a["batch"] == batch for a in answers)
        assert all(a["verified"] == (a["votes"] >= 2) for a in answers)
        # The solutions really come from the model and are kept verbatim with provenance.
        assert wh.scalar("SELECT count(*) FROM math_solutions WHERE model LIKE '%.gguf' "
                         "AND template = 'math_solution' AND solution <> ''") == 9

        export = materialize(ASSETS, selection=["dataset_export"],
                             partition_key=batch,
                             instance=instance, resources=resources,
                             run_config={"ops": {"dataset_export": {"config": {
                                 "exports_dir": str(tmp_path / "exports")}}}})
        assert export.success
    rows = [json.loads(line) for line in
            (tmp_path / "exports" / "math" / f"{batch}.jsonl").read_text().splitlines()]
    assert {r["sample_id"] for r in rows} == {"s0", "s1", "s2"}
    by_id = {a["sample_id"]: a for a in answers}
    assert all(r["verified"] == by_id[r["sample_id"]]["verified"]
               and r["verified_answer"] == by_id[r["sample_id"]]["answer"] for r in rows)
