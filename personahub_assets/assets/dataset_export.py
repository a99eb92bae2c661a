"""Export: the valid samples of a domain and batch as JSONL and Parquet files under
``data/exports/<domain>/``, one pair of files per batch, so the folder is the domain's dataset."""

from pathlib import Path

from dagster import (
    AssetCheckSpec,
    AssetDep,
    AssetExecutionContext,
    Config,
    EnvVar,
    MaterializeResult,
    MetadataValue,
    MultiToSingleDimensionPartitionMapping,
    asset,
)
from pydantic import Field

from personahub_assets import previews
from personahub_assets.assets.common import check_result, materialize_result
from personahub_assets.automation import batch_condition
from personahub_assets.lib.common.tables import TABLES
from personahub_assets.lib.export.cards import gather_facts, read_exported, render_card, write_card
from personahub_assets.lib.export.export import (
    count_jsonl,
    push_to_hub,
    release_rows,
    release_schema,
    remove_dataset_files,
    write_dataset,
)
from personahub_assets.lib.export.queries import (
    domain_screening,
    samples_to_export,
    valid_sample_count,
)
from personahub_assets.lib.quality.quality import domain_columns, export_fields, split_for_export
from personahub_assets.partitions import batch_partitions
from personahub_assets.prompts import DOMAINS, SYNTHESIS_TEMPLATES
from personahub_assets.resources.warehouse import WarehouseResource
from personahub_assets.settings import SETTINGS


class ExportConfig(Config):
    """Where the dataset files go, and whether they also go to the Hugging Face Hub."""

    exports_dir: str = Field(default=str(SETTINGS.exports_dir),
                             description="Files land in <exports_dir>/<domain>/<batch>.*")
    hub_repo: str = Field(default="", description="Push the domain's folder to this Hub "
                                                  "dataset repo, e.g. org/personahub-{domain} "
                                                  "(needs HF_TOKEN).")
    min_judge_score: int = Field(default=0, description="Leave out samples the judge scored "
                                                        "under this (0 = no minimum; 1-5).")
    license: str = Field(default=SETTINGS.dataset_license,
                         description="License id written into each domain's dataset card.")


@asset(
    partitions_def=batch_partitions,
    deps=[AssetDep("synthetic_data", partition_mapping=MultiToSingleDimensionPartitionMapping(
              partition_dimension_name="batch")),
          "math_verification",
          AssetDep("sample_quality", partition_mapping=MultiToSingleDimensionPartitionMapping(
              partition_dimension_name="batch"))],
    automation_condition=batch_condition(),
    group_name="export",
    kinds={"parquet", "json"},
    check_specs=[AssetCheckSpec(
            "export_matches_warehouse", asset="dataset_export",
            partitions_def=batch_partitions,
                                blocking=True,
                                description="The files parse and hold exactly the valid "
                                            "rows that the safety screen and judge keep.")],
)
def dataset_export(
    context: AssetExecutionContext, config: ExportConfig, warehouse: WarehouseResource
) -> MaterializeResult:
    """Valid samples of one batch, for every domain, in the PersonaHub release fields plus our
    full columns, as ``<domain>/<batch>.jsonl`` and ``.parquet``: each domain's folder is one
    dataset (``datasets.load_dataset("parquet", data_files="<folder>/*.parquet")``) that
    grows by batch.

    Math rows also carry the majority answer of the verification solvers, its vote count and
    whether the problem is verified.
    """
    batch = context.partition_key
    exported, checks, extra, preview = [], [], {}, []
    for domain in DOMAINS:
        rows, in_file, expected, files = _export_one(domain, batch, config, warehouse)
        exported.append({"domain": domain, "rows": len(rows), "in_file": in_file,
                         "expected": expected,
                         "verified": sum(bool(r.get("verified")) for r in rows)})
        checks.append(in_file == expected == len(rows))
        extra.update(files)
        preview += rows[:2]
    if config.hub_repo:
        token = EnvVar("HF_TOKEN").get_value("")
        if not token:
            raise ValueError("hub_repo is set but HF_TOKEN is not: set the token to push")
        for domain in DOMAINS:
            repo = config.hub_repo.format(domain=domain)
            extra[f"hub_url_{domain}"] = MetadataValue.url(
                push_to_hub(Path(config.exports_dir) / domain, repo, token))
    total = sum(p["rows"] for p in exported)
    context.log.info(f"exported {total} samples of batch {batch} in {len(DOMAINS)} domains")
    return materialize_result(
        {
            "rows": total,
            "verified_rows": sum(p["verified"] for p in exported),
            "domains": len(exported),
            **extra,
            "per_domain": previews.table(
                exported, ["domain", "rows", "in_file", "verified"]),
            "preview": previews.table(
                preview, ["input persona", "synthesized text"], max_chars=200),
        },
        row_count=total,
        checks=[check_result(
            "export_matches_warehouse", all(checks),
            {"rows_in_jsonl": sum(p["in_file"] for p in exported),
             "valid_rows_in_warehouse": sum(p["expected"] for p in exported)})],
    )


def _export_one(domain: str, batch: str, config: ExportConfig, warehouse: WarehouseResource):
    """Write one domain x batch partition's files; (rows, rows in the file, valid rows in the
    warehouse, file metadata)."""
    samples = samples_to_export(warehouse.rows, domain, batch)
    samples, dropped = split_for_export(samples, config.min_judge_score)
    samples = [domain_columns(dict(s), domain) for s in samples]
    if domain != "math":
        for row in samples:
            for key in ("verified_answer", "answer_votes", "verified"):
                row.pop(key)
    template = SYNTHESIS_TEMPLATES[domain]
    rows = release_rows(samples, description=f"{domain} ({template.name} v{template.version})")
    directory = Path(config.exports_dir) / domain
    expected = valid_sample_count(warehouse.rows, domain, batch)
    expected -= sum(dropped.values())  # left out by the safety screen or the judge, counted
    if not rows:
        remove_dataset_files(directory, batch)
        _write_card(domain, directory, config, warehouse)
        return rows, 0, expected, {}
    schema = release_schema(TABLES["synthetic_samples"], with_math=domain == "math")
    schema = export_fields(schema, domain)
    paths = write_dataset(rows, directory, batch, schema)
    card = _write_card(domain, directory, config, warehouse)
    return rows, count_jsonl(paths["jsonl"]), expected, {
        f"jsonl_{domain}": MetadataValue.path(str(paths["jsonl"])),
        f"parquet_{domain}": MetadataValue.path(str(paths["parquet"])),
        f"dataset_card_{domain}": MetadataValue.path(str(card)),
        f"left_out_{domain}": MetadataValue.json(dict(dropped))}


def _write_card(domain: str, directory: Path, config: ExportConfig,
                warehouse: WarehouseResource) -> Path:
    """Refresh the domain folder's README.md from the warehouse and the files in the folder."""
    exported = read_exported(directory)
    with warehouse.reader() as rows:  # the card's queries share one session
        _, dropped = split_for_export(domain_screening(rows, domain), config.min_judge_score)
        facts = gather_facts(rows, domain, exported, dropped, config.license,
                             config.min_judge_score,
                             columns=list(exported[0]) if exported else [])
    return write_card(directory, render_card(facts))
