"""Sample quality: a judge's score for every valid sample and a safety screen for every sample."""

from collections import Counter
from typing import Any

from dagster import (
    AssetCheckSpec,
    AssetDep,
    AssetExecutionContext,
    Config,
    MaterializeResult,
    MetadataValue,
    MultiToSingleDimensionPartitionMapping,
    asset,
)
from pydantic import Field

from personahub_assets import previews
from personahub_assets.assets.common import check_result, materialize_result
from personahub_assets.automation import batch_condition
from personahub_assets.lib.common.tables import to_arrow
from personahub_assets.lib.export import plots
from personahub_assets.lib.quality.judging import judge_sample_text, read_verdict
from personahub_assets.lib.quality.queries import samples_to_screen, screened_count
from personahub_assets.lib.quality.safety import screen
from personahub_assets.lib.synthesis.generation import provenance, seed_for, summarize
from personahub_assets.partitions import domain_batch_partitions
from personahub_assets.prompts import judge
from personahub_assets.resources.llm import LLMResource
from personahub_assets.resources.warehouse import WarehouseResource
from personahub_assets.settings import SETTINGS


class QualityConfig(Config):
    """Whether the judge runs, and where the safety classifier draws its line."""

    run_judge: bool = Field(default=True, description="Score valid samples with the judge "
                                                      "(the judge_llm resource).")
    safety_threshold: float = Field(default=0.8, description="Classifier score at or above "
                                                             "which a sample is flagged.")
    max_judged: int = Field(default=SETTINGS.judge_max_samples,
                            description="Valid samples scored per partition, the first by "
                                        "sample ID (0 = all; PERSONAHUB_JUDGE_MAX_SAMPLES). The "
                                        "rest keep an empty judge_score.")
    min_scored_share: float = Field(default=0.9, description="Below this share of valid "
                                                             "samples with a judge score, the "
                                                             "check warns.")


@asset(
    partitions_def=domain_batch_partitions,
    deps=["synthetic_data",
          AssetDep("instruction_responses",
                   partition_mapping=MultiToSingleDimensionPartitionMapping(
                       partition_dimension_name="batch"))],
    automation_condition=batch_condition(),
    group_name="quality",
    kinds={"duckdb", "llm"},
    # The judge's resource travels with the asset, so every graph that holds the asset has it.
    check_specs=[
        AssetCheckSpec("every_sample_screened", asset="sample_quality", blocking=True,
                       partitions_def=domain_batch_partitions,
                       description="Every sample has a safety verdict."),
        AssetCheckSpec("judge_scored_share", asset="sample_quality",
                       partitions_def=domain_batch_partitions,
                       description="Share of valid samples the judge could score."),
    ],
)
def sample_quality(
    context: AssetExecutionContext, config: QualityConfig,
    warehouse: WarehouseResource, judge_llm: LLMResource,
) -> MaterializeResult:
    """Quality signals that exports filter on. Every valid sample is scored 1-5 by a judge
    model against its domain's rubric (``judge_score``, ``judge_reason``, structured output);
    every sample, valid or not, gets ``safety_flag`` and ``safety_reason`` from an offline
    offensive-language classifier and the judge's unsafe flag. The judge has its own backend
    settings (resource ``judge_llm``), so it can be a stronger model than the generator."""
    dims = domain_batch_partitions.get_partition_key_from_str(
        context.partition_key).keys_by_dimension
    domain, batch = dims["domain"], dims["batch"]
    samples = samples_to_screen(warehouse.rows, domain, batch)
    template = judge.TEMPLATE
    to_judge = [s for s in samples if s["valid"]] if config.run_judge else []
    if config.max_judged:
        to_judge = to_judge[: config.max_judged]
    requests = [template.request(
        {"rubric": judge.rubric_for(domain), "persona": s["persona"],
         "sample": judge_sample_text(s["text"], s["response"])},
        seed=seed_for(s["sample_id"], "judge")) for s in to_judge]
    label = f"sample_quality[{domain}|{batch}]"
    results = judge_llm.generate(requests, log=context.log, label=label) if requests else []
    judged = {}
    for s, req, res in zip(to_judge, requests, results, strict=True):
        verdict = read_verdict(res.parsed, res.error)
        judged[s["sample_id"]] = (verdict, provenance(
            judge_llm.backend, judge_llm.model_name, template.name, template.version, req, res))
    texts = [judge_sample_text(s["text"] or "", s["response"]) for s in samples]
    flags = [judged[s["sample_id"]][0].unsafe if s["sample_id"] in judged else None
             for s in samples]
    safety = screen(texts, threshold=config.safety_threshold, judge_flags=flags)
    rows = [_quality_row(s, domain, batch, verdict_safety, *judged.get(s["sample_id"], (None, {})))
            for s, verdict_safety in zip(samples, safety, strict=True)]
    warehouse.replace_partitions([("sample_quality", {"domain": domain, "batch": batch},
                                   to_arrow("sample_quality", rows))])
    stored = screened_count(warehouse.rows, domain, batch)
    flagged = Counter(r["safety_reason"] for r in rows if r["safety_flag"])
    stats = _quality_stats(rows, samples, results, flagged,
                           judge_llm.model_name if requests else "none")
    scored_share = stats["judged"] / len(to_judge) if to_judge else 1.0
    context.log.info(f"{label}: {stats['judged']}/{len(to_judge)} judged, "
                     f"{sum(flagged.values())} flagged {dict(flagged)}")
    return materialize_result(stats, checks=[
        check_result("every_sample_screened", stored == len(samples),
                     {"samples": len(samples), "screened": stored}),
        check_result("judge_scored_share", scored_share >= config.min_scored_share,
                     {"scored_share": round(scored_share, 4), "valid_samples": len(to_judge),
                      "min_scored_share": config.min_scored_share}, warn=True),
    ])


def _quality_row(sample: dict[str, Any], domain: str, batch: str, safety, verdict,
                 prov: dict[str, Any]) -> dict[str, Any]:
    """One sample_quality row: the safety screen's verdict, and the judge's where it ran."""
    return {"sample_id": sample["sample_id"], "domain": domain, "batch": batch,
            "safety_flag": safety.flag, "safety_reason": safety.reason,
            "safety_score": safety.score,
            "judge_score": verdict.score if verdict else None,
            "judge_reason": verdict.reason if verdict else None,
            "judge_flag": verdict.unsafe if verdict else None,
            "judge_error": verdict.error if verdict else None, **prov}


def _quality_stats(rows: list[dict[str, Any]], samples: list[dict[str, Any]], results: list,
                   flagged: Counter, judge_model: str) -> dict[str, Any]:
    """The metadata of a partition's quality rows; ``flagged`` counts flags by reason."""
    scores = [r["judge_score"] for r in rows if r["judge_score"] is not None]
    distribution = Counter(scores)
    errors = Counter(r["judge_error"] for r in rows if r["judge_error"])
    return {
        "samples": len(rows),
        "judged": len(scores),
        "judge_mean_score": round(sum(scores) / len(scores), 3) if scores else 0.0,
        "judge_model": judge_model,
        "judge_scores": previews.table(
            [{"judge_score": k, "samples": distribution.get(k, 0)} for k in range(1, 6)],
            ["judge_score", "samples"]),
        "judge_score_chart": MetadataValue.md(plots.svg_markdown(plots.histogram_svg(
            scores, bins=5, title="Judge scores"), "judge scores")
            if scores else "_no scores_"),
        "judge_errors": previews.counts(dict(errors)),
        "safety_flagged": sum(flagged.values()),
        "safety_reasons": previews.counts(dict(flagged)),
        **summarize(results),
        "preview": previews.table(
            [{**r, "text": s["text"]} for r, s in zip(rows, samples, strict=True)][:6],
            ["text", "judge_score", "judge_reason", "safety_reason"], max_chars=160),
    }
