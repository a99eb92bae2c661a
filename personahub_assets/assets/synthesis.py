"""Synthesis: persona hub rows of a shard -> ``synthetic_samples`` of a domain."""

import json
from collections import Counter

from dagster import (
    AssetCheckResult,
    AssetCheckSeverity,
    AssetCheckSpec,
    AssetExecutionContext,
    Config,
    MaterializeResult,
    MetadataValue,
    asset,
)
from pydantic import Field

from personahub_assets.lib import markdown
from personahub_assets.lib.diversity import diversity_metadata
from personahub_assets.lib.generation import provenance, seed_for, summarize
from personahub_assets.lib.ids import sample_id
from personahub_assets.lib.tables import to_arrow
from personahub_assets.lib.validation import validate_sample
from personahub_assets.partitions import domain_shard_partitions
from personahub_assets.prompts import DOMAIN_RULES, MODES, SYNTHESIS_TEMPLATES, npc
from personahub_assets.resources.llm import LLMResource
from personahub_assets.resources.warehouse import WarehouseResource


class SynthesisConfig(Config):
    """How samples are written from personas."""

    mode: str = Field(default="persona_few_shot", description=f"One of {MODES}.")
    samples_per_persona: int = Field(default=1, description="Samples per persona.")
    max_personas: int = Field(default=0, description="Personas per partition (0 = all).")
    world: str = Field(default=npc.DEFAULT_WORLD, description="Game world of the npc domain.")
    min_valid_rate: float = Field(default=0.3, description="Below this the validity check warns.")


@asset(
    partitions_def=domain_shard_partitions,
    deps=["persona_hub"],
    group_name="synthesis",
    kinds={"duckdb", "llm"},
    check_specs=[
        AssetCheckSpec("samples_provenance", asset="synthetic_data", blocking=True,
                       description="Every sample records persona, template, model and params."),
        AssetCheckSpec("samples_valid_rate", asset="synthetic_data",
                       description="Share of samples that pass the domain's validation."),
    ],
)
def synthetic_data(
    context: AssetExecutionContext, config: SynthesisConfig,
    warehouse: WarehouseResource, llm: LLMResource,
) -> MaterializeResult:
    """Samples of one domain written from the viewpoint of each persona of one shard.

    Every sample is validated deterministically; invalid ones stay in the table with
    ``valid = false`` and the reason, so nothing is silently dropped.
    """
    keys = context.partition_key.keys_by_dimension
    domain, shard = keys["domain"], int(keys["shard"])
    if config.mode not in MODES:
        raise ValueError(f"unknown mode {config.mode!r}; choose one of {MODES}")
    template = SYNTHESIS_TEMPLATES[domain]
    personas = warehouse.rows("SELECT persona_id, persona FROM persona_hub WHERE shard = ? "
                              "ORDER BY persona_id", [shard])
    if config.max_personas:
        personas = personas[: config.max_personas]
    items, requests = [], []
    for p in personas:
        for index in range(config.samples_per_persona):
            sid = sample_id(p["persona_id"], domain, template.version, index)
            variables = {"persona": p["persona"], "world": config.world}
            requests.append(template.request(variables, seed=seed_for(sid, config.mode),
                                             mode=config.mode))
            items.append({"sample_id": sid, "domain": domain, "shard": shard,
                          "persona_id": p["persona_id"], "persona": p["persona"],
                          "sample_index": index, "mode": config.mode})
    results = llm.generate(requests, log=context.log, label=f"synthetic_data[{domain}|{shard}]")
    rows = []
    for item, req, res in zip(items, requests, results, strict=True):
        if res.error is not None:
            valid, reason, value = False, "llm_error", None
        else:
            parsed = res.parsed
            if parsed is not None and template.convert is not None:
                parsed = template.convert(parsed)
            valid, reason, value = validate_sample(DOMAIN_RULES[domain], res.text,
                                                   res.finish_reason,
                                                   item["persona"], parsed)
        rows.append({**item, "text": res.text if res.error is None else res.error,
                     "json_value": json.dumps(value) if value is not None else None,
                     "valid": valid, "reason": reason, "finish_reason": res.finish_reason,
                     **provenance(llm.backend, llm.model_name, template.name, template.version,
                                  req, res)})
    warehouse.replace_partition("synthetic_samples", {"domain": domain, "shard": shard},
                                to_arrow("synthetic_samples", rows))

    stored = warehouse.rows(
        "SELECT count(*) AS n, count(*) FILTER (WHERE valid) AS valid, count(*) FILTER (WHERE "
        "persona_id IS NULL OR template IS NULL OR template_version IS NULL OR model IS NULL "
        "OR backend IS NULL OR sampling_params IS NULL) AS missing "
        "FROM synthetic_samples WHERE domain = ? AND shard = ?", [domain, shard])[0]
    valid_rate = stored["valid"] / stored["n"] if stored["n"] else 0.0
    reasons = Counter(r["reason"] for r in rows if not r["valid"])
    valid_rows = [r for r in rows if r["valid"]]
    diversity = diversity_metadata([r["json_value"] or r["text"] for r in valid_rows],
                                   [r["persona"] for r in valid_rows])
    context.log.info(f"{domain}|{shard}: {stored['valid']}/{stored['n']} valid {dict(reasons)}")
    return MaterializeResult(
        metadata={
            "samples": stored["n"],
            "valid_samples": stored["valid"],
            "valid_rate": round(valid_rate, 4),
            "invalid_reasons": MetadataValue.md(markdown.counts(dict(reasons))),
            **diversity,
            **summarize(results),
            "preview": MetadataValue.md(markdown.table(rows[:6], ["persona", "text", "valid",
                                                                  "reason"], max_chars=200)),
        },
        check_results=[
            AssetCheckResult(check_name="samples_provenance",
                             passed=stored["missing"] == 0 and stored["n"] == len(requests),
                             severity=AssetCheckSeverity.ERROR,
                             metadata={"rows": stored["n"], "expected": len(requests),
                                       "missing_provenance": stored["missing"]}),
            AssetCheckResult(check_name="samples_valid_rate",
                             passed=valid_rate >= config.min_valid_rate,
                             severity=AssetCheckSeverity.WARN,
                             metadata={"valid_rate": round(valid_rate, 4),
                                       "min_valid_rate": config.min_valid_rate}),
        ],
    )
