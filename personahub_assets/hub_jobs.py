"""Take a batch back out, or rebuild the hub by replay: the ``retract_batch`` and
``rebuild_hub`` jobs in the UI, and what `make retract BATCH=...`
(:mod:`personahub_assets.cli.retract`) calls.

Retracting a batch removes every row derived from it in every table and its export files,
records its files so the incoming folder does not register them again, deletes its dynamic
partition, and replays the hub from the batch's sequence number onward
(:func:`personahub_assets.lib.curation.hub.retract_batch`). Later batches whose hub rows
changed get a ``persona_hub`` materialization event, so the automation conditions re-run
their synthesis and export partitions (``any_deps_updated``); ``make update`` does it in
process.
"""


import logging

from dagster import (
    AssetMaterialization,
    DagsterInstance,
    OpExecutionContext,
    job,
    op,
)
from pydantic import Field

from personahub_assets.assets.persona_hub import HubConfig
from personahub_assets.lib.curation import hub
from personahub_assets.partitions import BATCHES
from personahub_assets.resources.embeddings import EmbeddingsResource
from personahub_assets.resources.warehouse import WarehouseResource
from personahub_assets.settings import SETTINGS

log = logging.getLogger("personahub_assets.hub_jobs")


def _settings(warehouse: WarehouseResource, embeddings: EmbeddingsResource,
              config: HubConfig | None = None) -> hub.HubSettings:
    """The ledger's settings (what the hub was built with), else the config's defaults."""
    return (hub.ledger_settings(warehouse.session)
            or (config or HubConfig()).settings(embeddings.describe()))


def _events(retraction: hub.Retraction) -> list[AssetMaterialization]:
    return [AssetMaterialization(
        asset_key="persona_hub", partition=batch,
        description=f"hub replayed after retracting batch {retraction.batch}",
        metadata={"retracted": retraction.batch}) for batch in retraction.changed_batches]


def retract(batch: str, warehouse: WarehouseResource, embeddings: EmbeddingsResource,
            instance: DagsterInstance | None, exports_dir: str | None = None
            ) -> hub.Retraction:
    """Retract ``batch`` (see the module docstring); ``instance`` None leaves Dagster alone."""
    settings = _settings(warehouse, embeddings)
    encoder = embeddings.build() if settings.embedding_dedup else None
    retraction = hub.retract_batch(warehouse.session, batch, settings, encoder,
                                   exports_dir or str(SETTINGS.exports_dir))
    if instance is not None:
        if batch in instance.get_dynamic_partitions(BATCHES):
            instance.delete_dynamic_partition(BATCHES, batch)
        for event in _events(retraction):
            instance.report_runless_asset_event(event)
    return retraction


def summary(r: hub.Retraction) -> str:
    deleted = ", ".join(f"{t} {n}" for t, n in r.rows_deleted.items() if n)
    return (f"retracted batch {r.batch} (seq {r.seq}): deleted {deleted or 'no rows'}; "
            f"{len(r.files_deleted)} export files removed; hub replayed for "
            f"{len(r.replayed)} later batches: {r.personas_admitted} personas admitted, "
            f"{r.personas_left} left, {r.samples_removed} samples removed; batches to "
            f"re-synthesize and re-export: {', '.join(r.changed_batches) or 'none'}")


class RetractConfig(HubConfig):
    batch: str = Field(description="Key of the batch to retract.")


@op(description="Removes a batch and everything derived from it, then replays the hub.")
def retract_batch_op(context: OpExecutionContext, config: RetractConfig,
                     warehouse: WarehouseResource, embeddings: EmbeddingsResource) -> None:
    settings = _settings(warehouse, embeddings, config)
    encoder = embeddings.build() if settings.embedding_dedup else None
    retraction = hub.retract_batch(warehouse.session, config.batch, settings, encoder,
                                   str(SETTINGS.exports_dir))
    if config.batch in context.instance.get_dynamic_partitions(BATCHES):
        context.instance.delete_dynamic_partition(BATCHES, config.batch)
    for event in _events(retraction):
        context.log_event(event)
    context.log.info(summary(retraction))


@job(description="Retract a batch: every row and export file derived from it goes, and the "
                 "hub is replayed from its sequence number onward.")
def retract_batch():
    retract_batch_op()


@op(description="Clears the hub's state and replays every batch in sequence order.")
def rebuild_hub_op(context: OpExecutionContext, config: HubConfig,
                   warehouse: WarehouseResource, embeddings: EmbeddingsResource) -> None:
    settings = config.settings(embeddings.describe())
    encoder = embeddings.build() if settings.embedding_dedup else None
    before = {r["batch"]: r["kept"] for r in warehouse.rows(
        "SELECT batch, kept FROM hub_ledger")}
    outcomes = hub.rebuild(warehouse.session, settings, encoder,
                           on_batch=lambda o: context.log.info(
                               f"replayed {o.batch} (seq {o.seq}): {o.kept} kept of "
                               f"{o.personas_in}"))
    for o in outcomes:
        context.log_event(AssetMaterialization(
            asset_key="persona_hub", partition=o.batch, description="rebuilt by replay",
            metadata={"kept": o.kept, "kept_before": before.get(o.batch, 0)}))


@job(description="Rebuild the persona hub by replaying every batch in sequence order (for "
                 "new dedup settings, or to verify the hub: the result is identical).")
def rebuild_hub():
    rebuild_hub_op()


HUB_JOBS = [retract_batch, rebuild_hub]
