"""Warehouse maintenance: compaction of the small files that partition writes leave behind."""

from dagster import (
    Config,
    DefaultScheduleStatus,
    MetadataValue,
    OpExecutionContext,
    Output,
    ScheduleDefinition,
    job,
    op,
)
from pydantic import Field

from personahub_assets.resources.warehouse import WarehouseResource


class CompactConfig(Config):
    retain_snapshots_hours: float = Field(
        default=24.0, description="Snapshots younger than this stay readable (time travel); "
                                  "older ones, and the files only they need, are removed.")


@op(description="Merge small files, rewrite files with many deleted rows, expire old snapshots "
                "and delete unreferenced files (DuckLake); CHECKPOINT the local file.")
def compact_warehouse(context: OpExecutionContext, config: CompactConfig,
                      warehouse: WarehouseResource):
    report = warehouse.compact(retain_snapshots_s=config.retain_snapshots_hours * 3600)
    context.log.info(f"warehouse maintenance: {report}")
    return Output(report, metadata={k: MetadataValue.int(v) for k, v in report.items()})


@job(description="Compact the warehouse. On a DuckLake, run it daily: many batch partitions "
                 "leave many small Parquet files.")
def warehouse_maintenance():
    compact_warehouse()


#: Off by default; switch it on in the UI (or the Helm values) for a cluster.
warehouse_maintenance_schedule = ScheduleDefinition(
    job=warehouse_maintenance, cron_schedule="30 3 * * *",
    default_status=DefaultScheduleStatus.STOPPED)
