"""Automation: the conditions every asset carries, the sensors that register batches and
evaluate the conditions, and jobs for running stages by hand.

The same conditions drive the UI (the automation sensors, evaluated by the daemon) and
``make update`` (``personahub_assets.update`` evaluates them in process), so the scripted
path and the UI path are one path.
"""

from dagster import (
    AssetKey,
    AssetRecordsFilter,
    AssetSelection,
    AutomationCondition,
    AutomationConditionSensorDefinition,
    Config,
    DefaultScheduleStatus,
    DefaultSensorStatus,
    OpExecutionContext,
    RunRequest,
    ScheduleEvaluationContext,
    SensorEvaluationContext,
    SensorResult,
    SkipReason,
    define_asset_job,
    job,
    op,
    schedule,
    sensor,
)
from pydantic import Field

from personahub_assets.cluster import ensure_pools
from personahub_assets.lib.common.ids import stable_hash
from personahub_assets.lib.ingest.batching import (
    DOCUMENTS,
    KINDS,
    BatchSpec,
    FilePart,
    plan_batches,
    registered_pairs,
    scan_incoming,
    slice_file,
)
from personahub_assets.partitions import BATCHES, batch_partitions, domain_batch_partitions
from personahub_assets.resources.warehouse import RegisteredBatch, WarehouseResource
from personahub_assets.settings import SETTINGS

#: Run tag Dagster's run retries read: a failed automated run is re-executed this many times.
MAX_RETRIES_TAG = "dagster/max_retries"
RUN_TAGS = {MAX_RETRIES_TAG: str(SETTINGS.max_retries)}


def batch_condition() -> AutomationCondition:
    """When a batch partition runs: as soon as it can, and again when its inputs change.

    - ``missing & ~execution_failed``: a partition never materialized runs, whenever and
      however its batch was registered, with no memory of earlier evaluations; a partition
      whose latest run failed is not requested again by the condition (run retries re-run it
      a bounded number of times; after that it stays visibly failed).
    - ``any_deps_updated`` (since last handled): a partition runs again after its inputs
      were re-materialized, by automation or by hand.
    - never while it or an input is in progress, while an input is missing, or while a
      blocking check of an input failed: one batch's failure blocks only that batch.
    """
    ac = AutomationCondition
    trigger = ((ac.missing() & ~ac.execution_failed()).with_label("missing, not failed")
               | ac.any_deps_updated().since_last_handled())
    return (trigger
            & ~ac.in_progress()
            & ~ac.any_deps_missing()
            & ~ac.any_deps_in_progress()
            & ac.all_deps_blocking_checks_passed()).with_label("batch_eager")


# Automation: the model-bound stages (synthesis, instruction responses, the judge, persona
# attributes) have their own sensor, so a user can switch them off in the UI and synthesize in a
# nightly window instead (nightly_synthesis_backfill below); math verification and export
# follow each synthesized batch through the main sensor.
MODEL_STAGES = AssetSelection.assets("synthetic_data")
MODEL_SENSOR_TARGET = MODEL_STAGES | AssetSelection.assets(
    "persona_attributes", "instruction_responses", "sample_quality")
automation_sensor = AutomationConditionSensorDefinition(
    "automation_sensor",
    target=AssetSelection.all() - MODEL_SENSOR_TARGET,
    default_status=DefaultSensorStatus.RUNNING,
    run_tags=RUN_TAGS,
    description="Moves every batch from ingestion to curation and export as soon as its "
                "inputs are ready (the assets' automation conditions).",
)
synthesis_automation_sensor = AutomationConditionSensorDefinition(
    "synthesis_automation_sensor",
    target=MODEL_SENSOR_TARGET,
    default_status=DefaultSensorStatus.RUNNING,
    run_tags=RUN_TAGS,
    description="Synthesis, instruction responses, judging and persona attributes of every "
                "curated batch, as soon as it is ready. Switch it off and "
                "nightly_synthesis_backfill on to synthesize only in a nightly window.",
)

ingest_job = define_asset_job(
    "ingest_job",
    selection=AssetSelection.assets("web_documents", "text_personas", "relation_personas",
                                    "imported_personas"),
    partitions_def=batch_partitions,
    description="Ingest a batch and create its personas.",
)
curation_job = define_asset_job(
    "curation_job", selection=AssetSelection.assets("persona_hub"),
    partitions_def=batch_partitions,
    description="Curate a batch into the persona hub.",
)
synthesis_job = define_asset_job(
    "synthesis_job", selection=MODEL_STAGES, partitions_def=domain_batch_partitions,
    description="Write the synthetic samples of a domain x batch partition.",
)
verification_job = define_asset_job(
    "verification_job", selection=AssetSelection.assets("math_verification", "dataset_export"),
    partitions_def=batch_partitions,
    description="Verify a batch's math problems and export its valid samples.",
)


@schedule(
    job=synthesis_job,
    cron_schedule="0 2 * * *",
    default_status=DefaultScheduleStatus.STOPPED,
    description="Nightly GPU window: at 02:00, synthesize every curated batch that has no "
                "samples yet. Switch synthesis_automation_sensor off when you switch this on.",
)
def nightly_synthesis_backfill(context: ScheduleEvaluationContext):
    """One run per synthesis partition (domain x batch) of a curated batch that is missing."""
    done = materialized_partitions(context.instance, AssetKey("synthetic_data"))
    curated = materialized_partitions(context.instance, AssetKey("persona_hub"))
    wanted = [k for k in domain_batch_partitions.get_partition_keys(
        dynamic_partitions_store=context.instance)
        if k.keys_by_dimension["batch"] in curated and k not in done]
    if not wanted:
        return SkipReason("every curated batch is synthesized")
    day = f"{context.scheduled_execution_time:%Y%m%d}"
    return [RunRequest(partition_key=key, run_key=f"nightly-{day}-{key}", tags=RUN_TAGS)
            for key in wanted]


def materialized_partitions(instance, key: AssetKey, page: int = 1000) -> set[str]:
    """Partition keys of an asset that have a materialization (public instance API only)."""
    found: set[str] = set()
    cursor = None
    while True:
        result = instance.fetch_materializations(AssetRecordsFilter(asset_key=key), limit=page,
                                                 cursor=cursor)
        found.update(r.partition_key for r in result.records if r.partition_key is not None)
        if not result.has_more:
            return found
        cursor = result.cursor


def register_incoming(warehouse: WarehouseResource, incoming=None,
                      max_records: int | None = None) -> list[RegisteredBatch]:
    """Register the files of the incoming folder that no batch holds yet (see
    :func:`personahub_assets.lib.ingest.batching.plan_batches`)."""
    incoming = SETTINGS.incoming_dir if incoming is None else incoming
    files = scan_incoming(incoming)
    if not files:
        return []
    known = registered_pairs(warehouse.rows(
        "SELECT path, content_hash FROM batch_files UNION "
        "SELECT path, content_hash FROM retracted_files"))  # a retracted file stays out
    specs = plan_batches(files, max_records or SETTINGS.batch_records, known)
    return warehouse.register_batches(specs)


def register_source(warehouse: WarehouseResource, source: str, kind: str = DOCUMENTS,
                    max_records: int | None = None, records: int | None = None
                    ) -> list[RegisteredBatch]:
    """Register one file (cut into slices of ``max_records``) or a Hugging Face dataset
    (``hf:NAME``; ``records`` rows are cut into slices) as batches of ``kind``."""
    from pathlib import Path

    from personahub_assets.lib.ingest.batching import count_records, file_hash

    if kind not in KINDS:
        raise ValueError(f"kind must be one of {KINDS}, got {kind!r}")
    size = max_records or SETTINGS.batch_records
    if source.startswith("hf:"):
        content = stable_hash("hf", source)
        if records is None:
            specs = [BatchSpec(kind, (FilePart(source, content),), 0)]
        else:
            specs = slice_file(source, content, records, size, kind)
    else:
        path = Path(source)
        if not path.is_file():
            raise FileNotFoundError(f"no such file: {source}")
        count = count_records(path)
        if count is None or kind != DOCUMENTS:
            specs = [BatchSpec(kind, (FilePart(source, file_hash(path)),), count or 0)]
        else:
            specs = slice_file(source, file_hash(path), count, size, kind)
    return warehouse.register_batches(specs)


def partitions_to_add(instance, registered_keys: list[str]) -> list[str]:
    """Keys in the warehouse's ledger that the Dagster instance does not know yet."""
    known = set(instance.get_dynamic_partitions(BATCHES))
    return [k for k in registered_keys if k not in known]


def add_batch_partitions(instance, keys: list[str]) -> None:
    """Add batch partitions, the concurrency pools' limits written before any run of them."""
    ensure_pools(instance)
    instance.add_dynamic_partitions(BATCHES, keys)


def ledger_keys(warehouse: WarehouseResource) -> list[str]:
    """Every registered batch key, in sequence order."""
    return [r["batch"] for r in warehouse.rows("SELECT batch FROM batches ORDER BY seq")]


@sensor(
    minimum_interval_seconds=30,
    default_status=DefaultSensorStatus.RUNNING,
    description="Registers new files in data/incoming/ (documents) and "
                "data/incoming/personas/ (persona sets) as batches; the automation sensors "
                "then carry each batch through the graph.",
)
def incoming_files_sensor(context: SensorEvaluationContext, warehouse: WarehouseResource):
    """Adds a dynamic partition for every newly registered batch (and any registered batch
    the instance does not know yet); requests no runs itself."""
    registered = register_incoming(warehouse)
    new = [b.key for b in registered if b.is_new]
    add = partitions_to_add(context.instance, ledger_keys(warehouse))
    if not add:
        return SkipReason("no new files" if not registered else "files already registered")
    context.log.info(f"registered {len(new)} new batches; adding {len(add)} partitions")
    ensure_pools(context.instance)  # before the first runs of them claim pool slots at once
    return SensorResult(dynamic_partitions_requests=[batch_partitions.build_add_request(add)])


class RegisterConfig(Config):
    """A source to register as batches from the UI's launchpad."""

    source: str = Field(description="A file, or hf:NAME?config=C&split=S.")
    kind: str = Field(default=DOCUMENTS, description="documents or personas.")
    max_records: int = Field(default=0, description="Records per batch (0: "
                                                    "PERSONAHUB_BATCH_RECORDS).")
    records: int = Field(default=0, description="Rows of a Hugging Face dataset, to cut it "
                                                "into slices (0: one batch).")


@op(description="Registers a file or a Hugging Face dataset as batches and adds their "
                "partitions; automation takes it from there.")
def register_source_op(context: OpExecutionContext, config: RegisterConfig,
                       warehouse: WarehouseResource) -> None:
    registered = register_source(warehouse, config.source, config.kind,
                                 config.max_records or None, config.records or None)
    add = partitions_to_add(context.instance, [b.key for b in registered])
    if add:
        add_batch_partitions(context.instance, add)
    context.log.info(f"{config.source}: {sum(b.is_new for b in registered)} new batches "
                     f"of {len(registered)}: {[b.key for b in registered]}")


@job(description="Register a file or dataset as batches (the UI's way to add data).")
def register_batches():
    register_source_op()


JOBS = [ingest_job, curation_job, synthesis_job, verification_job, register_batches]
SCHEDULES = [nightly_synthesis_backfill]
SENSORS = [incoming_files_sensor, automation_sensor, synthesis_automation_sensor]
