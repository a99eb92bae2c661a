"""The hub's decisions, plain data in and plain data out: the settings they depend on,
MinHash drops of a batch against the earlier survivors its band keys collide with, and
embedding drops against the hub's vectors (exact search, or inverted lists over frozen
centroids)."""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field

import numpy as np

from personahub_assets.lib.curation.coverage import DEFAULT_MIN_COVERAGE
from personahub_assets.lib.curation.embedding_dedup import resolve_block
from personahub_assets.lib.curation.lsh import SimilarPairs, band_keys, similar_pairs
from personahub_assets.lib.curation.minhash import resolve_duplicates
from personahub_assets.lib.curation.token_sets import MinHasher, TokenSets, exact_jaccard
from personahub_assets.lib.curation.vector_index import (
    HEAD_DIMS,
    ExactKept,
    one_blas_thread,
    spherical_kmeans,
)

_EMBEDDING_BLOCK = 2048


@dataclass(frozen=True)
class HubSettings:
    """Everything a decision depends on; stored in the ledger with every batch."""

    minhash_threshold: float = 0.9
    min_words: int = 4
    max_words: int = 80
    num_perm: int = 128
    bands: int = 16
    rows: int = 8
    seed: int = 1
    embedding_dedup: bool = True
    embedding_threshold: float = 0.9
    encoder: str = "static"
    #: Exact search until the hub holds this many vectors; then IVF centroids are trained
    #: once on the hub and frozen (0: always exact).
    ivf_min_hub: int = 100_000
    ivf_nlist: int = 1024
    ivf_nprobe: int = 16
    #: Texts the encoder represents below this share (``encoder_coverage``) take no part in
    #: embedding dedup: MinHash alone decides for them.
    min_coverage: float = DEFAULT_MIN_COVERAGE

    def to_json(self) -> str:
        return json.dumps(asdict(self), sort_keys=True)


@dataclass
class BatchOutcome:
    """What curating one batch decided."""

    batch: str
    seq: int
    personas_in: int = 0
    kept: int = 0
    filtered: int = 0
    exact: int = 0
    minhash: int = 0
    embedding: int = 0
    #: Personas the encoder could not represent, left to MinHash alone.
    unseen: int = 0
    index: str = "exact"
    seconds: dict[str, float] = field(default_factory=dict)

    @property
    def dropped(self) -> int:
        return self.filtered + self.exact + self.minhash + self.embedding


def text_band_keys(texts: Sequence[str], settings: HubSettings) -> np.ndarray:
    """LSH band keys ``(bands, n)`` of texts, the ones :func:`similar_pairs` uses."""
    sets = TokenSets.from_texts(texts)
    keys = np.empty((settings.bands, len(sets)), np.uint64)
    hasher = MinHasher(num_perm=settings.num_perm, seed=settings.seed)
    for docs, minima in hasher.signature_blocks(sets):
        keys[:, docs] = band_keys(minima, settings.bands, settings.rows, settings.seed)
    return keys


def minhash_decisions(texts: Sequence[str], prior_texts: Sequence[str],
                      prior_pairs: tuple[np.ndarray, np.ndarray], settings: HubSettings
                      ) -> list[tuple[int, int, float]]:
    """MinHash drops of ``texts`` (a batch, in order) after ``prior_texts`` (earlier MinHash
    survivors that collide with the batch, in order; all kept).

    ``prior_pairs`` are ``(prior index, batch index)`` band collisions from the state join.
    Returns ``(batch index, duplicate, similarity)``; ``duplicate`` < 0 names prior text
    ``-duplicate - 1``, otherwise a batch index.
    """
    if settings.minhash_threshold > 1.0 or not texts:
        return []
    inner = similar_pairs(texts, settings.minhash_threshold, settings.num_perm,
                          settings.bands, settings.rows, settings.seed)
    h = len(prior_texts)
    left, right = prior_pairs
    # Pairs of representatives only (as in similar_pairs): a later copy of a set follows its
    # representative's decision.
    own = inner.representative[right] == right
    left, right = left[own], right[own]
    if len(left):
        sets = TokenSets.from_texts(list(prior_texts) + list(texts))
        sims = exact_jaccard(sets, left, right + h)
        similar = sims >= settings.minhash_threshold
        left, right, sims = left[similar], right[similar] + h, sims[similar]
    else:
        sims = np.empty(0)
    pairs = SimilarPairs(
        representative=np.concatenate([np.arange(h), inner.representative + h]),
        left=np.concatenate([left, inner.left + h]).astype(np.int64),
        right=np.concatenate([right, inner.right + h]).astype(np.int64),
        similarity=np.concatenate([sims, inner.similarity]))
    out = []
    for d in resolve_duplicates(pairs):
        assert d.index >= h, "a prior survivor is never dropped again"
        dup = d.duplicate_of - h if d.duplicate_of >= h else -d.duplicate_of - 1
        out.append((d.index - h, dup, d.similarity))
    return out


@dataclass
class HubVectors:
    """The hub's vectors in hub order, with their IVF lists and the frozen centroids."""

    vectors: np.ndarray
    lists: np.ndarray | None = None
    centroids: np.ndarray | None = None


def search_hub(hub: HubVectors, queries: np.ndarray, threshold: float, nprobe: int
               ) -> tuple[np.ndarray, np.ndarray]:
    """Best hub match of every query at or above ``threshold``: ``(similarity, hub index)``,
    ``(-inf, -1)`` when there is none; ties go to the earliest hub item.

    The one place the embedding index lives: exact search (all hub vectors, with a proven
    Cauchy-Schwarz filter) until centroids exist, then the ``nprobe`` nearest inverted lists
    of the frozen centroids. A faiss index would replace this function's body.
    """
    n = len(queries)
    best_sim = np.full(n, -np.inf, np.float32)
    best_idx = np.full(n, -1, np.int64)
    m = len(hub.vectors)
    if not n or not m:
        return best_sim, best_idx
    if hub.centroids is None:
        dim = hub.vectors.shape[1]
        index = ExactKept(dim, m, HEAD_DIMS if dim >= 2 * HEAD_DIMS else 0)
        index.add(hub.vectors, np.arange(m))
        return index.best(queries, threshold)
    nlist = len(hub.centroids)
    probes = min(max(1, nprobe), nlist)
    scores = queries @ hub.centroids.T
    chosen = (np.argpartition(-scores, probes - 1, axis=1)[:, :probes] if probes < nlist
              else np.broadcast_to(np.arange(nlist), scores.shape))
    members = np.argsort(hub.lists, kind="stable")  # hub order within each list
    bounds = np.searchsorted(hub.lists[members], np.arange(nlist + 1))
    flat = chosen.ravel()
    order = np.argsort(flat, kind="stable")
    askers = np.repeat(np.arange(n), probes)[order]
    lists = flat[order]
    edges = np.flatnonzero(np.diff(lists)) + 1
    # Many small products: a multithreaded BLAS spends longer synchronizing than computing.
    with one_blas_thread():
        for begin, end in zip(np.r_[0, edges].tolist(), np.r_[edges, len(lists)].tolist(),
                              strict=True):
            target = int(lists[begin])
            ids = members[bounds[target]:bounds[target + 1]]
            if not len(ids):
                continue
            who = askers[begin:end]
            sims = queries[who] @ hub.vectors[ids].T
            arg = sims.argmax(axis=1)
            top, found = sims[np.arange(len(who)), arg], ids[arg]
            better = (top > best_sim[who]) | ((top == best_sim[who])
                                              & (found < best_idx[who]))
            best_sim[who[better]] = top[better]
            best_idx[who[better]] = found[better]
    miss = best_sim < threshold
    best_sim[miss], best_idx[miss] = -np.inf, -1
    return best_sim, best_idx


def embedding_decisions(vectors: np.ndarray, hub: HubVectors, threshold: float,
                        nprobe: int) -> list[tuple[int, int, float]]:
    """Embedding drops of a batch's vectors (in order) against the hub and within the batch.

    Returns ``(batch index, duplicate, similarity)``; ``duplicate`` < 0 names hub item
    ``-duplicate - 1``, otherwise a batch index. On equal similarity the hub item wins (it
    comes first).
    """
    n = len(vectors)
    if not n:
        return []
    prior_sim, hub_idx = search_hub(hub, vectors, threshold, nprobe)
    prior_ids = np.where(hub_idx >= 0, -hub_idx - 2, -1)  # -1: no match; < -1: a hub item
    dim = vectors.shape[1]
    inside = ExactKept(dim, n, HEAD_DIMS if dim >= 2 * HEAD_DIMS else 0)
    out = []
    for start in range(0, n, _EMBEDDING_BLOCK):
        block = np.ascontiguousarray(vectors[start:start + _EMBEDDING_BLOCK])
        stop = start + len(block)
        sim_in, ids_in = inside.best(block, threshold)
        use_in = sim_in > prior_sim[start:stop]  # strict: the hub item wins ties
        sims = np.where(use_in, sim_in, prior_sim[start:stop])
        ids = np.where(use_in, ids_in, prior_ids[start:stop])
        kept, best_sim, best_ids = resolve_block(block, start, threshold, sims, ids)
        for j in np.flatnonzero(~kept).tolist():
            ref = int(best_ids[j])
            out.append((start + j, ref if ref >= 0 else ref + 1, float(best_sim[j])))
        rows = np.flatnonzero(kept)
        inside.add(block[rows], rows + start)
    return out


def train_centroids(vectors: np.ndarray, nlist: int, seed: int) -> np.ndarray:
    """IVF centroids of the hub's vectors (spherical k-means on a seeded sample)."""
    rng = np.random.default_rng(seed)
    nlist = max(1, min(nlist, len(vectors)))
    sample = vectors[np.sort(rng.choice(len(vectors), min(len(vectors), 32 * nlist),
                                        replace=False))]
    return spherical_kmeans(np.ascontiguousarray(sample), nlist, rng)


def assign_lists(vectors: np.ndarray, centroids: np.ndarray) -> np.ndarray:
    """Nearest centroid of every vector."""
    out = np.empty(len(vectors), np.int32)
    for s in range(0, len(vectors), 16_384):
        out[s:s + 16_384] = (vectors[s:s + 16_384] @ centroids.T).argmax(axis=1)
    return out
