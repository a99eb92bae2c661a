"""Embedding dedup search: the project's numpy indexes against faiss, in one run.

The faiss indexes live here, as the baselines: the measurement below kept the project's own
(see benchmarks/results/embedding_index.json).

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
import math
import os
import sys
import time
from datetime import datetime, timezone
from pathlib import Path

import numpy as np
from embeddings import make_corpus  # also puts the project root on sys.path
from machine import describe

from personahub_assets.lib.curation.embedding_dedup import (
    decide_in_order,
    embedding_near_duplicates,
)
from personahub_assets.lib.curation.encoders import StaticEncoder
from personahub_assets.lib.curation.vector_index import spherical_kmeans

ROOT = Path(__file__).resolve().parents[1]

THRESHOLD = 0.9


def best_per_query(count: int, rows: np.ndarray, ids: np.ndarray, sims: np.ndarray,
                    threshold: float) -> tuple[np.ndarray, np.ndarray]:
    """From (query row, kept id, similarity) triples: each query's best match at or above
    ``threshold`` (highest similarity, then earliest id); ``-inf`` and -1 where none."""
    best_sim = np.full(count, -np.inf, np.float32)
    best_ids = np.full(count, -1, np.int64)
    hit = sims >= threshold
    rows, ids, sims = rows[hit], ids[hit], sims[hit]
    if len(rows):
        order = np.lexsort((ids, -sims, rows))
        first = order[np.flatnonzero(np.diff(rows[order], prepend=-1))]
        best_sim[rows[first]] = sims[first]
        best_ids[rows[first]] = ids[first]
    return best_sim, best_ids


class FaissFlatKept:
    """Kept vectors in a faiss ``IndexFlatIP``: exact, one range search per block.

    The baseline the project's exact index was measured against (and kept for).
    """

    def __init__(self, dim: int):
        import faiss

        self._index = faiss.IndexFlatIP(dim)
        self._ids: list[np.ndarray] = []
        self._all_ids = np.empty(0, np.int64)

    def add(self, vectors: np.ndarray, ids: np.ndarray) -> None:
        if len(vectors):
            self._index.add(vectors)
            self._all_ids = np.concatenate([self._all_ids, ids])

    def best(self, queries: np.ndarray, threshold: float) -> tuple[np.ndarray, np.ndarray]:
        if not self._index.ntotal:
            return best_per_query(len(queries), *(np.empty(0, t) for t in
                                                   (np.int64, np.int64, np.float32)), threshold)
        # faiss keeps results strictly above the radius; the exact test follows.
        lims, sims, positions = self._index.range_search(queries, threshold - 1e-4)
        rows = np.repeat(np.arange(len(queries)), np.diff(lims).astype(np.int64))
        return best_per_query(len(queries), rows, self._all_ids[positions], sims, threshold)


class FaissIVFKept:
    """Kept vectors in a faiss ``IndexIVFFlat`` whose lists are the same k-means centroids as
    :class:`~personahub_assets.lib.curation.vector_index.IVFKept` (frozen before the first
    item is decided); ``nprobe`` lists per query.

    The baseline the project's inverted lists were measured against (and kept for).
    """

    def __init__(self, embeddings: np.ndarray, nlist: int | None, nprobe: int, seed: int):
        import faiss

        n, dim = embeddings.shape
        rng = np.random.default_rng(seed)
        nlist = max(1, min(nlist or int(math.sqrt(n)), n))
        sample = embeddings[rng.choice(n, min(n, 32 * nlist), replace=False)]
        self._quantizer = faiss.IndexFlatIP(dim)
        self._quantizer.add(spherical_kmeans(sample, nlist, rng))
        self._index = faiss.IndexIVFFlat(self._quantizer, dim, nlist,
                                         faiss.METRIC_INNER_PRODUCT)
        self._index.is_trained = True
        self._index.nprobe = max(1, min(nprobe, nlist))

    def add(self, vectors: np.ndarray, ids: np.ndarray) -> None:
        if len(vectors):
            self._index.add_with_ids(vectors, ids)

    def best(self, queries: np.ndarray, threshold: float) -> tuple[np.ndarray, np.ndarray]:
        sims, ids = self._index.search(queries, 1)
        rows = np.arange(len(queries))
        return best_per_query(len(queries), rows, ids[:, 0], sims[:, 0], threshold)


def _ours(index: str):
    return lambda vectors: embedding_near_duplicates(vectors, THRESHOLD, index=index,
                                                     assume_normalized=True)


def _faiss(kind: str):
    def run(vectors: np.ndarray):
        kept = (FaissFlatKept(vectors.shape[1]) if kind == "exact"
                else FaissIVFKept(vectors, None, 32, 0))
        return decide_in_order(vectors, THRESHOLD, kept)
    return run


PAIRS = {"exact": (_ours("exact"), _faiss("exact")), "ivf": (_ours("ivf"), _faiss("ivf"))}


def _run(vectors: np.ndarray, dedup) -> tuple[float, np.ndarray]:
    start = time.perf_counter()
    duplicates = dedup(vectors)
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
            print(f"[embedding_index] n={n}: {kind}, ours vs faiss", file=sys.stderr)
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
                    "load_average_at_end": [round(x, 2) for x in os.getloadavg()]},
        "parameters": {"threshold": THRESHOLD, "block_size": 2048,
                       "ivf": "nlist=sqrt(n), nprobe=32, the same spherical k-means centroids "
                              "(32*nlist sample, seed 0) for both"},
        "runs": runs,
    }
    Path(args.out).write_text(json.dumps(result, indent=2) + "\n")
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
