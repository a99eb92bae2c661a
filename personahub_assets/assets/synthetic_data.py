"""Synthesis: persona hub rows of a batch -> ``synthetic_samples`` of a domain."""

import json
from collections import Counter
from collections.abc import Iterator, Sequence
from typing import Any

from dagster import (
    AssetCheckResult,
    AssetCheckSpec,
    AssetDep,
    AssetExecutionContext,
    BackfillPolicy,
    Config,
    MaterializeResult,
    MetadataValue,
    MultiToSingleDimensionPartitionMapping,
    asset,
)
from pydantic import Field

from personahub_assets import previews
from personahub_assets.assets.common import check_result, materialize_result
from personahub_assets.assets.selection import PersonaSelection, select_for_synthesis
from personahub_assets.automation import batch_condition
from personahub_assets.cluster import GPU_POOL, MODEL_STEP_TAGS
from personahub_assets.lib.common.ids import sample_id
from personahub_assets.lib.common.tables import to_arrow
from personahub_assets.lib.curation.queries import hub_personas
from personahub_assets.lib.export import plots
from personahub_assets.lib.personas.validation import validate_sample
from personahub_assets.lib.quality.diversity import diversity_metadata, embedding_metadata
from personahub_assets.lib.synthesis.generation import provenance, seed_for
from personahub_assets.lib.synthesis.queries import sample_partition_stats
from personahub_assets.partitions import domain_batch_partitions
from personahub_assets.prompts import DOMAIN_RULES, MODES, SYNTHESIS_TEMPLATES, npc
from personahub_assets.resources.embeddings import EmbeddingsResource
from personahub_assets.resources.llm import LLMResource
from personahub_assets.resources.warehouse import WarehouseResource
from personahub_assets.settings import SETTINGS


class SynthesisConfig(Config):
    """How samples are written from personas."""

    mode: str = Field(default="persona_few_shot", description=f"One of {MODES}.")
    samples_per_persona: int = Field(default=1, description="Samples per persona.")
    max_personas: int = Field(default=SETTINGS.max_personas,
                              description="Personas per partition (0 = all); the default is "
                                          "PERSONAHUB_MAX_PERSONAS.")
    world: str = Field(default=npc.DEFAULT_WORLD, description="Game world of the npc domain.")
    min_valid_rate: float = Field(default=0.3, description="Below this the validity check warns.")
    selection: PersonaSelection = Field(default=PersonaSelection(),
                                        description="Targeted synthesis: a typed persona "
                                                    "filter with optional quotas.")


@asset(
    partitions_def=domain_batch_partitions,
    # One partition per run: a partitioned check's result is recorded for single-partition
    # runs only (Dagster 1.13), and the downstream conditions wait for those results.
    backfill_policy=BackfillPolicy.multi_run(max_partitions_per_run=1),
    deps=[AssetDep("persona_hub", partition_mapping=MultiToSingleDimensionPartitionMapping(
        partition_dimension_name="batch")),
          AssetDep("persona_attributes", partition_mapping=MultiToSingleDimensionPartitionMapping(
              partition_dimension_name="batch"))],
    automation_condition=batch_condition(),
    group_name="synthesis",
    kinds={"duckdb", "llm", SETTINGS.llm_backend},
    op_tags=MODEL_STEP_TAGS, pool=GPU_POOL,  # a GPU queue, pod and pool in cluster mode
    check_specs=[
        AssetCheckSpec(
            "samples_provenance", asset="synthetic_data",
            partitions_def=domain_batch_partitions, blocking=True,
                       description="Every sample records persona, template, model and params."),
        AssetCheckSpec(
            "samples_valid_rate", asset="synthetic_data",
            partitions_def=domain_batch_partitions,
                       description="Share of samples that pass the domain's validation."),
    ],
)
def synthetic_data(
    context: AssetExecutionContext, config: SynthesisConfig,
    warehouse: WarehouseResource, llm: LLMResource, embeddings: EmbeddingsResource,
) -> MaterializeResult:
    """Samples of one domain written from the viewpoint of each hub persona of one batch.

    Every sample is validated deterministically; invalid ones stay in the table with
    ``valid = false`` and the reason, so nothing is silently dropped. A backfill hands a run
    several partitions at once: their model calls form one batch and their rows are written
    in one transaction.
    """
    if config.mode not in MODES:
        raise ValueError(f"unknown mode {config.mode!r}; choose one of {MODES}")
    partitions = []
    for key in context.partition_keys:
        dims = domain_batch_partitions.get_partition_key_from_str(str(key)).keys_by_dimension
        partitions.append((dims["domain"], dims["batch"]))
    items, requests = [], []
    for domain, batch in partitions:
        personas, selection, chosen = select_for_synthesis(
            warehouse, hub_personas(warehouse.rows, batch), config.selection)
        if selection:
            context.log.info(f"{domain}|{batch}: persona selection {chosen}")
        for item, request in _sample_requests(personas[: config.max_personas or None], domain,
                                              batch, selection, config, llm.model_name):
            items.append(item)
            requests.append(request)
    label = "synthetic_data[" + ", ".join(f"{d}|{b}" for d, b in partitions) + "]"
    results = llm.generate(requests, log=context.log, label=label)
    rows = [_sample_row(item, req, res, llm)
            for item, req, res in zip(items, requests, results, strict=True)]
    warehouse.replace_partitions([
        ("synthetic_samples", {"domain": d, "batch": b},
         to_arrow("synthetic_samples", [r for r in rows if (r["domain"], r["batch"]) == (d, b)]))
        for d, b in partitions])
    with warehouse.reader() as read:  # the run's partitions only, in one session
        stored = sample_partition_stats(read, partitions)
    per_partition = _partition_figures(partitions, stored, items)
    n = sum(p["samples"] for p in per_partition)
    valid_total = sum(p["valid"] for p in per_partition)
    reasons = Counter(r["reason"] for r in rows if not r["valid"])
    context.log.info(f"{label}: {valid_total}/{n} valid {dict(reasons)}")
    stats = {
        "partitions_in_run": len(partitions),
        "samples": n,
        "valid_samples": valid_total,
        "valid_rate": round(valid_total / n if n else 0.0, 4),
        "invalid_reasons": previews.counts(dict(reasons)),
        **_diversity([r for r in rows if r["valid"]], embeddings),
        **llm.summarize(results),
        "per_partition": previews.table(
            per_partition, ["partition", "samples", "valid", "valid_rate"]),
        "validity_chart": MetadataValue.md(plots.svg_markdown(plots.stacked_bars_svg(
            [(p["partition"], p["valid"], p["samples"] - p["valid"]) for p in per_partition],
            title="Valid samples per partition"), "validity per partition")),
        "preview": previews.table(rows[:6], ["persona", "text", "valid", "reason"],
                                  max_chars=200),
    }
    return materialize_result(stats, table="synthetic_samples", row_count=n,
                              checks=_sample_checks(per_partition, len(requests), config))


def _sample_requests(personas: Sequence[dict[str, Any]], domain: str, batch: str,
                     selection: str | None, config: SynthesisConfig, model_name: str
                     ) -> Iterator[tuple[dict[str, Any], Any]]:
    """(item, request) per persona and sample index: the row's identity and the model call."""
    template = SYNTHESIS_TEMPLATES[domain]
    for p in personas:
        for index in range(config.samples_per_persona):
            sid = sample_id(p["persona_id"], domain, template.version, model_name, index)
            variables = {"persona": p["persona"], "world": config.world}
            yield ({"sample_id": sid, "domain": domain, "batch": batch,
                    "persona_id": p["persona_id"], "persona": p["persona"],
                    "sample_index": index, "mode": config.mode, "selection": selection},
                   template.request(variables, seed=seed_for(sid, config.mode),
                                    mode=config.mode))


def _partition_figures(partitions: Sequence[tuple[str, str]],
                       stored: dict[tuple[str, str], dict[str, int]],
                       items: Sequence[dict[str, Any]]) -> list[dict[str, Any]]:
    """Per partition of the run: the stored samples, the expected ones, validity, provenance."""
    figures = []
    for d, b in partitions:
        got = stored[(d, b)]
        expected = sum(1 for i in items if (i["domain"], i["batch"]) == (d, b))
        figures.append({"partition": f"{b}|{d}", "samples": got["n"],
                        "expected": expected, "valid": got["valid"],
                        "missing_provenance": got["missing"],
                        "valid_rate": round(got["valid"] / got["n"], 4) if got["n"]
                        else 0.0})
    return figures


def _diversity(valid_rows: Sequence[dict[str, Any]],
               embeddings: EmbeddingsResource) -> dict[str, Any]:
    """Lexical diversity of the valid outputs and, from two rows on, embedding diversity."""
    outputs = [r["json_value"] or r["text"] for r in valid_rows]
    diversity = diversity_metadata(outputs, [r["persona"] for r in valid_rows])
    if len(valid_rows) > 1:
        encoder = embeddings.build()
        diversity.update(embedding_metadata(
            encoder.encode(outputs), encoder.encode([r["persona"] for r in valid_rows])))
    return diversity


def _sample_checks(per_partition: Sequence[dict[str, Any]], expected: int,
                   config: SynthesisConfig) -> list[AssetCheckResult]:
    """Provenance and validity checks; validity is judged on the run's weakest partition."""
    n = sum(p["samples"] for p in per_partition)
    valid_rate = sum(p["valid"] for p in per_partition) / n if n else 0.0
    worst = min(per_partition, key=lambda p: p["valid_rate"])
    provenance_ok = all(p["missing_provenance"] == 0 and p["samples"] == p["expected"]
                        for p in per_partition)
    return [
        check_result("samples_provenance", provenance_ok,
                     {"rows": n, "expected": expected, "missing_provenance": sum(
                         p["missing_provenance"] for p in per_partition)}),
        check_result("samples_valid_rate",
                     worst["valid_rate"] >= config.min_valid_rate or worst["samples"] == 0,
                     {"valid_rate": round(valid_rate, 4),
                      "lowest_partition": worst["partition"],
                      "lowest_valid_rate": worst["valid_rate"],
                      "min_valid_rate": config.min_valid_rate}, warn=True),
    ]


def _sample_row(item: dict, req, res, llm: LLMResource) -> dict:
    """One synthetic_samples row: the validated output with its provenance."""
    template = SYNTHESIS_TEMPLATES[item["domain"]]
    if res.error is not None:
        valid, reason, value = False, "llm_error", None
    else:
        parsed = res.parsed
        if parsed is not None and template.convert is not None:
            parsed = template.convert(parsed)
        valid, reason, value = validate_sample(DOMAIN_RULES[item["domain"]], res.text,
                                               res.finish_reason, item["persona"], parsed)
    return {**item, "text": res.text if res.error is None else res.error,
            "json_value": json.dumps(value) if value is not None else None,
            "valid": valid, "reason": reason, "finish_reason": res.finish_reason,
            **provenance(llm.backend, llm.model_name, template.name, template.version,
                         req, res)}
