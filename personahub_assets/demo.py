"""`make demo`: materialize every asset and partition on the embedded model, then report.

Runs go to the Dagster instance in ``$DAGSTER_HOME`` (``data/dagster`` via the Makefile), so
they, their metadata and their check results are browsable afterwards in ``make ui``.
"""

from __future__ import annotations

import argparse
import sys
import time
from collections import defaultdict
from typing import Any

from dagster import DagsterInstance, MultiPartitionKey

from personahub_assets.definitions import build_resources, defs
from personahub_assets.prompts import DOMAINS
from personahub_assets.quality_report import quality_summary
from personahub_assets.report import latest_check_results, write_html_report
from personahub_assets.settings import SETTINGS


def _run_config(op_config: dict[str, dict[str, Any]]) -> dict[str, Any]:
    return {
        "ops": {op: {"config": cfg} for op, cfg in op_config.items()},
        "loggers": {"console": {"config": {"log_level": "INFO"}}},
    }


def plan(max_personas: int, hops: int, attributes_method: str = "model",
         ) -> list[tuple[str, str, list[Any], dict[str, Any]]]:
    """The demo's runs: (stage, job, partition keys, run config), in dependency order."""
    shards = [str(s) for s in range(SETTINGS.num_shards)]
    return [
        ("ingest + personas", "ingest_job", shards,
         _run_config({"relation_personas": {"hops": hops}})),
        ("imports + curation", "curation_job", [None],
         _run_config({"imported_personas": {"sources": ["data/sample/personas.jsonl"]}})),
        ("persona attributes", "attributes_job", shards,
         _run_config({"persona_attributes": {"method": attributes_method}})),
        ("synthesis", "synthesis_job",
         [MultiPartitionKey({"domain": d, "shard": s}) for d in DOMAINS for s in shards],
         _run_config({"synthetic_data": {"max_personas": max_personas}})),
        ("math verification", "verification_job", shards, _run_config({})),
        ("instruction responses", "responses_job", shards, _run_config({})),
        ("judge + safety", "quality_job",
         [MultiPartitionKey({"domain": d, "shard": s}) for d in DOMAINS for s in shards],
         _run_config({})),
        ("export", "export_job", list(DOMAINS), _run_config({})),
    ]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--max-personas", type=int, default=4,
                        help="personas per synthesis partition (default 4)")
    parser.add_argument("--hops", type=int, default=1, help="Persona-to-Persona hops")
    parser.add_argument("--attributes", choices=("model", "rules"), default="model",
                        help="how persona attributes are found (default model)")
    args = parser.parse_args(argv)

    instance = DagsterInstance.get()
    timings: dict[str, float] = {}
    checks: list[tuple[str, str, str, bool, str]] = []
    failed_runs: list[str] = []
    for stage, job_name, keys, run_config in plan(args.max_personas, args.hops, args.attributes):
        job = defs.resolve_job_def(job_name)
        start = time.perf_counter()
        for key in keys:
            result = job.execute_in_process(instance=instance, partition_key=key,
                                            run_config=run_config, raise_on_error=False)
            if not result.success:
                failed_runs.append(f"{job_name}[{key}] run {result.run_id}")
            for ev in result.get_asset_check_evaluations():
                checks.append((ev.asset_key.to_user_string(), str(key or "-"), ev.check_name,
                               ev.passed, ev.severity.value))
        timings[stage] = time.perf_counter() - start

    warehouse = build_resources(SETTINGS)["warehouse"]
    print_report(warehouse.table_counts(), checks, timings, failed_runs)
    sys.stdout.write(quality_summary(warehouse, SETTINGS.exports_dir))
    page = write_html_report(latest_check_results(instance), warehouse,
                             SETTINGS.exports_dir / "report.html")
    print(f"Plots (dedup funnel, persona lengths, validity per domain): {page}")
    return 1 if failed_runs or any(not c[3] and c[4] == "ERROR" for c in checks) else 0


def print_report(counts, checks, timings, failed_runs) -> None:
    """The short report printed at the end of the demo."""
    out = sys.stdout
    out.write("\n=== personahub-assets demo report ===\n\nRows per table\n")
    for table, n in counts.items():
        out.write(f"  {table:<22}{n:>8}\n")
    out.write("\nAsset checks (passed/total per check)\n")
    grouped: dict[tuple[str, str], list[tuple[bool, str, str]]] = defaultdict(list)
    for asset_key, key, name, passed, severity in checks:
        grouped[(asset_key, name)].append((passed, severity, key))
    for (asset_key, name), evs in grouped.items():
        passed = sum(p for p, _, _ in evs)
        failed = [f"{k} ({s})" for p, s, k in evs if not p]
        status = "ok" if not failed else "FAILED in " + ", ".join(failed)
        out.write(f"  {asset_key + '.' + name:<52}{passed:>3}/{len(evs):<3} {status}\n")
    out.write(f"\nExports: {SETTINGS.exports_dir}/<domain>/<domain>.jsonl and .parquet\n")
    out.write("\nWall time per stage\n")
    for stage, seconds in timings.items():
        out.write(f"  {stage:<22}{seconds:>8.1f} s\n")
    out.write(f"  {'total':<22}{sum(timings.values()):>8.1f} s\n")
    if failed_runs:
        out.write("\nFailed runs:\n" + "".join(f"  {r}\n" for r in failed_runs))
    out.write("\nBrowse the runs, metadata and check results: make ui "
              "(http://127.0.0.1:3000)\n")


if __name__ == "__main__":
    raise SystemExit(main())
