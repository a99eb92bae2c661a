"""Persona attributes: occupation, domain, expertise and language of every hub persona."""

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

from personahub_assets import previews
from personahub_assets.automation import batch_condition
from personahub_assets.lib.common.tables import to_arrow
from personahub_assets.lib.export import plots
from personahub_assets.lib.ingest.cleaning import detect_language
from personahub_assets.lib.personas.attributes import (
    DOMAINS,
    dominant_share,
    import_attributes,
    normalize_model_attributes,
    rule_attributes,
)
from personahub_assets.lib.synthesis.generation import provenance, seed_for, summarize
from personahub_assets.partitions import batch_partitions
from personahub_assets.prompts import persona_attributes as prompt
from personahub_assets.resources.llm import LLMResource
from personahub_assets.resources.warehouse import WarehouseResource
from personahub_assets.settings import SETTINGS

METHODS = ("model", "rules")


class AttributesConfig(Config):
    """How attributes are found, and when one domain is said to dominate."""

    method: str = Field(default=SETTINGS.attributes_method,
                        description="model: a structured-output call per persona (rules where "
                                    "it fails); rules: keyword rules only, no model. Default: "
                                    "PERSONAHUB_ATTRIBUTES_METHOD.")
    max_domain_share: float = Field(default=0.5, description="The coverage check warns when "
                                                             "one domain holds more than this "
                                                             "share of personas.")


@asset(
    partitions_def=batch_partitions,
    deps=["persona_hub"],
    automation_condition=batch_condition(),
    group_name="personas",
    kinds={"duckdb", "llm"},
    check_specs=[
        AssetCheckSpec("every_persona_attributed", asset="persona_attributes", blocking=True,
                       partitions_def=batch_partitions,
                       description="Every hub persona of the batch has a row with a domain "
                                   "from the taxonomy."),
        AssetCheckSpec("persona_domain_coverage", asset="persona_attributes",
                       partitions_def=batch_partitions,
                       description="No domain holds more than the configured share."),
    ],
)
def persona_attributes(
    context: AssetExecutionContext, config: AttributesConfig,
    warehouse: WarehouseResource, llm: LLMResource,
) -> MaterializeResult:
    """``occupation``, ``domain`` (a fixed taxonomy: see lib/personas/attributes.py), ``expertise``
    (novice, intermediate, expert) and ``language`` (ISO 639-1) for each hub persona, keyed by
    persona_id. Imported personas keep the fields their source has (PersonaHub's elite
    domains included); the others get one cheap structured-output call, with keyword rules as
    the fallback. Targeted synthesis filters on this table."""
    if config.method not in METHODS:
        raise ValueError(f"unknown method {config.method!r}; choose one of {METHODS}")
    batch = context.partition_key
    personas = warehouse.rows(
        "SELECT h.persona_id, h.persona, any_value(p.source_fields) AS source_fields "
        "FROM persona_hub h LEFT JOIN personas p ON p.persona_id = h.persona_id "
        "AND p.method = 'import' AND p.source_fields IS NOT NULL "
        "WHERE h.batch = ? GROUP BY h.persona_id, h.persona ORDER BY h.persona_id", [batch])
    imported = {p["persona_id"]: import_attributes(json.loads(p["source_fields"]))
                for p in personas if p["source_fields"]}
    to_ask = [p for p in personas if config.method == "model"
              and not {"occupation", "domain", "expertise"} <= set(imported.get(
                  p["persona_id"]) or {})]
    requests = [prompt.TEMPLATE.request({"persona": p["persona"]},
                                        seed=seed_for(p["persona_id"], "attributes"))
                for p in to_ask]
    results = llm.generate(requests, log=context.log,
                           label=f"persona_attributes[{batch}]") if requests else []
    answered = {}
    for p, req, res in zip(to_ask, requests, results, strict=True):
        answered[p["persona_id"]] = (
            normalize_model_attributes(res.parsed) if res.error is None else None,
            provenance(llm.backend, llm.model_name, prompt.TEMPLATE.name,
                       prompt.TEMPLATE.version, req, res))
    rows = []
    for p in personas:
        rules = rule_attributes(p["persona"])
        model, prov = answered.get(p["persona_id"], (None, {}))
        source = imported.get(p["persona_id"]) or {}
        attrs = {**rules, **(model or {}), **source}
        kind = ("import" if source else "model" if model else "rules")
        rows.append({"persona_id": p["persona_id"], "batch": batch,
                     "occupation": attrs.get("occupation"), "domain": attrs["domain"],
                     "expertise": attrs["expertise"],
                     "language": source.get("language") or detect_language(p["persona"])[0],
                     "attribute_source": kind, "source_fields": p["source_fields"],
                     **(prov or {"backend": "rules" if kind == "rules" else "import",
                                 "model": None, "template": "persona_attributes_rules",
                                 "template_version": "1", "sampling_params": "{}"})})
    warehouse.replace_partitions([("persona_attributes", {"batch": batch},
                                   to_arrow("persona_attributes", rows))])
    stored = warehouse.scalar(
        "SELECT count(*) FROM persona_attributes WHERE batch = ? AND domain IN "
        "(SELECT unnest(?))", [batch, list(DOMAINS)])
    domains = Counter(r["domain"] for r in rows)
    top, share = dominant_share([r["domain"] for r in rows])
    filled = {c: sum(r[c] is not None for r in rows) for c in
              ("occupation", "domain", "expertise", "language")}
    return MaterializeResult(
        metadata={
            "personas": len(rows),
            "attribute_source": previews.counts(
                dict(Counter(r["attribute_source"] for r in rows))),
            "filled": MetadataValue.json(filled),
            "domains": previews.counts(dict(domains)),
            "domain_chart": MetadataValue.md(plots.svg_markdown(plots.funnel_svg(
                domains.most_common(), title="Personas per domain"), "personas per domain")
                if rows else "_no personas_"),
            "expertise": previews.counts(
                dict(Counter(r["expertise"] for r in rows))),
            "languages": previews.counts(
                dict(Counter(r["language"] for r in rows))),
            **summarize(results),
            "preview": previews.table(
                [{**r, "persona": p["persona"]} for r, p in zip(rows, personas, strict=True)][:8],
                ["persona", "occupation", "domain", "expertise", "language"], max_chars=100),
        },
        check_results=[
            AssetCheckResult(check_name="every_persona_attributed",
                             passed=stored == len(personas), severity=AssetCheckSeverity.ERROR,
                             metadata={"personas": len(personas), "attributed": stored}),
            AssetCheckResult(check_name="persona_domain_coverage",
                             passed=share <= config.max_domain_share,
                             severity=AssetCheckSeverity.WARN,
                             metadata={"dominant_domain": str(top),
                                       "dominant_share": round(share, 4),
                                       "max_domain_share": config.max_domain_share,
                                       "domains_present": len(domains)}),
        ],
    )
