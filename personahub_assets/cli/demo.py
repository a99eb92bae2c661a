"""`make demo`: the sample corpus as batches, carried through the graph by automation.

The demo registers the shipped sample corpus as two document batches and the sample persona
set as a third, then runs the same driver as ``make update`` (the assets' automation
conditions, evaluated and executed in process) until every batch reaches the exports, and
prints a short report. Runs go to the Dagster instance in ``$DAGSTER_HOME`` (``data/dagster``
via the Makefile), so they, their metadata and their check results are browsable afterwards
in ``make ui``. The demo's limits are settings that automated runs honour
(``PERSONAHUB_MAX_PERSONAS``, ``PERSONAHUB_MAX_DOCUMENTS``, ``PERSONAHUB_HOPS``,
``PERSONAHUB_JUDGE_MAX_SAMPLES``), set here unless already set.
"""

from __future__ import annotations

import os

# Before the settings are read: limits that keep the demo within minutes on two cores.
# One persona per synthesis partition: 3 batches x 6 domains is 18 samples, every one judged.
os.environ.setdefault("PERSONAHUB_MAX_PERSONAS", "1")
os.environ.setdefault("PERSONAHUB_MAX_DOCUMENTS", "12")
os.environ.setdefault("PERSONAHUB_HOPS", "1")
# The judge scores every valid sample (0 = all): its JSON grammar is checked per drawn token,
# so a call costs about 2 s on two cores.
os.environ.setdefault("PERSONAHUB_JUDGE_MAX_SAMPLES", "0")
# Persona attributes by keyword rules: a model call per hub persona under a JSON grammar costs
# about as much as the rest of the demo on the embedded model (see README).
os.environ.setdefault("PERSONAHUB_ATTRIBUTES_METHOD", "rules")

import argparse  # noqa: E402
import sys  # noqa: E402
import time  # noqa: E402
from collections import defaultdict  # noqa: E402

from dagster import DagsterInstance  # noqa: E402

from personahub_assets.automation import register_source  # noqa: E402
from personahub_assets.cli.report import latest_check_results, write_html_report  # noqa: E402
from personahub_assets.cli.update import run_update  # noqa: E402
from personahub_assets.definitions import ASSETS, build_resources  # noqa: E402
from personahub_assets.lib.ingest.batching import PERSONAS  # noqa: E402
from personahub_assets.quality_report import quality_summary  # noqa: E402
from personahub_assets.settings import SETTINGS  # noqa: E402

SAMPLE_DOCUMENTS = "data/sample/web_documents.jsonl"
SAMPLE_PERSONAS = "data/sample/personas.jsonl"


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
        report = run_update(ASSETS, resources, instance)
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
