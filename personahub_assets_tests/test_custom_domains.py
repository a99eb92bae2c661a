"""Domains from template files: parsed strictly, added as partitions, synthesized for real."""

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
import yaml

from personahub_assets.lib.personas.validation import validate_sample
from personahub_assets.prompts.custom import TemplateFileError, load_domains, parse_domain

ROOT = Path(__file__).resolve().parents[1]
EXAMPLE = ROOT / "docs/examples/templates/haiku.yaml"
BUILTIN = {"math", "reasoning", "instruction", "knowledge", "npc", "tool"}


def test_example_template_parses(tmp_path):
    (tmp_path / "haiku.yaml").write_text(EXAMPLE.read_text())
    domains = load_domains(tmp_path, BUILTIN)
    template, rules = domains["haiku"]
    assert template.name == "synthesis.haiku" and template.version == "1"
    prompt = template.render_completion({"persona": "A glass blower."})
    assert prompt.endswith("Persona: A glass blower.\nHaiku:")
    ok = "Sand turns into glass / my breath shapes the morning light / orange, then clear blue"
    assert validate_sample(rules, ok, "stop", "A glass blower.")[:2] == (True, None)
    assert validate_sample(rules, "a single line with no slashes at all here", "stop",
                           "A glass blower.")[:2] == (False, "pattern_mismatch")


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"domain": "Bad Name"}, "must match"),
        ({"domain": "math"}, "already defined"),
        ({"examples": [{"persona": "x"}]}, "examples\\[0\\]"),
        ({"version": None}, "'version'"),
        ({"validation": {"min_wordz": 3}}, "unknown validation rules"),
        ({"json_schema": {"type": "no-such-type"}}, "not a valid JSON Schema"),
    ],
)
def test_bad_template_files_fail_clearly(tmp_path, change, message):
    data = {**yaml.safe_load(EXAMPLE.read_text()), **change}
    (tmp_path / "broken.yaml").write_text(yaml.safe_dump(data))
    with pytest.raises(TemplateFileError, match=message):
        load_domains(tmp_path, BUILTIN)


def test_json_domain_from_file():
    schema = {"type": "object", "required": ["title"], "properties": {"title": {"type": "string"}}}
    _, template, rules = parse_domain({
        "domain": "headline", "version": 2, "instruction": "x", "output_label": "Headline",
        "examples": [{"persona": "p", "output": json.dumps({"title": "t"})}],
        "json_schema": schema}, "inline")
    assert template.json_schema == schema and template.stop == ()
    assert validate_sample(rules, '{"title": "Hi"}', "stop", "p")[:2] == (True, None)
    assert validate_sample(rules, '{"name": "Hi"}', "stop", "p")[:2] == (False, "schema:root")


CHILD = textwrap.dedent("""
    import json, sys
    from dagster import MultiPartitionKey, instance_for_test, materialize
    from personahub_assets.definitions import ASSETS
    from personahub_assets.lib.common.ids import persona_id
    from personahub_assets.lib.common.tables import to_arrow
    from personahub_assets.partitions import domain_partitions
    from personahub_assets.resources.embeddings import EmbeddingsResource
    from personahub_assets.resources.llm import LLMResource
    from personahub_assets.resources.warehouse import WarehouseResource
    from personahub_assets_tests.batch_helpers import empty_batch
    tmp = sys.argv[1]
    wh = WarehouseResource(path=tmp + "/w.duckdb")
    personas = ["A lighthouse keeper on a rocky island who logs every passing ship.",
                "A violin maker in Cremona who chooses spruce by tapping it."]
    with instance_for_test() as instance:
        batch = empty_batch(wh, instance)
        wh.replace_partition("persona_hub", {}, to_arrow("persona_hub", [
            {"persona_id": persona_id(p), "persona": p, "batch": batch, "method": "text",
             "depth": 0} for p in personas]))
        result = materialize(ASSETS, selection=["synthetic_data"], instance=instance,
                             partition_key=MultiPartitionKey({"batch": batch, "domain": "haiku"}),
                             resources={"warehouse": wh,
                                        "embeddings": EmbeddingsResource(),
                                        "llm": LLMResource(cache_path=tmp + "/c.duckdb"),
                                        "judge_llm": LLMResource(cache_path=tmp + "/c.duckdb")},
                             run_config={"ops": {"synthetic_data": {"config": {
                                 "max_personas": 0}}}})
    rows = wh.rows("SELECT template, batch = ? AS in_batch, valid, reason, text "
                   "FROM synthetic_samples", [batch])
    print(json.dumps({"domains": domain_partitions.get_partition_keys(),
                      "success": result.success, "rows": rows}))
""")


@pytest.mark.model
def test_template_file_adds_a_domain_partition_end_to_end(tmp_path):
    templates = tmp_path / "templates"
    templates.mkdir()
    (templates / "haiku.yaml").write_text(EXAMPLE.read_text())
    env = {**os.environ, "PERSONAHUB_TEMPLATES_DIR": str(templates)}
    out = subprocess.run([sys.executable, "-c", CHILD, str(tmp_path)], env=env, check=True,
                         capture_output=True, text=True, timeout=300, cwd=ROOT)
    report = json.loads(out.stdout.strip().splitlines()[-1])
    assert report["domains"][-1] == "haiku" and len(report["domains"]) == 7
    assert report["success"]
    assert len(report["rows"]) == 2
    assert {r["template"] for r in report["rows"]} == {"synthesis.haiku"}
    assert all(r["in_batch"] for r in report["rows"])
    assert all(r["valid"] or r["reason"] for r in report["rows"])
