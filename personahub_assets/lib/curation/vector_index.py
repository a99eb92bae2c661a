"""Indexes of kept embedding vectors, numpy only: which kept item is nearest to a query.

Two indexes answer ``best(queries, threshold)`` with each query's best kept match:

* ``ExactKept``: all kept items, with a Cauchy-Schwarz filter on 64 principal coordinates so
  that full products are computed only for pairs that can reach the threshold (measured at
  100k personas: as fast as plain blocked products when BLAS has both cores, about 1.4x faster
  when it gets one; decisions identical);
* ``IVFKept``: inverted lists around k-means centroids, ``nprobe`` lists scanned per item,
  about linear in the corpus size but it can miss a duplicate whose match sits in an unprobed
  list.

Both were measured against faiss on the same vectors (``benchmarks/embedding_index.py``: an
``IndexFlatIP`` range search per block, and an ``IndexIVFFlat`` on the same frozen
centroids); they made the same decisions and these were faster, so faiss is only a benchmark
baseline.
"""

from __future__ import annotations

import contextlib
import math

import numpy as np

from personahub_assets.lib.curation.vectors import normalize

#: Principal coordinates the exact index filters on (none for vectors under twice as wide).
HEAD_DIMS = 64
_KEPT_CHUNK = 16_384
_BOUND_SLACK = 1e-4
_MAX_CANDIDATE_SHARE = 0.01


class ExactKept:
    """Kept vectors in one growing array, searched exhaustively but with a proven filter.

    The vectors arrive rotated onto their principal axes (``principal_rotation``), so the
    first ``split`` coordinates carry most of each vector's length. For a query q and a kept x,
    Cauchy-Schwarz gives ``q.x <= q_head.x_head + |q_tail| * |x_tail|``; a kept item can only
    reach the threshold if its head product passes ``threshold - |q_tail| * max|x_tail|``, so
    the full products are computed for those candidates only. The head product costs
    ``split / dim`` of the full one, and no item that could reach the threshold is skipped.
    When a low threshold lets more than 1% of the pairs through, it falls back to plain
    products.
    """

    def __init__(self, dim: int, capacity: int, split: int):
        self._vectors = np.empty((capacity, dim), np.float32)
        self._tails = np.empty(capacity, np.float32)
        self._ids = np.empty(capacity, np.int64)
        self._size = 0
        self._split = split
        self._dense = False

    def add(self, vectors: np.ndarray, ids: np.ndarray) -> None:
        end = self._size + len(vectors)
        self._vectors[self._size : end] = vectors
        self._tails[self._size : end] = np.linalg.norm(vectors[:, self._split :], axis=1)
        self._ids[self._size : end] = ids
        self._size = end

    def best(self, queries: np.ndarray, threshold: float) -> tuple[np.ndarray, np.ndarray]:
        """Best kept match of every query that has one at or above ``threshold``.

        Queries without such a match get similarity ``-inf`` and id -1; ties go to the
        earliest kept item.
        """
        best_sim = np.full(len(queries), -np.inf, np.float32)
        best_ids = np.full(len(queries), -1, np.int64)
        split = self._split
        query_tails = np.linalg.norm(queries[:, split:], axis=1)
        everyone = np.arange(len(queries))
        for start in range(0, self._size, _KEPT_CHUNK):
            stop = min(start + _KEPT_CHUNK, self._size)
            chunk = self._vectors[start:stop]
            if split and not self._dense:
                heads = queries[:, :split] @ chunk[:, :split].T
                floor = threshold - _BOUND_SLACK - query_tails * self._tails[start:stop].max()
                # Row maxima first: a full-size nonzero() costs more than the products.
                open_rows = np.flatnonzero(heads.max(axis=1) >= floor)
                rows, cols = np.nonzero(heads[open_rows] >= floor[open_rows, None])
                rows = open_rows[rows]
                if len(rows) <= _MAX_CANDIDATE_SHARE * heads.size:
                    sims = np.einsum("ij,ij->i", queries[rows], chunk[cols])
                    self._merge(best_sim, best_ids, rows, cols + start, sims, threshold)
                    continue
                # Low thresholds let most pairs through; plain products are cheaper then.
                self._dense = True
            full = queries @ chunk.T
            cols = full.argmax(axis=1)
            self._merge(best_sim, best_ids, everyone, cols + start, full[everyone, cols],
                        threshold)
        return best_sim, best_ids

    def _merge(self, best_sim: np.ndarray, best_ids: np.ndarray, rows: np.ndarray,
               positions: np.ndarray, sims: np.ndarray, threshold: float) -> None:
        """Fold candidate matches (query row, kept position, similarity) into the best."""
        hit = sims >= threshold
        rows, positions, sims = rows[hit], positions[hit], sims[hit]
        if not len(rows):
            return
        # per query: highest similarity, then earliest kept item
        order = np.lexsort((positions, -sims, rows))
        first = order[np.flatnonzero(np.diff(rows[order], prepend=-1))]
        rows, positions, sims = rows[first], positions[first], sims[first]
        better = sims > best_sim[rows]  # strict: on ties the earlier chunk's item stays
        best_sim[rows[better]] = sims[better]
        best_ids[rows[better]] = self._ids[positions[better]]


def principal_rotation(vectors: np.ndarray, seed: int, sample: int = 20_000) -> np.ndarray:
    """An orthonormal basis (as columns) ordered by the vectors' uncentred second moment."""
    rng = np.random.default_rng(seed)
    rows = vectors if len(vectors) <= sample else vectors[rng.choice(len(vectors), sample,
                                                                     replace=False)]
    moment = rows.astype(np.float64).T @ rows.astype(np.float64)
    _, basis = np.linalg.eigh(moment)
    return np.ascontiguousarray(basis[:, ::-1], dtype=np.float32)


def spherical_kmeans(sample: np.ndarray, k: int, rng: np.random.Generator,
                      iterations: int = 8) -> np.ndarray:
    """``k`` unit centroids of unit vectors (k-means on cosine similarity)."""
    centroids = sample[rng.choice(len(sample), k, replace=False)].copy()
    for _ in range(iterations):
        assign = np.concatenate([(sample[s : s + 8192] @ centroids.T).argmax(axis=1)
                                 for s in range(0, len(sample), 8192)])
        counts = np.bincount(assign, minlength=k)
        order = np.argsort(assign, kind="stable")
        sums = np.zeros_like(centroids)
        filled = counts > 0
        sums[filled] = np.add.reduceat(sample[order], (np.cumsum(counts) - counts)[filled],
                                       axis=0)
        if not filled.all():
            sums[~filled] = sample[rng.choice(len(sample), int((~filled).sum()), replace=False)]
        centroids = normalize(sums)
    return centroids


class IVFKept:
    """Kept vectors in inverted lists around k-means centroids (approximate).

    Each kept vector is stored in the list of its nearest centroid; a query scans the lists of
    its ``nprobe`` nearest centroids. All queries of a block that probe the same list are
    compared with it in one matrix product. A duplicate whose kept match sits in a list the
    query does not probe is missed (kept).
    """

    def __init__(self, embeddings: np.ndarray, nlist: int | None, nprobe: int, seed: int):
        n, dim = embeddings.shape
        rng = np.random.default_rng(seed)
        nlist = max(1, min(nlist or int(math.sqrt(n)), n))
        sample = embeddings[rng.choice(n, min(n, 32 * nlist), replace=False)]
        self._centroids = spherical_kmeans(sample, nlist, rng)
        self._nprobe = max(1, min(nprobe, nlist))
        self._dim = dim
        self._vectors = [np.empty((0, dim), np.float32) for _ in range(nlist)]
        self._ids = [np.empty(0, np.int64) for _ in range(nlist)]
        self._sizes = np.zeros(nlist, np.int64)

    def add(self, vectors: np.ndarray, ids: np.ndarray) -> None:
        if not len(vectors):
            return
        lists = (vectors @ self._centroids.T).argmax(axis=1)
        order = np.argsort(lists, kind="stable")
        for group in np.split(order, np.flatnonzero(np.diff(lists[order])) + 1):
            target = int(lists[group[0]])
            size = int(self._sizes[target])
            end = size + len(group)
            if end > len(self._vectors[target]):
                capacity = max(end, 2 * len(self._vectors[target]), 16)
                grown = np.empty((capacity, self._dim), np.float32)
                grown[:size] = self._vectors[target][:size]
                grown_ids = np.empty(capacity, np.int64)
                grown_ids[:size] = self._ids[target][:size]
                self._vectors[target], self._ids[target] = grown, grown_ids
            self._vectors[target][size:end] = vectors[group]
            self._ids[target][size:end] = ids[group]
            self._sizes[target] = end

    def best(self, queries: np.ndarray, threshold: float) -> tuple[np.ndarray, np.ndarray]:
        """Best kept match found for every query (``-inf`` and -1 when none was found)."""
        count = len(queries)
        best_sim = np.full(count, -np.inf, np.float32)
        best_ids = np.full(count, -1, np.int64)
        scores = queries @ self._centroids.T
        if self._nprobe < scores.shape[1]:
            probes = np.argpartition(-scores, self._nprobe - 1, axis=1)[:, : self._nprobe]
        else:
            probes = np.broadcast_to(np.arange(scores.shape[1]), scores.shape)
        flat = probes.ravel()
        order = np.argsort(flat, kind="stable")
        lists = flat[order]
        askers = np.repeat(np.arange(count), probes.shape[1])[order]
        edges = np.flatnonzero(np.diff(lists)) + 1
        for begin, end in zip(np.r_[0, edges].tolist(), np.r_[edges, len(lists)].tolist(),
                              strict=True):
            target = int(lists[begin])
            size = int(self._sizes[target])
            if not size:
                continue
            who = askers[begin:end]
            sims = queries[who] @ self._vectors[target][:size].T
            arg = sims.argmax(axis=1)
            top = sims[np.arange(len(who)), arg]
            ids = self._ids[target][arg]
            better = (top > best_sim[who]) | ((top == best_sim[who]) & (ids < best_ids[who]))
            best_sim[who[better]] = top[better]
            best_ids[who[better]] = ids[better]
        return best_sim, best_ids


def one_blas_thread() -> contextlib.AbstractContextManager:
    """A context limiting BLAS to one thread (a no-op without threadpoolctl)."""
    try:
        from threadpoolctl import threadpool_limits
    except ImportError:
        return contextlib.nullcontext()
    return threadpool_limits(limits=1, user_api="blas")
