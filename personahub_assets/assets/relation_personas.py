"""Persona-to-Persona: the people related to each persona of a batch, hop by hop."""


from dagster import (
    AssetCheckSpec,
    AssetExecutionContext,
    Config,
    MaterializeResult,
    asset,
)
from pydantic import Field

from personahub_assets import previews
from personahub_assets.assets.common import check_result, materialize_result
from personahub_assets.assets.persona_common import (
    accounting_check,
    persona_metadata,
    persona_rows,
)
from personahub_assets.automation import batch_condition
from personahub_assets.cluster import GPU_POOL, MODEL_STEP_TAGS
from personahub_assets.lib.common.tables import to_arrow
from personahub_assets.lib.personas import queries
from personahub_assets.lib.synthesis.generation import seed_for
from personahub_assets.partitions import batch_partitions
from personahub_assets.prompts import persona_to_persona
from personahub_assets.resources.llm import LLMResource
from personahub_assets.resources.warehouse import WarehouseResource
from personahub_assets.settings import SETTINGS


class RelationPersonaConfig(Config):
    """How personas are expanded through relationships."""

    hops: int = Field(default=SETTINGS.hops, description="Hops of expansion (the paper uses "
                                                         "six); the default is PERSONAHUB_HOPS.")


@asset(
    partitions_def=batch_partitions,
    deps=["text_personas"],
    automation_condition=batch_condition(),
    group_name="personas",
    kinds={"duckdb", "llm", SETTINGS.llm_backend},
    op_tags=MODEL_STEP_TAGS, pool=GPU_POOL,  # a GPU queue, pod and pool in cluster mode
    check_specs=[
        AssetCheckSpec(
            "relation_personas_accounted", asset="relation_personas",
            partitions_def=batch_partitions, blocking=True,
                       description="Every model call became a kept or a rejected persona."),
        AssetCheckSpec(
            "relation_lineage_complete", asset="relation_personas",
            partitions_def=batch_partitions, blocking=True,
                       description="Every related persona names an existing parent one hop up."),
    ],
)
def relation_personas(
    context: AssetExecutionContext, config: RelationPersonaConfig,
    warehouse: WarehouseResource, llm: LLMResource,
) -> MaterializeResult:
    """Persona-to-Persona: people in a close relationship to each persona, for k hops."""
    batch = context.partition_key
    template = persona_to_persona.TEMPLATE
    relations = persona_to_persona.RELATIONS
    parents = queries.text_personas_of(warehouse.rows, batch)
    all_kept, all_rejected, all_results, attempted = [], [], [], 0
    for hop in range(1, config.hops + 1):
        items, requests = [], []
        for parent in parents:
            relation = relations[seed_for(parent["persona_id"], hop) % len(relations)]
            requests.append(template.request(
                {"persona": parent["persona"], "relation": relation},
                seed=seed_for(parent["persona_id"], relation, hop, template.version)))
            items.append({"batch": batch, "method": "relation", "role": None,
                          "doc_id": parent["doc_id"], "parent_persona_id": parent["persona_id"],
                          "depth": hop, "relation": relation,
                          "template": template.name, "template_version": template.version})
        results = llm.generate(requests, log=context.log,
                               label=f"relation_personas[{batch}] hop {hop}/{config.hops}")
        # A related persona that repeats its parent is rejected as a copy of its source.
        kept, rejected = persona_rows(items, results, requests, llm,
                                       [p["persona"] for p in parents])
        all_kept += kept
        all_rejected += rejected
        all_results += results
        attempted += len(requests)
        parents = kept
    warehouse.replace_partitions([
        ("personas", {"method": "relation", "batch": batch}, to_arrow("personas", all_kept)),
        ("rejected_personas", {"method": "relation", "batch": batch},
         to_arrow("rejected_personas", all_rejected)),
    ])
    orphans = queries.relation_orphans(warehouse.rows, batch)
    preview = [{"relation": p["relation"], "depth": p["depth"], "persona": p["persona"]}
               for p in all_kept[:8]]
    return materialize_result(
        {
            "hops": config.hops,
            **persona_metadata(all_kept, all_rejected, all_results),
            "preview": previews.table(preview, ["relation", "depth", "persona"]),
        },
        table="personas", row_count=len(all_kept),
        checks=[
            accounting_check("relation_personas_accounted", "relation_personas", warehouse,
                              "relation", batch, attempted),
            check_result("relation_lineage_complete", orphans == 0, {"orphans": orphans}),
        ],
    )
