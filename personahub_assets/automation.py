"""Jobs (one per stage, so each can be launched and backfilled on its own) and schedules."""

from pathlib import Path

from dagster import (
    AssetKey,
    AssetSelection,
    DagsterEventType,
    DefaultScheduleStatus,
    DefaultSensorStatus,
    RunRequest,
    ScheduleEvaluationContext,
    SensorEvaluationContext,
    SensorResult,
    SkipReason,
    define_asset_job,
    schedule,
    sensor,
)

from personahub_assets.lib.ids import stable_hash
from personahub_assets.lib.sources import expand_paths
from personahub_assets.partitions import domain_shard_partitions, shard_partitions
from personahub_assets.settings import SETTINGS

ingest_job = define_asset_job(
    "ingest_job",
    selection=AssetSelection.assets("web_documents", "text_personas", "relation_personas"),
    description="Ingest a shard of documents and create its personas.",
)
curation_job = define_asset_job(
    "curation_job", selection=AssetSelection.assets("imported_personas", "persona_hub"),
    description="Import persona sets, then deduplicate all personas into the persona hub.",
)
synthesis_job = define_asset_job(
    "synthesis_job", selection=AssetSelection.assets("synthetic_data"),
    description="Write synthetic samples for one domain x shard partition.",
)
verification_job = define_asset_job(
    "verification_job", selection=AssetSelection.assets("math_verification"),
    description="Verify the math problems of one shard by majority vote of k solvers.",
)
export_job = define_asset_job(
    "export_job", selection=AssetSelection.assets("dataset_export"),
    description="Export the valid samples of one domain.",
)

attributes_job = define_asset_job(
    "attributes_job", selection=AssetSelection.assets("persona_attributes"),
    description="Find occupation, domain, expertise and language of a shard's hub personas.",
)
responses_job = define_asset_job(
    "responses_job", selection=AssetSelection.assets("instruction_responses"),
    description="Constrain, answer and verify the instruction samples of one shard.",
)
quality_job = define_asset_job(
    "quality_job", selection=AssetSelection.assets("sample_quality"),
    description="Judge and safety-screen the samples of one domain x shard partition.",
)

JOBS = [ingest_job, curation_job, synthesis_job, verification_job, export_job,
        attributes_job, responses_job, quality_job]


def partitions_to_refresh(
    instance, asset_key: AssetKey, upstream_key: AssetKey, partition_keys: list[str]
) -> tuple[list[str], list[str], int | None]:
    """(missing, stale, upstream storage id): partitions never materialized, and partitions
    materialized before the upstream asset's latest materialization."""
    latest = instance.get_latest_storage_id_by_partition(
        asset_key, DagsterEventType.ASSET_MATERIALIZATION)
    records = instance.fetch_materializations(upstream_key, limit=1).records
    upstream_id = records[0].storage_id if records else None
    missing = [k for k in partition_keys if k not in latest]
    stale = [k for k in partition_keys
             if k in latest and upstream_id is not None and latest[k] < upstream_id]
    return missing, stale, upstream_id


@schedule(
    job=synthesis_job,
    cron_schedule="0 * * * *",
    default_status=DefaultScheduleStatus.STOPPED,
    description="Every hour: launch the synthetic_data partitions that are missing, or older "
                "than the latest persona_hub.",
)
def synthesis_refresh_schedule(context: ScheduleEvaluationContext):
    """Launches missing or stale synthesis partitions, at most MAX_RUNS_PER_TICK per tick."""
    keys = domain_shard_partitions.get_partition_keys()
    missing, stale, upstream_id = partitions_to_refresh(
        context.instance, AssetKey("synthetic_data"), AssetKey("persona_hub"), keys)
    if upstream_id is None:
        return SkipReason("persona_hub has never been materialized")
    todo = (missing + stale)[:MAX_RUNS_PER_TICK]
    if not todo:
        return SkipReason(f"all {len(keys)} synthesis partitions are up to date")
    context.log.info(f"{len(missing)} missing and {len(stale)} stale synthesis partitions; "
                     f"launching {len(todo)}")
    return [RunRequest(partition_key=k, run_key=f"{k}@{upstream_id}",
                       tags={"personahub/reason": "missing" if k in missing else "stale"})
            for k in todo]


MAX_RUNS_PER_TICK = 50
SCHEDULES = [synthesis_refresh_schedule]

INCOMING_DIR = SETTINGS.data_dir / "incoming"


def incoming_fingerprint(directory: Path) -> str | None:
    """A hash of the names, sizes and modification times of the files waiting in a folder."""
    try:
        files = expand_paths(str(directory))
    except FileNotFoundError:
        return None
    return stable_hash(*[(p.name, p.stat().st_size, p.stat().st_mtime_ns) for p in files])


@sensor(
    job=ingest_job,
    minimum_interval_seconds=30,
    default_status=DefaultSensorStatus.STOPPED,
    description="Ingests data/incoming/ (every shard) when files are added or changed there.",
)
def incoming_files_sensor(context: SensorEvaluationContext):
    """Launches the ingest job on every shard with the incoming folder as its source."""
    fingerprint = incoming_fingerprint(INCOMING_DIR)
    if fingerprint is None:
        return SkipReason(f"no supported files in {INCOMING_DIR}")
    if fingerprint == context.cursor:
        return SkipReason("no new or changed files")
    config = {"ops": {"web_documents": {"config": {"source": str(INCOMING_DIR)}}}}
    return SensorResult(
        run_requests=[RunRequest(partition_key=key, run_key=f"incoming-{fingerprint}-{key}",
                                 run_config=config)
                      for key in shard_partitions.get_partition_keys()],
        cursor=fingerprint,
    )


SENSORS = [incoming_files_sensor]
