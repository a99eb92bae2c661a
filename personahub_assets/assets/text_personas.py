"""Text-to-Persona: who would read, write, like or dislike each document of a batch."""


from dagster import (
    AssetCheckSpec,
    AssetExecutionContext,
    Config,
    MaterializeResult,
    asset,
)
from pydantic import Field

from personahub_assets import previews
from personahub_assets.assets.common import materialize_result
from personahub_assets.assets.persona_common import (
    accounting_check,
    persona_metadata,
    persona_rows,
    provenance_check,
)
from personahub_assets.automation import batch_condition
from personahub_assets.cluster import GPU_POOL, MODEL_STEP_TAGS
from personahub_assets.lib.common.tables import to_arrow
from personahub_assets.lib.ingest.queries import batch_documents
from personahub_assets.lib.synthesis.generation import seed_for
from personahub_assets.partitions import batch_partitions
from personahub_assets.prompts import text_to_persona
from personahub_assets.resources.llm import LLMResource
from personahub_assets.resources.warehouse import WarehouseResource
from personahub_assets.settings import SETTINGS


class TextPersonaConfig(Config):
    """How personas are drawn from documents."""

    roles: list[str] = Field(default=["read"],
                             description="Any of read, write, like, dislike: one persona each.")
    granularity: str = Field(default="fine", description="fine or coarse personas.")
    max_documents: int = Field(default=SETTINGS.max_documents,
                               description="Documents per batch (0 = all); the default is "
                                           "PERSONAHUB_MAX_DOCUMENTS.")
    max_doc_tokens: int = Field(default=200, description="Token budget of the document "
                                                         "text shown to the model.")


@asset(
    partitions_def=batch_partitions,
    deps=["web_documents"],
    automation_condition=batch_condition(),
    group_name="personas",
    kinds={"duckdb", "llm", SETTINGS.llm_backend},
    op_tags=MODEL_STEP_TAGS, pool=GPU_POOL,  # a GPU queue, pod and pool in cluster mode
    check_specs=[
        AssetCheckSpec(
            "text_personas_accounted", asset="text_personas",
            partitions_def=batch_partitions, blocking=True,
                       description="Every model call became a kept or a rejected persona."),
        AssetCheckSpec(
            "text_personas_provenance", asset="text_personas",
            partitions_def=batch_partitions, blocking=True,
                       description="Every persona records backend, model, template and params."),
    ],
)
def text_personas(
    context: AssetExecutionContext, config: TextPersonaConfig,
    warehouse: WarehouseResource, llm: LLMResource,
) -> MaterializeResult:
    """Text-to-Persona: who is likely to read (write, like, dislike) each document of the batch."""
    batch = context.partition_key
    templates = {role: text_to_persona.build(role, config.granularity) for role in config.roles}
    docs = batch_documents(warehouse.rows, batch)
    if config.max_documents:
        docs = docs[: config.max_documents]
    items, requests, sources = [], [], []
    shown, truncated = {}, 0
    for doc in docs:
        shown[doc["doc_id"]], n_tokens = llm.truncate(doc["text"], config.max_doc_tokens)
        truncated += n_tokens > config.max_doc_tokens
    # Role-major order: consecutive prompts share the template prefix, which llama.cpp reuses.
    for role, template in templates.items():
        for doc in docs:
            requests.append(template.request({"text": shown[doc["doc_id"]]},
                                             seed=seed_for(doc["doc_id"], role, template.version)))
            items.append({"batch": batch, "method": "text", "role": role,
                          "doc_id": doc["doc_id"], "depth": 0,
                          "template": template.name, "template_version": template.version})
            sources.append(doc["text"])
    results = llm.generate(requests, log=context.log, label=f"text_personas[{batch}]")
    kept, rejected = persona_rows(items, results, requests, llm, sources)
    warehouse.replace_partitions([
        ("personas", {"method": "text", "batch": batch}, to_arrow("personas", kept)),
        ("rejected_personas", {"method": "text", "batch": batch},
         to_arrow("rejected_personas", rejected)),
    ])
    by_doc = {d["doc_id"]: d for d in docs}
    preview = [{"persona": p["persona"], "role": p["role"], "url": by_doc[p["doc_id"]]["url"],
                "source text": by_doc[p["doc_id"]]["text"]} for p in kept[:8]]
    return materialize_result(
        {
            "documents": len(docs),
            "documents_truncated": truncated,
            **persona_metadata(kept, rejected, results),
            "preview": previews.table(preview, ["persona", "role", "url", "source text"]),
        },
        table="personas", row_count=len(kept),
        checks=[
            accounting_check("text_personas_accounted", "text_personas", warehouse, "text",
                              batch, len(requests)),
            provenance_check("text_personas_provenance", "text_personas", warehouse, "text",
                              batch),
        ],
    )
