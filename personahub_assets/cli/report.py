"""`make report`: the latest result of every asset check, per asset and partition.

Reads the Dagster instance in ``$DAGSTER_HOME`` (the one the demo and the UI use) and prints a
table a person reads in a terminal; the same results are in the UI under each asset's checks.
It also writes ``<data dir>/exports/report.html``: the dedup funnel, the persona length
histogram and per-domain validity drawn from the warehouse, with the check table, in one page.
"""

from __future__ import annotations

import datetime as dt
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from dagster import DagsterEventType, DagsterInstance

_PARTITION_TAG = "dagster/partition"


@dataclass(frozen=True)
class CheckRow:
    """The latest evaluation of one check on one partition."""

    asset: str
    check: str
    partition: str
    passed: bool
    severity: str
    timestamp: float
    detail: str


def _detail(metadata: dict[str, Any]) -> str:
    parts = []
    for key, value in list(metadata.items())[:4]:
        raw = getattr(value, "value", value)
        parts.append(f"{key}={raw}")
    return ", ".join(parts)


def latest_check_results(instance: DagsterInstance, check_keys=None) -> list[CheckRow]:
    """Newest evaluation per (asset, check, partition) of every check of the code location.

    Reads the instance's public API: its runs, newest first, and each run's check-evaluation
    events.
    """
    if check_keys is None:
        from personahub_assets.definitions import defs

        check_keys = defs.resolve_asset_graph().asset_check_keys
    wanted = set(check_keys)
    latest: dict[tuple[str, str, str], CheckRow] = {}
    for run in instance.get_run_records():  # newest first
        events = instance.get_records_for_run(
            run.dagster_run.run_id, of_type=DagsterEventType.ASSET_CHECK_EVALUATION,
            ascending=False).records
        for record in events:
            entry = record.event_log_entry
            evaluation = entry.dagster_event.event_specific_data
            check_key = evaluation.asset_check_key
            if check_key not in wanted:
                continue
            partition = (evaluation.partition or entry.dagster_event.partition
                         or run.dagster_run.tags.get(_PARTITION_TAG, "-"))
            key = (check_key.asset_key.to_user_string(), check_key.name, partition)
            if key not in latest:
                latest[key] = CheckRow(*key, passed=evaluation.passed,
                                       severity=evaluation.severity.value,
                                       timestamp=entry.timestamp,
                                       detail=_detail(dict(evaluation.metadata or {})))
    return sorted(latest.values(), key=lambda r: (r.asset, r.check, r.partition))


def format_report(rows: list[CheckRow]) -> str:
    """A fixed-width table plus a one-line summary."""
    if not rows:
        return "No asset check has run on this instance yet. Run `make demo` first.\n"
    head = ("asset", "check", "partition", "result", "when (UTC)", "detail")
    table = [head]
    for r in rows:
        result = "passed" if r.passed else f"FAILED ({r.severity})"
        when = dt.datetime.fromtimestamp(r.timestamp, dt.timezone.utc).strftime("%Y-%m-%d %H:%M")
        table.append((r.asset, r.check, r.partition, result, when, r.detail))
    widths = [max(len(row[i]) for row in table) for i in range(len(head) - 1)]
    lines = ["  ".join(c.ljust(w) for c, w in zip(row[:-1], widths, strict=True)) + "  " + row[-1]
             for row in table]
    lines.insert(1, "-" * min(len(lines[0]) + 20, 160))
    failed = sum(not r.passed for r in rows)
    blocking = sum(not r.passed and r.severity == "ERROR" for r in rows)
    lines.append("")
    lines.append(f"{len(rows)} check results: {len(rows) - failed} passed, {failed} failed "
                 f"({blocking} of severity ERROR).")
    return "\n".join(lines) + "\n"


def write_html_report(rows: list[CheckRow], warehouse, path) -> Path:
    """One self-contained page: the pipeline's plots from the warehouse and the check table."""
    from personahub_assets.lib.export import plots

    counts = warehouse.table_counts()
    stages = {r["stage"]: r["n"] for r in warehouse.rows(
        "SELECT CASE WHEN stage LIKE 'filter:%' THEN 'filters' ELSE stage END AS stage, "
        "count(*) AS n FROM persona_dedup_log GROUP BY 1")} if counts.get(
        "persona_dedup_log") is not None else {}
    hub = counts.get("persona_hub", 0) or 0
    total = hub + sum(stages.values())
    funnel, left = [("personas in", total)], total
    for stage in ("filters", "exact", "minhash", "embedding"):
        left -= stages.get(stage, 0)
        funnel.append((f"after {stage}", left))
    lengths = [r["words"] for r in warehouse.rows(
        "SELECT len(string_split(persona, ' ')) AS words FROM persona_hub")] if hub else []
    domains = warehouse.rows(
        "SELECT domain, count(*) FILTER (WHERE valid) AS valid, "
        "count(*) FILTER (WHERE NOT valid) AS invalid FROM synthetic_samples "
        "GROUP BY domain ORDER BY domain") if counts.get("synthetic_samples") else []
    checks = [{"asset": r.asset, "check": r.check, "partition": r.partition,
               "result": "passed" if r.passed else f"FAILED ({r.severity})",
               "detail": r.detail} for r in rows]
    sections = [
        ("Persona dedup funnel", plots.funnel_svg(funnel, title="Persona dedup funnel")),
        ("Hub persona length", plots.histogram_svg(lengths, title="Hub persona length",
                                                   x_label="words")),
        ("Validity per domain", plots.stacked_bars_svg(
            [(d["domain"], d["valid"], d["invalid"]) for d in domains],
            title="Valid samples per domain")),
        ("Rows per table", plots.html_table(
            [{"table": t, "rows": n} for t, n in counts.items()], ["table", "rows"])),
        ("Asset checks (latest result)", plots.html_table(
            checks, ["asset", "check", "partition", "result", "detail"])),
    ]
    return plots.write_html_report(path, sections, title="personahub-assets report")


def main() -> int:
    from personahub_assets.definitions import build_resources
    from personahub_assets.settings import SETTINGS

    rows = latest_check_results(DagsterInstance.get())
    sys.stdout.write(format_report(rows))
    if SETTINGS.warehouse_path.exists():
        page = write_html_report(rows, build_resources(SETTINGS)["warehouse"],
                                 SETTINGS.exports_dir / "report.html")
        sys.stdout.write(f"\nPlots and checks in one page: {page}\n")
    return 1 if any(not r.passed and r.severity == "ERROR" for r in rows) else 0


if __name__ == "__main__":
    raise SystemExit(main())
