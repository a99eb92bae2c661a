"""Cluster-mode warehouse: the same partition writes on the local DuckDB file (the baseline)
and on a DuckLake (catalog in a local Postgres, Parquet in a folder), many writers at once, and
what compaction does to the file count and to a full scan.

    python benchmarks/cluster.py [--partitions 40] [--rows 2000] [--writers 4] [--rounds 6]

Starts its own Postgres on 127.0.0.1 (as the tests do). Writes benchmarks/results/cluster.json.
"""

from __future__ import annotations

import argparse
import json
import logging
import multiprocessing as mp
import os
import shutil
import sys
import tempfile
import time
from datetime import datetime, timezone
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from benchmarks.machine import describe  # noqa: E402
from personahub_assets.lib.common.tables import to_arrow  # noqa: E402
from personahub_assets.resources.warehouse import WarehouseResource  # noqa: E402
from personahub_assets_tests.cluster_servers import postgres_server  # noqa: E402


def _docs(batch: str, n: int, tag: str = ""):
    return to_arrow("documents", [
        {"doc_id": f"{batch}-{i}{tag}", "batch": batch, "source": "bench", "record_no": i,
         "text": f"document {i} of {batch} {tag} " * 8, "n_chars": 200,
         "content_hash": f"{batch}{i}"} for i in range(n)])


def _writes(wh: WarehouseResource, partitions: int, rows: int) -> dict:
    tables = [_docs(f"b{p}", rows) for p in range(partitions)]
    start = time.perf_counter()
    for p, table in enumerate(tables):
        wh.replace_partition("documents", {"batch": f"b{p}"}, table)
    write_s = time.perf_counter() - start
    start = time.perf_counter()
    wh.rows("SELECT batch, count(*), sum(length(text)) FROM documents GROUP BY batch")
    return {"write_seconds": round(write_s, 3),
            "writes_per_s": round(partitions / write_s, 2),
            "scan_seconds": round(time.perf_counter() - start, 4)}


def _writer(catalog: str, data_path: str, batch: str, rounds: int, rows: int, out) -> None:
    conflicts = []

    class Count(logging.Handler):
        def emit(self, record):
            conflicts.append(record.getMessage())

    log = logging.getLogger("personahub_assets.resources.warehouse")
    log.setLevel(logging.INFO)
    log.addHandler(Count())
    wh = WarehouseResource(catalog=catalog, data_path=data_path, commit_retries=50)
    for r in range(rounds):
        wh.replace_partition("documents", {"batch": batch}, _docs(batch, rows, tag=f"r{r}"))
    out.put(len([c for c in conflicts if "commit conflict" in c]))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--partitions", type=int, default=40)
    parser.add_argument("--rows", type=int, default=2000)
    parser.add_argument("--writers", type=int, default=4)
    parser.add_argument("--rounds", type=int, default=6)
    args = parser.parse_args(argv)
    tmp = Path(tempfile.mkdtemp(prefix="personahub-bench-cluster-"))
    result: dict = {"benchmark": __doc__.split("\n\n")[0].replace("\n", " "),
                    "command": "python benchmarks/cluster.py " + " ".join(argv or sys.argv[1:]),
                    "date": datetime.now(timezone.utc).isoformat(timespec="seconds"),
                    "machine": describe(), "load_average_before": os.getloadavg(),
                    "partitions": args.partitions, "rows": args.rows}
    with postgres_server() as pg:
        os.environ["PGPASSWORD"] = pg.password
        local = _writes(WarehouseResource(path=str(tmp / "w.duckdb")), args.partitions,
                        args.rows)
        lake_wh = WarehouseResource(catalog=pg.create_database("bench_lake"),
                                    data_path=str(tmp / "lake"))
        lake_wh.table_counts()  # one-time catalog set-up, outside the timing
        lake = _writes(lake_wh, args.partitions, args.rows)
        result["local_file"] = local
        result["ducklake"] = lake
        result["ducklake_write_ratio"] = round(lake["write_seconds"] / local["write_seconds"], 2)

        # Compaction: rewrite every partition once more, then compact.
        for p in range(args.partitions):
            lake_wh.replace_partition("documents", {"batch": f"b{p}"},
                                      _docs(f"b{p}", args.rows, tag="v2"))
        scan = "SELECT batch, count(*), sum(length(text)) FROM documents GROUP BY batch"
        start = time.perf_counter()
        lake_wh.rows(scan)
        before_s = time.perf_counter() - start
        start = time.perf_counter()
        report = lake_wh.compact(retain_snapshots_s=0)
        compact_s = time.perf_counter() - start
        start = time.perf_counter()
        lake_wh.rows(scan)
        after_s = time.perf_counter() - start
        result["compaction"] = {**report, "compact_seconds": round(compact_s, 3),
                                "scan_seconds_before": round(before_s, 4),
                                "scan_seconds_after": round(after_s, 4),
                                "scan_ratio_after_over_before": round(after_s / before_s, 3)}

        # Many writers at once on one table, each in its own process.
        catalog = pg.create_database("bench_race")
        WarehouseResource(catalog=catalog, data_path=str(tmp / "race")).table_counts()
        ctx = mp.get_context("spawn")
        out = ctx.Queue()
        procs = [ctx.Process(target=_writer, args=(catalog, str(tmp / "race"), f"w{i}",
                                                   args.rounds, args.rows, out))
                 for i in range(args.writers)]
        start = time.perf_counter()
        for p in procs:
            p.start()
        for p in procs:
            p.join()
        wall = time.perf_counter() - start
        conflicts = [out.get(timeout=10) for _ in procs]
        writes = args.writers * args.rounds
        result["concurrent_writers"] = {
            "writers": args.writers, "writes": writes, "all_succeeded":
                all(p.exitcode == 0 for p in procs), "conflicts_retried": sum(conflicts),
            "conflicts_per_write": round(sum(conflicts) / writes, 2),
            "wall_seconds": round(wall, 2), "writes_per_s": round(writes / wall, 2)}
    shutil.rmtree(tmp, ignore_errors=True)
    result["load_average_after"] = os.getloadavg()
    out_path = ROOT / "benchmarks" / "results" / "cluster.json"
    out_path.write_text(json.dumps(result, indent=2) + "\n")
    sys.stdout.write(json.dumps(result, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
