"""`make update`: register what is new, then let the automation conditions carry it through.

Registers the files under ``data/incoming/`` that no batch holds yet, then evaluates the
assets' automation conditions in process (the same conditions the UI's automation sensors
evaluate, no daemon needed) and executes what they request, to completion, in the Dagster
instance under ``$DAGSTER_HOME``, until nothing more is requested. ``--select ASSETS`` stops
at those assets (the named assets and everything upstream of them). A failed run is retried
``PERSONAHUB_MAX_RETRIES`` times, then left failed and reported; the exit status is non-zero
only if a run failed.
"""

from __future__ import annotations

import argparse
import logging
import sys
import time
from collections import defaultdict
from collections.abc import Mapping
from dataclasses import dataclass, field

from dagster import (
    AssetKey,
    AssetsDefinition,
    AssetSelection,
    DagsterInstance,
    Definitions,
    MultiPartitionKey,
    MultiPartitionsDefinition,
    evaluate_automation_conditions,
    materialize,
)

from personahub_assets.automation import (
    MAX_RETRIES_TAG,
    add_batch_partitions,
    ledger_keys,
    materialized_partitions,
    partitions_to_add,
    register_incoming,
)
from personahub_assets.resources.warehouse import RegisteredBatch, WarehouseResource
from personahub_assets.settings import SETTINGS

log = logging.getLogger("personahub_assets.update")


@dataclass
class RunOutcome:
    """One requested execution: which assets and partition, and how it ended."""

    assets: list[str]
    partition: str | None
    success: bool
    attempts: int
    run_id: str


@dataclass
class UpdateReport:
    """What an update registered, ran and left alone."""

    registered: list[RegisteredBatch] = field(default_factory=list)
    runs: list[RunOutcome] = field(default_factory=list)
    evaluations: int = 0
    skipped: dict[str, list[str]] = field(default_factory=dict)

    @property
    def failed(self) -> list[RunOutcome]:
        return [r for r in self.runs if not r.success]

    def summary(self) -> str:
        new = [b for b in self.registered if b.is_new]
        lines = [f"registered {len(new)} new batches"
                 + "".join(f"\n  {b.key} #{b.seq} ({b.kind})" for b in new)]
        ok = [r for r in self.runs if r.success]
        lines.append(f"ran {len(self.runs)} runs ({len(ok)} succeeded, {len(self.failed)} "
                     f"failed) in {self.evaluations} automation evaluations")
        for r in self.runs:
            status = "ok" if r.success else "FAILED"
            retries = f", {r.attempts - 1} retries" if r.attempts > 1 else ""
            lines.append(f"  {'+'.join(r.assets)}[{r.partition or '-'}] {status}{retries}")
        skipped = {k: v for k, v in self.skipped.items() if v}
        lines.append(f"skipped (not materialized, not requested): "
                     f"{sum(len(v) for v in skipped.values())} partitions")
        for asset, keys in skipped.items():
            if keys:
                lines.append(f"  {asset}: {len(keys)} ({', '.join(keys[:4])}"
                             f"{', ...' if len(keys) > 4 else ''})")
        return "\n".join(lines)


def sync_partitions(instance: DagsterInstance, warehouse: WarehouseResource) -> list[str]:
    """Add every registered batch the instance does not know yet as a partition (and give
    the concurrency pools their limits before any run of them starts)."""
    add = partitions_to_add(instance, ledger_keys(warehouse))
    if add:
        add_batch_partitions(instance, add)
    return add


def _execute(all_assets: list[AssetsDefinition], resources: dict, instance: DagsterInstance,
             assets: list[str], partition: str | None, max_retries: int,
             op_config: Mapping[str, dict] | None = None) -> RunOutcome:
    """Execute one requested run to completion, retrying a failure ``max_retries`` times.
    ``op_config`` gives config to the assets of the run that it names."""
    run_config = {"ops": {a: {"config": op_config[a]} for a in assets if a in op_config}} \
        if op_config else None
    attempt = 0
    while True:
        attempt += 1
        tags = {MAX_RETRIES_TAG: str(max_retries), "personahub/driver": "update"}
        if attempt > 1:
            tags["dagster/retry_number"] = str(attempt - 1)
        result = materialize(
            all_assets, selection=[AssetKey(a) for a in assets], partition_key=partition,
            instance=instance, resources=resources, tags=tags, raise_on_error=False,
            run_config=run_config)
        if result.success or attempt > max_retries:
            return RunOutcome(assets, partition, result.success, attempt, result.run_id)
        log.warning(f"{'+'.join(assets)}[{partition}] failed (run {result.run_id}); "
                    f"retry {attempt}/{max_retries}")


def run_update(assets: list[AssetsDefinition], resources: dict, instance: DagsterInstance,
               select: list[str] | None = None, register: bool = True,
               max_retries: int | None = None, max_evaluations: int = 200,
               incoming=None, max_records: int | None = None,
               op_config: Mapping[str, dict] | None = None) -> UpdateReport:
    """Register new incoming files, then evaluate and execute automation until it is idle.

    ``assets`` and ``resources`` are the code location's (the tests pass their own); the
    conditions evaluated are the ones the assets carry. ``op_config`` is config for the runs'
    assets, by asset name (the demo's limits); automation decides what runs, not the config.
    """
    warehouse = resources["warehouse"]
    defs = Definitions(assets=assets, resources=resources)
    report = UpdateReport()
    if register:
        report.registered = register_incoming(warehouse, incoming, max_records)
    sync_partitions(instance, warehouse)
    selection = (AssetSelection.assets(*select).upstream() if select
                 else AssetSelection.all())
    retries = SETTINGS.max_retries if max_retries is None else max_retries
    cursor = None
    specs = {spec.key: spec for spec in defs.resolve_all_asset_specs()}
    known = {k.to_user_string() for k in specs}
    if unknown := sorted(set(select or ()) - known):
        raise ValueError(f"unknown assets {unknown}; known: {sorted(known)}")
    selected = selection.resolve(defs.resolve_asset_graph())
    started = time.perf_counter()
    while report.evaluations < max_evaluations:
        result = evaluate_automation_conditions(defs=defs, instance=instance,
                                                asset_selection=selection, cursor=cursor)
        cursor = result.cursor
        report.evaluations += 1
        if not result.total_requested:
            break
        by_partition: dict[str | None, list[str]] = defaultdict(list)
        for key in sorted(selected, key=lambda k: k.to_user_string()):
            for partition in sorted(result.get_requested_partitions(key), key=str):
                by_partition[_typed(specs[key], partition)].append(key.to_user_string())
        for names, partition in _runs(by_partition, warehouse):
            outcome = _execute(assets, resources, instance, names, partition, retries,
                               op_config)
            report.runs.append(outcome)
            done = len(report.runs)
            rate = done / max(time.perf_counter() - started, 1e-9)
            log.info(f"[{done} runs, {rate * 60:.1f}/min] {'+'.join(names)}[{outcome.partition}] "
                     f"{'ok' if outcome.success else 'FAILED'}")
    report.skipped = _unmaterialized(instance, specs, selected)
    return report


def _typed(spec, partition):
    """A requested partition key as its partitions definition types it (a domain x batch key
    as a ``MultiPartitionKey``), so its batch is read by dimension, not parsed."""
    if isinstance(spec.partitions_def, MultiPartitionsDefinition):
        return spec.partitions_def.get_partition_key_from_str(str(partition))
    return partition


def _runs(by_partition: dict, warehouse: WarehouseResource) -> list[tuple[list[str], str]]:
    """Requested (assets, partition) runs in batch sequence order, so earlier batches are
    ingested first. One partition per run: Dagster 1.13 records a partitioned check's result
    for single-partition runs only, and the conditions read those results."""
    seq = {r["batch"]: r["seq"] for r in warehouse.rows("SELECT batch, seq FROM batches")}

    def order(item):
        key = item[0]
        batch = key.keys_by_dimension["batch"] if isinstance(key, MultiPartitionKey) else key
        return (seq.get(batch, 0), str(item[0]))

    return [(names, partition) for partition, names in sorted(by_partition.items(), key=order)]


def _unmaterialized(instance: DagsterInstance, specs: dict, selected) -> dict[str, list[str]]:
    """Partitions of the selected assets that exist but were never materialized."""
    out = {}
    for key in sorted(selected, key=lambda k: k.to_user_string()):
        partitions_def = specs[key].partitions_def
        if partitions_def is None:
            continue
        every = partitions_def.get_partition_keys(dynamic_partitions_store=instance)
        done = materialized_partitions(instance, key)
        out[key.to_user_string()] = [str(k) for k in every if str(k) not in done]
    return out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--select", default="",
                        help="comma-separated assets to stop at (with everything upstream)")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    from personahub_assets.definitions import ASSETS, build_resources

    select = [a.strip() for a in args.select.split(",") if a.strip()] or None
    with DagsterInstance.get() as instance:
        report = run_update(ASSETS, build_resources(SETTINGS), instance, select=select)
    sys.stdout.write(report.summary() + "\n")
    return 1 if report.failed else 0


if __name__ == "__main__":
    raise SystemExit(main())
