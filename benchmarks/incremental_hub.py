"""The incremental persona hub: adding a batch against the persisted state vs replaying all.

Builds a hub of ``n`` personas (the persona-like corpus of ``benchmarks/dedup.py``, with its
planted near-duplicates and exact copies, three methods) as batches of ``batch`` personas,
curating one batch at a time with MinHash and embedding dedup on (the static encoder), then
rebuilds the hub by replaying every batch. Records the time of adding the last batch, the
time of the rebuild (the baseline: what adding would cost without persisted state is at least
a replay of everything), the hub size and whether the rebuild decided exactly what the
incremental path decided (checksums of every hub state table).

    python benchmarks/incremental_hub.py            # 1M personas as 100 batches of 10k
    python benchmarks/incremental_hub.py --quick    # 100k as 10 batches

Merges its keys into benchmarks/results/incremental.json (other keys are kept);
``--quick`` writes benchmarks/results/incremental_quick.json instead, so a quick run never
replaces the 1M figures.
"""

import argparse
import json
import os
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "benchmarks"))

from machine import describe  # noqa: E402 - after the path set-up


def _fill(wh, n: int, batch: int) -> list[str]:
    """``n`` personas in batches of ``batch``, registered in order; returns the keys."""
    from dedup import make_corpus

    from personahub_assets.lib.common.ids import persona_id
    from personahub_assets.lib.common.tables import to_arrow

    texts, _ = make_corpus(n)
    methods = ("import", "text", "relation")
    keys = [f"p-bench{k:05d}" for k in range(-(-n // batch))]
    with wh.session() as conn:
        conn.executemany("INSERT INTO batches VALUES (?, 'personas', '{}', ?, ?, ?, 'bench')",
                         [[key, key, k + 1, min(batch, n - k * batch)]
                          for k, key in enumerate(keys)])
    rows = [{"persona_id": persona_id(t), "batch": keys[i // batch], "method": methods[i % 3],
             "persona": t, "doc_id": f"d{i // 4}", "depth": int(i % 3 == 2),
             "backend": "bench", "model": "bench", "template": "bench",
             "template_version": "1", "sampling_params": "{}"} for i, t in enumerate(texts)]
    wh.replace_partition("personas", {}, to_arrow("personas", rows))
    return keys


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--quick", action="store_true", help="100k personas as 10 batches")
    parser.add_argument("--n", type=int, default=None)
    parser.add_argument("--batch", type=int, default=10_000)
    parser.add_argument("--ivf-min-hub", type=int, default=None,
                        help="hub size at which the IVF index is trained (default: 20,000 "
                        "with --quick, else the asset's 100,000)")
    parser.add_argument("--nlist", type=int, default=None)
    parser.add_argument("--nprobe", type=int, default=16)
    parser.add_argument("--out", default=None, help="default: benchmarks/results/"
                        "incremental.json, or incremental_quick.json with --quick")
    args = parser.parse_args()
    n = args.n or (100_000 if args.quick else 1_000_000)

    from personahub_assets.lib.curation import hub, hub_state
    from personahub_assets.lib.curation.encoders import StaticEncoder
    from personahub_assets.resources.warehouse import WarehouseResource

    ivf_min_hub = args.ivf_min_hub if args.ivf_min_hub is not None else (
        20_000 if args.quick else 100_000)
    settings = hub.HubSettings(encoder="static", ivf_min_hub=ivf_min_hub,
                               ivf_nlist=args.nlist or (256 if args.quick else 1024),
                               ivf_nprobe=args.nprobe)
    encoder = StaticEncoder(use_multiprocessing=False)
    started = time.perf_counter()
    load_start = os.getloadavg()
    with tempfile.TemporaryDirectory() as tmp:
        wh = WarehouseResource(path=str(Path(tmp) / "w.duckdb"))
        print(f"[incremental] filling {n} personas", file=sys.stderr)
        keys = _fill(wh, n, args.batch)
        adds = []
        for seq in range(1, len(keys) + 1):
            clock = time.perf_counter()
            outcomes, blocked = hub.curate_pending(wh.session, settings, encoder,
                                                   upto_seq=seq)
            adds.append(time.perf_counter() - clock)
            assert blocked is None and len(outcomes) == 1
            print(f"[incremental] batch {seq}/{len(keys)}: {adds[-1]:.1f} s "
                  f"({outcomes[0].index}) {outcomes[0].seconds}", file=sys.stderr)
        last = outcomes[0]
        incremental = hub_state.hub_fingerprint(wh.session)
        clock = time.perf_counter()
        hub.rebuild(wh.session, settings, encoder)
        rebuild_seconds = time.perf_counter() - clock
        rebuilt = hub_state.hub_fingerprint(wh.session)
        hub_size = wh.scalar("SELECT count(*) FROM persona_hub")
    result = {
        "hub_add_seconds": round(adds[-1], 2),
        "hub_rebuild_seconds": round(rebuild_seconds, 2),
        "hub_add_over_rebuild": round(adds[-1] / rebuild_seconds, 4),
        "hub_size": hub_size,
        "hub_personas_in": n,
        "batch_size": args.batch,
        "batches": len(keys),
        "decisions_equal": incremental == rebuilt,
        "hub_add_seconds_by_stage": {k: round(v, 2) for k, v in last.seconds.items()},
        "hub_add_index": last.index,
        "hub_incremental_total_seconds": round(sum(adds), 1),
        "hub_first_add_seconds": round(adds[0], 2),
        "hub_settings": json.loads(settings.to_json()),
        "hub_command": "python " + " ".join(["benchmarks/incremental_hub.py", *sys.argv[1:]]),
        "hub_date": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "hub_machine": {**describe(),
                        "load_average_at_start": [round(x, 2) for x in load_start],
                        "load_average_at_end": [round(x, 2) for x in os.getloadavg()]},
        "hub_total_seconds": round(time.perf_counter() - started, 1),
    }
    out = Path(args.out or ROOT / "benchmarks/results" /
               ("incremental_quick.json" if args.quick else "incremental.json"))
    merged = json.loads(out.read_text()) if out.exists() else {}
    merged.update(result)
    out.write_text(json.dumps(merged, indent=2) + "\n")
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
