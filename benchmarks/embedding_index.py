"""Embedding dedup search: the project's numpy indexes against faiss, in one run.

The same static-model vectors of the embeddings benchmark corpus (``make_corpus`` in
benchmarks/embeddings.py) are deduplicated at cosine 0.9 by ``embedding_near_duplicates``
with each index, one after another in this process:

* exact: the project's filtered exhaustive search against a faiss ``IndexFlatIP`` range search
  per block (both exact: decisions depend only on input order);
* approximate: the project's inverted lists against a faiss ``IndexIVFFlat`` built on the very
  same frozen k-means centroids, same ``nlist`` and ``nprobe``.

Each pair is timed on the same vectors (encoding excluded) and its decisions compared.

    python benchmarks/embedding_index.py [--sizes 100000 1000000] [--exact-max 100000]

Writes benchmarks/results/embedding_index.json and prints it.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import time
from datetime import datetime, timezone
from pathlib import Path

import numpy as np
from embeddings import make_corpus
from machine import describe

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from personahub_assets.lib.embeddings import (  # noqa: E402
    StaticEncoder,
    embedding_near_duplicates,
)

THRESHOLD = 0.9
PAIRS = {"exact": ("exact", "faiss_exact"), "ivf": ("ivf", "faiss_ivf")}


def _run(vectors: np.ndarray, index: str) -> tuple[float, np.ndarray]:
    start = time.perf_counter()
    duplicates = embedding_near_duplicates(vectors, THRESHOLD, index=index,
                                           assume_normalized=True)
    seconds = time.perf_counter() - start
    dropped = np.zeros(len(vectors), bool)
    dropped[[d.index for d in duplicates]] = True
    return seconds, dropped


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[100_000, 1_000_000])
    parser.add_argument("--exact-max", type=int, default=100_000,
                        help="largest size at which the exact indexes run (both quadratic)")
    parser.add_argument("--out", default=str(ROOT / "benchmarks/results/embedding_index.json"))
    args = parser.parse_args()
    import faiss

    load_at_start = os.getloadavg()
    encoder = StaticEncoder(use_multiprocessing=False)
    runs = []
    for n in args.sizes:
        texts, _ = make_corpus(n)
        print(f"[embedding_index] n={n}: encoding", file=sys.stderr)
        vectors = encoder.encode(texts)
        del texts
        run: dict = {"n": n}
        for kind, (ours, theirs) in PAIRS.items():
            if kind == "exact" and n > args.exact_max:
                run[kind] = {"not_measured": f"exact search is quadratic; above "
                                             f"--exact-max {args.exact_max}"}
                continue
            print(f"[embedding_index] n={n}: {ours} vs {theirs}", file=sys.stderr)
            ours_s, ours_dropped = _run(vectors, ours)
            theirs_s, theirs_dropped = _run(vectors, theirs)
            run[kind] = {
                "ours_seconds": round(ours_s, 2), "faiss_seconds": round(theirs_s, 2),
                "faiss_speedup": round(ours_s / theirs_s, 2),
                "ours_dropped": int(ours_dropped.sum()),
                "faiss_dropped": int(theirs_dropped.sum()),
                "items_decided_differently": int((ours_dropped != theirs_dropped).sum()),
            }
        runs.append(run)
    result = {
        "benchmark": "embedding dedup search at cosine 0.9: numpy indexes vs faiss",
        "command": " ".join(["python benchmarks/embedding_index.py", *sys.argv[1:]]),
        "date": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "machine": {**describe(), "numpy": np.__version__, "faiss": faiss.__version__,
                    "faiss_omp_threads": faiss.omp_get_max_threads(),
                    "load_average_at_start": [round(x, 2) for x in load_at_start],
                    "load_average_at_end": [round(x, 2) for x in os.getloadavg()],
                    "platform": platform.platform()},
        "parameters": {"threshold": THRESHOLD, "block_size": 2048,
                       "ivf": "nlist=sqrt(n), nprobe=32, the same spherical k-means centroids "
                              "(32*nlist sample, seed 0) for both"},
        "runs": runs,
    }
    Path(args.out).write_text(json.dumps(result, indent=2) + "\n")
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
