"""`make demo`: the sample corpus as batches, carried through the graph by automation.

The demo registers the shipped sample corpus as two document batches and the sample persona
set as a third, then runs the same driver as ``make update`` (the assets' automation
conditions, evaluated and executed in process) until every batch reaches the exports, and
prints a short report. Runs go to the Dagster instance in ``$DAGSTER_HOME`` (``data/dagster``
via the Makefile), so they, their metadata and their check results are browsable afterwards
in ``make ui``. The demo's limits (:data:`DEMO_LIMITS`) reach its runs as run config; a limit
set in the environment (``PERSONAHUB_MAX_PERSONAS``, ``PERSONAHUB_MAX_DOCUMENTS``,
``PERSONAHUB_HOPS``, ``PERSONAHUB_JUDGE_MAX_SAMPLES``, ``PERSONAHUB_ATTRIBUTES_METHOD``) wins.
"""

from __future__ import annotations

import argparse
import sys
import time
from collections import defaultdict

from dagster import DagsterInstance

from personahub_assets.automation import register_source
from personahub_assets.cli.report import latest_check_results, write_html_report
from personahub_assets.cli.update import run_update
from personahub_assets.definitions import ASSETS, build_resources
from personahub_assets.lib.ingest.batching import PERSONAS
from personahub_assets.quality_report import quality_summary
from personahub_assets.settings import SETTINGS, Settings

SAMPLE_DOCUMENTS = "data/sample/web_documents.jsonl"
SAMPLE_PERSONAS = "data/sample/personas.jsonl"

#: The demo's limits, keeping it within minutes on two cores, as (setting, asset, config
#: field, value). A setting given in the environment wins over the demo's value. One persona
#: per synthesis partition: 3 batches x 6 domains is 18 samples, every one judged (the judge's
#: JSON grammar is checked per drawn token). Persona attributes by keyword rules: a model call
#: per hub persona under a JSON grammar costs about as much as the rest of the demo.
DEMO_LIMITS = (
    ("max_personas", "synthetic_data", "max_personas", 1),
    ("max_documents", "text_personas", "max_documents", 12),
    ("hops", "relation_personas", "hops", 1),
    ("judge_max_samples", "sample_quality", "max_judged", 0),
    ("attributes_method", "persona_attributes", "method", "rules"),
)


def demo_op_config(settings: Settings) -> dict[str, dict]:
    """Run config of the demo's limits, by asset, where the environment sets none."""
    config: dict[str, dict] = {}
    for setting, asset, field, value in DEMO_LIMITS:
        config.setdefault(asset, {})[field] = (getattr(settings, setting)
                                               if setting in settings.explicit else value)
    return config


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--batches", type=int, default=2,
                        help="document batches to cut the sample corpus into (default 2)")
    args = parser.parse_args(argv)

    resources = build_resources(SETTINGS)
    warehouse = resources["warehouse"]
    with open(SAMPLE_DOCUMENTS, "rb") as fh:
        lines = sum(1 for _ in fh)
    per_batch = -(-lines // max(args.batches, 1))
    registered = (register_source(warehouse, SAMPLE_DOCUMENTS, max_records=per_batch)
                  + register_source(warehouse, SAMPLE_PERSONAS, kind=PERSONAS))
    start = time.perf_counter()
    with DagsterInstance.get() as instance:
        report = run_update(ASSETS, resources, instance, op_config=demo_op_config(SETTINGS))
        report.registered = registered + report.registered
        elapsed = time.perf_counter() - start
        rows = latest_check_results(instance)
        checks = [(r.asset, r.partition, r.check, r.passed, r.severity) for r in rows]
        page = write_html_report(rows, warehouse, SETTINGS.exports_dir / "report.html")
    sys.stdout.write(report.summary() + "\n")
    print_report(warehouse.table_counts(), checks, {"update (all stages)": elapsed},
                 [f"{'+'.join(r.assets)}[{r.partition}] run {r.run_id}" for r in report.failed])
    sys.stdout.write(f"Plots (dedup funnel, persona lengths, validity per domain): {page}\n")
    sys.stdout.write(quality_summary(warehouse, SETTINGS.exports_dir))
    return 1 if report.failed or any(not c[3] and c[4] == "ERROR" for c in checks) else 0


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
    out.write(f"\nExports: {SETTINGS.exports_dir}/<domain>/<batch>.jsonl and .parquet\n")
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
