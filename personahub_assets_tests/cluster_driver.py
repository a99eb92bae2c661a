"""The cluster test's driver: registers batches and launches runs from a process of its own,
whose environment alone says which mode it is in (as on a real deployment).

    python -m personahub_assets_tests.cluster_driver --incoming DIR --domain math --out FILE

Cluster mode (``PERSONAHUB_EXECUTOR=celery``, ``PERSONAHUB_WAREHOUSE_CATALOG``): every step is
sent to the Celery workers. Local mode: the same runs in this process, on the local file.
Writes a JSON list of the runs (id, assets, partition, success) to ``--out``.
"""

from __future__ import annotations

import argparse
import json
import multiprocessing as mp
import os
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

from dagster import AssetKey, DagsterEventType, DagsterInstance, MultiPartitionKey, execute_job
from dagster._core.definitions.reconstruct import ReconstructableRepository

from personahub_assets.automation import register_incoming
from personahub_assets.cli.update import sync_partitions
from personahub_assets.definitions import build_resources, defs
from personahub_assets.settings import SETTINGS

INGEST = ["web_documents", "text_personas"]


def run(assets: list[str], batch: str, domain: str | None = None) -> dict:
    """Execute one run (the assets, one partition) to completion in this process."""
    in_process = not os.environ.get("PERSONAHUB_EXECUTOR")
    recon = ReconstructableRepository.for_module(
        "personahub_assets.definitions", "defs", working_directory=os.getcwd()
    ).get_reconstructable_job("__ASSET_JOB")
    if domain is None:
        partition, tags = batch, {"dagster/partition": batch}
    else:
        partition = MultiPartitionKey({"batch": batch, "domain": domain})
        tags = defs.resolve_assets_def("synthetic_data").partitions_def \
            .get_tags_for_partition_key(partition)
    run_config = {"execution": {"config": {"in_process": {}}}} if in_process else {}
    with DagsterInstance.get() as instance, execute_job(
            recon, instance, run_config=run_config, tags=tags,
            asset_selection=[AssetKey(a) for a in assets], raise_on_error=False) as result:
        failures = [] if result.success else _failures(instance, result.run_id)
        for line in failures:  # the reason reaches the test's assertion message
            print(f"run {result.run_id} {assets} {partition}: {line}", flush=True)
        return {"run_id": result.run_id, "success": result.success, "assets": assets,
                "partition": str(partition), "failures": failures}


def _failures(instance: DagsterInstance, run_id: str) -> list[str]:
    """What a failed run's event log says went wrong: every error it holds (failed steps,
    engine errors) and the run's failure."""
    out = []
    for record in instance.all_logs(run_id):
        event = record.dagster_event
        error = getattr(event.event_specific_data, "error", None) if event else None
        if error is not None or (event and event.event_type == DagsterEventType.RUN_FAILURE):
            text = error.to_string() if error is not None else (record.user_message or "")
            out.append(f"{event.event_type.value} {event.step_key or ''}: {text[-3000:]}")
    return out


def _run(job: tuple) -> dict:
    return run(*job)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--incoming", required=True)
    parser.add_argument("--domain", default="math")
    parser.add_argument("--out", required=True)
    parser.add_argument("--rerun-only", action="store_true",
                        help="only run the first batch's ingestion and synthesis again")
    args = parser.parse_args(argv)
    in_process = not os.environ.get("PERSONAHUB_EXECUTOR")
    warehouse = build_resources(SETTINGS)["warehouse"]
    runs: list[dict] = []

    def together(jobs: list[tuple]) -> None:
        # On a cluster, runs of different batches at once, each from its own process (as
        # run workers launch them): their steps commit to the warehouse together. Locally,
        # one after the other.
        if in_process:
            runs.extend(run(*job) for job in jobs)
            return
        with ProcessPoolExecutor(len(jobs), mp_context=mp.get_context("spawn")) as pool:
            runs.extend(pool.map(_run, jobs))

    with DagsterInstance.get() as instance:
        registered = register_incoming(warehouse, Path(args.incoming))
        sync_partitions(instance, warehouse)
    batches = [r["batch"] for r in warehouse.rows("SELECT batch FROM batches ORDER BY seq")]
    if args.rerun_only:
        together([(INGEST, batches[0]), (["synthetic_data"], batches[0], args.domain)])
    else:
        together([(INGEST, b) for b in batches])
        for batch in batches:  # curation follows the ledger's sequence order
            runs.append(run(["persona_hub"], batch))
        together([(["synthetic_data"], b, args.domain) for b in batches])  # the backfill
    Path(args.out).write_text(json.dumps({
        "registered": [r.key for r in registered], "batches": batches, "runs": runs,
        "driver_pid": os.getpid()}, indent=1))
    return 0 if all(r["success"] for r in runs) else 1


if __name__ == "__main__":
    raise SystemExit(main())
