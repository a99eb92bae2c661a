"""persona_hub at scale: the whole curation asset in a real Dagster materialization.

Fills a DuckDB warehouse with ``n`` persona rows (the persona-like corpus of
``benchmarks/dedup.py``, with its planted near-duplicates and exact copies, spread over two
shards and three methods), then materializes ``persona_hub`` in a fresh process and records
its wall time and peak RSS. The same process first measures a baseline: reading the
``personas`` table into Arrow and writing it back unchanged, the least any curation must do.
Peak memory is reported beside the size of that table, so "bounded" has a number.

    python benchmarks/curation.py [--sizes 100000 1000000]

Writes benchmarks/results/curation.json.
"""

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "benchmarks"))

from machine import describe  # noqa: E402 - after the path set-up

WORKER = r"""
import json, resource, sys, time
import duckdb
tmp, kind, embedding = sys.argv[1], sys.argv[2], sys.argv[3] == "1"
if kind == "copy":
    start = time.perf_counter()
    conn = duckdb.connect(tmp + "/w.duckdb")
    rows = conn.execute("SELECT * FROM personas").to_arrow_table()
    conn.execute("CREATE OR REPLACE TABLE personas_copy AS SELECT * FROM rows")
    conn.close()
    out = {"seconds": time.perf_counter() - start, "arrow_bytes": rows.nbytes}
else:
    from dagster import materialize
    from personahub_assets.definitions import ASSETS
    from personahub_assets.resources.embeddings import EmbeddingsResource
    from personahub_assets.resources.llm import LLMResource
    from personahub_assets.resources.warehouse import WarehouseResource
    wh = WarehouseResource(path=tmp + "/w.duckdb")
    start = time.perf_counter()
    result = materialize(ASSETS, selection=["persona_hub"], resources={
        "warehouse": wh, "embeddings": EmbeddingsResource(),
        "llm": LLMResource(cache_path=tmp + "/c.duckdb")},
        run_config={"ops": {"persona_hub": {"config": {"embedding_dedup": embedding}}}})
    seconds = time.perf_counter() - start
    meta = {k: v.value for k, v in result.asset_materializations_for_node("persona_hub")[0]
            .metadata.items() if isinstance(v.value, (int, float))}
    checks = {e.check_name: e.passed for e in result.get_asset_check_evaluations()}
    out = {"seconds": seconds, "success": result.success, "metadata": meta, "checks": checks}
out["peak_rss_gib"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20
print(json.dumps(out))
"""


def _fill(path: Path, n: int) -> None:
    """``n`` persona rows in the personas table, in one bulk insert."""
    import pyarrow as pa
    from dedup import make_corpus

    from personahub_assets.lib.common.ids import persona_id
    from personahub_assets.lib.common.tables import TABLES, to_arrow
    from personahub_assets.resources.warehouse import WarehouseResource

    texts, _ = make_corpus(n)
    methods = ("import", "text", "relation")
    rows = [{"persona_id": persona_id(t), "shard": i % 2, "method": methods[i % 3],
             "persona": t, "doc_id": f"d{i // 4}", "depth": int(i % 3 == 2), "backend":
             "bench", "model": "bench", "template": "bench", "template_version": "1",
             "sampling_params": "{}"} for i, t in enumerate(texts)]
    table = to_arrow("personas", rows)
    assert isinstance(table, pa.Table) and table.schema == TABLES["personas"]
    WarehouseResource(path=str(path)).replace_partition("personas", {}, table)


def _worker(tmp: Path, kind: str, embedding: bool) -> dict:
    env = {**os.environ, "PERSONAHUB_DATA_DIR": str(tmp), "PERSONAHUB_SHARDS": "2"}
    done = subprocess.run([sys.executable, "-c", WORKER, str(tmp), kind, str(int(embedding))],
                          capture_output=True, text=True, env=env, cwd=ROOT)
    if done.returncode:
        raise RuntimeError(f"{kind} worker failed:\n{done.stderr[-3000:]}")
    return json.loads(done.stdout.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[100_000, 1_000_000])
    parser.add_argument("--out", default=str(ROOT / "benchmarks/results/curation.json"))
    args = parser.parse_args()
    started = time.perf_counter()
    load_start = os.getloadavg()
    runs = []
    for n in args.sizes:
        with tempfile.TemporaryDirectory() as tmp:
            tmp_path = Path(tmp)
            print(f"[curation] n={n}: filling the warehouse", file=sys.stderr)
            _fill(tmp_path / "w.duckdb", n)
            print(f"[curation] n={n}: baseline copy", file=sys.stderr)
            copy = _worker(tmp_path, "copy", False)
            run = {"n": n, "personas_arrow_gib": round(copy["arrow_bytes"] / 2**30, 3),
                   "baseline_copy": {"seconds": round(copy["seconds"], 2),
                                     "peak_rss_gib": round(copy["peak_rss_gib"], 3)}}
            for label, embedding in (("minhash_only", False), ("minhash_and_embedding", True)):
                print(f"[curation] n={n}: persona_hub {label}", file=sys.stderr)
                hub = _worker(tmp_path, "hub", embedding)
                meta = hub["metadata"]
                run[label] = {
                    "seconds": round(hub["seconds"], 2),
                    "peak_rss_gib": round(hub["peak_rss_gib"], 3),
                    "peak_rss_over_personas_arrow": round(
                        hub["peak_rss_gib"] / max(run["personas_arrow_gib"], 1e-9), 2),
                    "seconds_over_baseline_copy": round(hub["seconds"] / copy["seconds"], 1),
                    "success": hub["success"], "checks_passed": all(hub["checks"].values()),
                    "funnel": {k: meta.get(k) for k in (
                        "personas_in", "filtered", "exact_duplicates", "near_duplicates",
                        "embedding_near_duplicates", "hub_size")},
                    "embedding_seconds": meta.get("embedding_seconds"),
                }
            runs.append(run)
            print(json.dumps(run), file=sys.stderr)
    result = {
        "benchmark": "persona_hub materialized on n persona rows (filters, exact, MinHash, "
                     "embedding dedup, writes and checks)",
        "command": "python benchmarks/curation.py --sizes " + " ".join(map(str, args.sizes)),
        "date": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "runs": runs,
        "definitions": {
            "baseline_copy": "read the personas table into Arrow and write it back, in a "
                             "fresh process: the least any curation must do",
            "peak_rss_gib": "ru_maxrss of the materializing process (Dagster, DuckDB, the "
                            "models and the data)",
            "personas_arrow_gib": "size of the personas table as Arrow in memory",
        },
        "machine": {**describe(),
                    "load_average_at_start": [round(x, 2) for x in load_start],
                    "load_average_at_end": [round(x, 2) for x in os.getloadavg()]},
        "total_seconds": round(time.perf_counter() - started, 1),
    }
    Path(args.out).write_text(json.dumps(result, indent=2) + "\n")
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
