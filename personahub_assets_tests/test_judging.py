"""The judge's verdict parsing, planted bad samples and the separation figures."""

from personahub_assets.lib.quality.judging import (
    PLANTED_KINDS,
    auc,
    judge_sample_text,
    planted_bad,
    read_verdict,
    separation,
)
from personahub_assets.prompts import judge


def test_verdicts_are_read_or_given_a_reason():
    assert read_verdict({"score": 4, "reason": " fine ", "unsafe": False}) == (
        read_verdict({"score": 4, "reason": "fine", "unsafe": False}))
    v = read_verdict({"score": 4, "reason": "fine", "unsafe": True})
    assert (v.score, v.reason, v.unsafe, v.error) == (4, "fine", True, None)
    assert read_verdict(None).error == "invalid_json"
    assert read_verdict({"score": 9}).error == "score_out_of_range"
    assert read_verdict({"score": True}).error == "score_out_of_range"
    assert read_verdict({"score": "5"}).error == "score_out_of_range"
    assert read_verdict({"score": 5}, error="timeout").error == "llm_error"
    assert read_verdict({"score": 3, "reason": "x", "unsafe": "no"}).unsafe is None


def test_planted_bad_samples():
    bad = planted_bad("one two three four five six", "A baker.", "Something else.")
    assert set(bad) == set(PLANTED_KINDS)
    assert bad["empty"] == ""
    assert bad["copied_persona"] == "A baker."
    assert bad["off_topic"] == "Something else."
    assert bad["truncated"] == "one two"


def test_auc_and_separation():
    assert auc([5, 5], [1, 1]) == 1.0
    assert auc([3], [3]) == 0.5
    assert auc([1], [5]) == 0.0
    assert auc([], [1]) is None
    sep = separation([5, 4, None], {"empty": [1, 1], "truncated": [4, None]}, threshold=3)
    assert sep["good"] == {"n": 3, "mean_score": 3.333, "kept_at_threshold": 2}
    assert sep["empty"]["dropped_at_threshold"] == 2
    assert sep["truncated"]["auc"] == round((1 + 0.5 + 1 + 0 + 1 + 0.5) / 6, 4)
    assert sep["all_bad"]["n"] == 4


def test_judge_reads_the_answer_of_an_instruction():
    assert judge_sample_text("Do X.") == "Do X."
    assert "Answer given:\nDone." in judge_sample_text("Do X.", "Done.")


def test_every_builtin_domain_has_a_rubric_and_examples_fit_the_schema():
    for domain in ("math", "reasoning", "instruction", "knowledge", "npc", "tool"):
        assert judge.rubric_for(domain) == judge.RUBRICS[domain]
    assert judge.rubric_for("my_custom_domain") == judge.DEFAULT_RUBRIC
    import json

    from jsonschema import Draft202012Validator

    validator = Draft202012Validator(judge.SCHEMA)
    for ex in judge.TEMPLATE.examples:
        validator.validate(json.loads(ex["output"]))
    req = judge.TEMPLATE.request({"rubric": "r", "persona": "p", "sample": "</document> hi"},
                                 seed=1)
    assert req.json_schema == judge.SCHEMA
    assert req.completion_prompt.count("</document>") == len(judge.TEMPLATE.examples) + 1
