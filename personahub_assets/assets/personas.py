"""Persona creation: Text-to-Persona and Persona-to-Persona, per batch."""

from collections import Counter
from typing import Any

from dagster import (
    AssetCheckResult,
    AssetCheckSpec,
    AssetExecutionContext,
    Config,
    MaterializeResult,
    asset,
)
from pydantic import Field

from personahub_assets import previews
from personahub_assets.assets.common import check_result, materialize_result
from personahub_assets.automation import batch_condition
from personahub_assets.cluster import GPU_POOL, MODEL_STEP_TAGS
from personahub_assets.lib.common.ids import persona_id
from personahub_assets.lib.common.tables import to_arrow
from personahub_assets.lib.ingest.language import persona_language
from personahub_assets.lib.ingest.queries import batch_documents
from personahub_assets.lib.personas import queries
from personahub_assets.lib.personas.validation import validate_persona
from personahub_assets.lib.synthesis.generation import provenance, seed_for, summarize
from personahub_assets.partitions import batch_partitions
from personahub_assets.prompts import persona_to_persona, text_to_persona
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


class RelationPersonaConfig(Config):
    """How personas are expanded through relationships."""

    hops: int = Field(default=SETTINGS.hops, description="Hops of expansion (the paper uses "
                                                         "six); the default is PERSONAHUB_HOPS.")


def _provenance_check(name: str, asset_key: str, warehouse: WarehouseResource, method: str,
                      batch: str) -> AssetCheckResult:
    missing = queries.missing_provenance(warehouse.rows, method, batch)
    return check_result(name, missing == 0, {"rows_missing_provenance": missing},
                        asset_key=asset_key)


def _accounting_check(name: str, asset_key: str, warehouse: WarehouseResource, method: str,
                      batch: str, attempted: int) -> AssetCheckResult:
    stored = queries.stored_persona_counts(warehouse.rows, method, batch)
    return check_result(name, attempted == stored["kept"] + stored["rejected"],
                        {"attempted": attempted, **stored}, asset_key=asset_key)


def _persona_rows(
    items: list[dict[str, Any]], results: list, requests: list, llm: LLMResource,
    sources: list[str | None],
) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """Split generated personas into kept rows and rejected rows (with reasons).

    Each item names its ``template`` and ``template_version`` for the provenance columns.
    """
    kept, rejected = [], []
    for item, req, res, source in zip(items, requests, results, sources, strict=True):
        prov = provenance(llm.backend, llm.model_name, item.pop("template"),
                          item.pop("template_version"), req, res)
        if res.error is not None:
            persona, reason = None, "llm_error"
        else:
            persona, reason = validate_persona(res.text, res.finish_reason, source)
        if persona is None:
            rejected.append({**item, **prov, "raw_output": res.text or res.error, "reason": reason})
        else:
            kept.append({**item, **prov, "persona": persona, "persona_id": persona_id(persona),
                         "language": persona_language(persona)})
    return kept, rejected


def _persona_metadata(kept, rejected, results) -> dict[str, Any]:
    lengths = sorted(len(p["persona"].split()) for p in kept)
    total = len(kept) + len(rejected)

    def pct(q: float) -> int:
        return lengths[min(int(q * len(lengths)), len(lengths) - 1)] if lengths else 0

    return {
        "persona_words_p10": pct(0.1),
        "persona_words_p50": pct(0.5),
        "persona_words_p90": pct(0.9),
        "refusal_rate": round(sum(r["reason"] == "refusal" for r in rejected) / total, 4)
        if total else 0.0,
        "personas_kept": len(kept),
        "personas_rejected": len(rejected),
        "invalid_rate": round(len(rejected) / total, 4) if total else 0.0,
        "mean_persona_words": round(sum(lengths) / len(lengths), 2) if lengths else 0.0,
        "languages": previews.language_table(
            [p["language"] for p in kept] + [persona_language(str(r.get("raw_output") or ""))
                                            for r in rejected],
            [True] * len(kept) + [False] * len(rejected)),
        "rejection_reasons": previews.counts(Counter(r["reason"] for r in rejected)),
        **summarize(results),
    }


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
    kept, rejected = _persona_rows(items, results, requests, llm, sources)
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
            **_persona_metadata(kept, rejected, results),
            "preview": previews.table(preview, ["persona", "role", "url", "source text"]),
        },
        table="personas", row_count=len(kept),
        checks=[
            _accounting_check("text_personas_accounted", "text_personas", warehouse, "text",
                              batch, len(requests)),
            _provenance_check("text_personas_provenance", "text_personas", warehouse, "text",
                              batch),
        ],
    )


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
        kept, rejected = _persona_rows(items, results, requests, llm,
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
            **_persona_metadata(all_kept, all_rejected, all_results),
            "preview": previews.table(preview, ["relation", "depth", "persona"]),
        },
        table="personas", row_count=len(all_kept),
        checks=[
            _accounting_check("relation_personas_accounted", "relation_personas", warehouse,
                              "relation", batch, attempted),
            check_result("relation_lineage_complete", orphans == 0, {"orphans": orphans}),
        ],
    )
