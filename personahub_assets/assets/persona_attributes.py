"""Persona attributes: occupation, domain, expertise and language of every hub persona."""

import json
from collections import Counter
from typing import Any

from dagster import (
    AssetCheckSpec,
    AssetExecutionContext,
    Config,
    MaterializeResult,
    MetadataValue,
    asset,
)
from pydantic import Field

from personahub_assets import previews
from personahub_assets.assets.common import check_result, materialize_result
from personahub_assets.automation import batch_condition
from personahub_assets.lib.common.tables import to_arrow
from personahub_assets.lib.export import plots
from personahub_assets.lib.personas.attributes import (
    DOMAINS,
    attribute_row,
    dominant_share,
    import_attributes,
    needs_model,
    normalize_model_attributes,
)
from personahub_assets.lib.personas.queries import attribute_inputs, attributed_count
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
    personas = attribute_inputs(warehouse.rows, batch)
    imported = {p["persona_id"]: import_attributes(json.loads(p["source_fields"]))
                for p in personas if p["source_fields"]}
    to_ask = [p for p in personas
              if config.method == "model" and needs_model(imported.get(p["persona_id"]))]
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
    rows = [attribute_row(p, batch, imported.get(p["persona_id"]),
                          *answered.get(p["persona_id"], (None, {}))) for p in personas]
    warehouse.replace_partitions([("persona_attributes", {"batch": batch},
                                   to_arrow("persona_attributes", rows))])
    stored = attributed_count(warehouse.rows, batch, DOMAINS)
    top, share = dominant_share([r["domain"] for r in rows])
    return materialize_result(
        _attribute_stats(rows, personas, results),
        checks=[
            check_result("every_persona_attributed", stored == len(personas),
                         {"personas": len(personas), "attributed": stored}),
            check_result("persona_domain_coverage", share <= config.max_domain_share,
                         {"dominant_domain": str(top), "dominant_share": round(share, 4),
                          "max_domain_share": config.max_domain_share,
                          "domains_present": len({r["domain"] for r in rows})}, warn=True),
        ],
    )


def _attribute_stats(rows: list[dict[str, Any]], personas: list[dict[str, Any]],
                     results: list) -> dict[str, Any]:
    """The metadata of a batch's attributes: sources, filled fields, the value counts."""
    domains = Counter(r["domain"] for r in rows)
    filled = {c: sum(r[c] is not None for r in rows) for c in
              ("occupation", "domain", "expertise", "language")}
    return {
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
    }
