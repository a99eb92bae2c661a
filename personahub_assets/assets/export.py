"""Export: the valid samples of a domain as JSONL and Parquet under ``data/exports/<domain>/``."""

import os
from pathlib import Path

from dagster import (
    AllPartitionMapping,
    AssetCheckResult,
    AssetCheckSeverity,
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

from personahub_assets.lib import markdown
from personahub_assets.lib.cards import gather_facts, render_card, write_card
from personahub_assets.lib.export import (
    count_jsonl,
    push_to_hub,
    release_rows,
    save_hf_dataset,
    write_dataset,
)
from personahub_assets.lib.quality import (
    EXPORT_COLUMNS,
    EXPORT_JOINS,
    domain_columns,
    split_for_export,
)
from personahub_assets.partitions import domain_partitions
from personahub_assets.prompts import SYNTHESIS_TEMPLATES
from personahub_assets.resources.warehouse import WarehouseResource
from personahub_assets.settings import SETTINGS


class ExportConfig(Config):
    """Where the dataset files go, and whether they also go to the Hugging Face Hub."""

    exports_dir: str = Field(default=str(SETTINGS.exports_dir),
                             description="Files land in <exports_dir>/<domain>/.")
    save_hf_dataset: bool = Field(default=True,
                                  description="Also save a `datasets` dataset to disk.")
    hub_repo: str = Field(default="", description="Push to this Hub dataset repo, e.g. "
                                                  "org/personahub-{domain} (needs HF_TOKEN).")
    min_judge_score: int = Field(default=0, description="Leave out samples the judge scored "
                                                        "under this (0 = no minimum; 1-5).")
    license: str = Field(default=SETTINGS.dataset_license,
                         description="License id written into the dataset card.")


@asset(
    partitions_def=domain_partitions,
    deps=[AssetDep("synthetic_data", partition_mapping=MultiToSingleDimensionPartitionMapping(
              partition_dimension_name="domain")),
          AssetDep("math_verification", partition_mapping=AllPartitionMapping()),
          AssetDep("sample_quality", partition_mapping=MultiToSingleDimensionPartitionMapping(
              partition_dimension_name="domain"))],
    group_name="export",
    kinds={"parquet", "json"},
    check_specs=[AssetCheckSpec("export_matches_warehouse", asset="dataset_export",
                                blocking=True,
                                description="The files parse and hold exactly the valid rows.")],
)
def dataset_export(
    context: AssetExecutionContext, config: ExportConfig, warehouse: WarehouseResource
) -> MaterializeResult:
    """Valid samples of one domain in the PersonaHub release fields plus our full columns.

    Math rows also carry the majority answer of the verification solvers, its vote count and
    whether the problem is verified.
    """
    domain = context.partition_key
    samples = warehouse.rows(
        "SELECT s.*, a.answer AS verified_answer, a.votes AS answer_votes, "
        "coalesce(a.verified, false) AS verified, " + EXPORT_COLUMNS + " FROM synthetic_samples s "
        "LEFT JOIN math_answers a USING (sample_id) " + EXPORT_JOINS +
        " WHERE s.domain = ? AND s.valid ORDER BY s.shard, s.sample_id", [domain])
    samples, dropped = split_for_export(samples, config.min_judge_score)
    samples = [domain_columns(dict(s), domain) for s in samples]
    if domain != "math":
        for row in samples:
            for key in ("verified_answer", "answer_votes", "verified"):
                row.pop(key)
    template = SYNTHESIS_TEMPLATES[domain]
    rows = release_rows(samples, description=f"{domain} ({template.name} v{template.version})")
    directory = Path(config.exports_dir) / domain
    paths = write_dataset(rows, directory, domain)
    expected = warehouse.scalar(
        "SELECT count(*) FROM synthetic_samples WHERE domain = ? AND valid", [domain])
    in_file = count_jsonl(paths["jsonl"])
    card = write_card(directory, render_card(gather_facts(
        warehouse.rows, domain, rows, dropped, config.license, config.min_judge_score,
        columns=list(rows[0]) if rows else [])))
    verified = sum(bool(r.get("verified")) for r in rows)
    extra: dict = {}
    if config.save_hf_dataset and rows:
        extra["hf_dataset"] = MetadataValue.path(str(save_hf_dataset(rows, directory)))
    if config.hub_repo:
        token = os.environ.get("HF_TOKEN", "")
        if not token:
            raise ValueError("hub_repo is set but HF_TOKEN is not: set the token to push")
        repo = config.hub_repo.format(domain=domain)
        extra["hub_url"] = MetadataValue.url(push_to_hub(directory / "hf_dataset", repo, token))
    context.log.info(f"exported {len(rows)} {domain} samples to {directory}")
    return MaterializeResult(
        metadata={
            "rows": len(rows),
            **({"verified_rows": verified} if domain == "math" else {}),
            "left_out": MetadataValue.md(markdown.counts(dict(dropped))),
            "dataset_card": MetadataValue.path(str(card)),
            "jsonl": MetadataValue.path(str(paths["jsonl"])),
            "parquet": MetadataValue.path(str(paths["parquet"])),
            **extra,
            "preview": MetadataValue.md(markdown.table(
                rows[:5], ["input persona", "synthesized text"], max_chars=200)),
        },
        check_results=[AssetCheckResult(
            check_name="export_matches_warehouse",
            passed=in_file == len(rows) and len(rows) + sum(dropped.values()) == expected,
            severity=AssetCheckSeverity.ERROR,
            metadata={"rows_in_jsonl": in_file, "valid_rows_in_warehouse": expected,
                      "left_out": sum(dropped.values())})],
    )
