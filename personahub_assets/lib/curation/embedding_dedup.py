"""Near-duplicate removal by cosine similarity of embeddings.

``embedding_near_duplicates`` applies the same keep/drop rule as the MinHash stage: items are
visited in input order and an item is dropped when its cosine similarity with an already kept
item reaches the threshold. It processes the corpus in blocks: each block first asks an index
of the kept items of earlier blocks (:mod:`.vector_index`) for its best match, then is
resolved in order inside the block with one Gram matrix.
"""

from __future__ import annotations

import contextlib
import functools
from collections.abc import Sequence
from typing import Any, NamedTuple

import numpy as np

from personahub_assets.lib.curation.coverage import DEFAULT_MIN_COVERAGE
from personahub_assets.lib.curation.vector_index import (
    HEAD_DIMS,
    ExactKept,
    IVFKept,
    one_blas_thread,
    principal_rotation,
)
from personahub_assets.lib.curation.vectors import normalize

DEFAULT_THRESHOLD = 0.9
EXACT_INDEX_MAX_ITEMS = 100_000


class EmbeddingDuplicate(NamedTuple):
    """One dropped item: its index, the kept item it duplicates, and their cosine."""

    index: int
    duplicate_of: int
    similarity: float


def resolve_block(block: np.ndarray, start: int, threshold: float, prior_sim: np.ndarray,
                   prior_ids: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Keep/drop one block in order, given each item's best kept match in earlier blocks.

    Returns:
        ``(kept, best_sim, best_ids)`` for the block's items; for dropped items ``best_ids``
        is the most similar kept item (earliest on ties) and ``best_sim`` its similarity.
    """
    gram = block @ block.T
    earlier = gram >= threshold
    earlier &= _lower_triangle(len(block))
    kept = prior_sim < threshold
    best_sim, best_ids = prior_sim.copy(), prior_ids.copy()
    for j in np.flatnonzero(earlier.any(axis=1)).tolist():
        matches = np.flatnonzero(earlier[j, :j] & kept[:j])
        if len(matches):
            k = matches[np.argmax(gram[j, matches])]
            if gram[j, k] > best_sim[j]:  # strict: on ties the earlier block's item stays
                best_sim[j] = gram[j, k]
                best_ids[j] = start + k
            kept[j] = False
    return kept, best_sim, best_ids


@functools.lru_cache(maxsize=4)
def _lower_triangle(size: int) -> np.ndarray:
    """Boolean mask of the entries strictly below the diagonal (read-only, cached)."""
    mask = np.tri(size, k=-1, dtype=bool)
    mask.flags.writeable = False
    return mask


def embedding_near_duplicates(
    embeddings: np.ndarray,
    threshold: float = DEFAULT_THRESHOLD,
    *,
    index: str = "auto",
    block_size: int = 2048,
    nlist: int | None = None,
    nprobe: int = 32,
    seed: int = 0,
    assume_normalized: bool = False,
) -> list[EmbeddingDuplicate]:
    """Near-duplicates to drop, deciding in input order (earlier items win).

    Item ``j`` is dropped when its cosine similarity with an already kept item ``i < j`` is at
    least ``threshold``; it records the most similar kept item (the earliest on ties) and that
    similarity. Every other item is kept, so with ``index="exact"`` no two kept items reach
    the threshold.

    Args:
        embeddings: Array of shape ``(n, dim)``, one row per item in decision order. Rows are
            normalized here unless ``assume_normalized``; all-zero rows never match anything.
        threshold: Cosine at or above which an item counts as a duplicate (0.9 by default; the
            PersonaHub paper suggests 0.5 when diversity matters more than volume).
        index: How kept items are searched. ``"exact"``: every kept item is considered, with
            a Cauchy-Schwarz filter on a few principal coordinates so that only candidates
            that can reach the threshold get a full product; decisions are exact (up to float
            rounding), time grows with items x kept items. ``"ivf"``: inverted lists around
            ``nlist`` k-means centroids, ``nprobe`` probed per item; time grows about linearly,
            but a duplicate whose kept match lies in an unprobed list is missed (kept).
            ``"auto"``: exact up to 100,000 items, ivf above.
        block_size: Items decided per step.
        nlist: Inverted lists for ``"ivf"``; default ``sqrt(n)``.
        nprobe: Lists probed per item for ``"ivf"``.
        seed: Seed of the samples behind the rotation and the k-means.
        assume_normalized: Skip normalization for rows already of unit norm.

    Returns:
        The dropped items as ``EmbeddingDuplicate(index, duplicate_of, similarity)`` tuples,
        sorted by index.
    """
    vectors = np.asarray(embeddings, dtype=np.float32)
    if vectors.ndim != 2:
        raise ValueError(f"embeddings must be 2-D, got shape {vectors.shape}")
    if block_size < 1:
        raise ValueError("block_size must be >= 1")
    if index not in ("auto", "exact", "ivf"):
        raise ValueError(f"index must be 'auto', 'exact' or 'ivf', got {index!r}")
    if not assume_normalized:
        vectors = normalize(vectors)
    n, dim = vectors.shape
    if n == 0:
        return []
    if index == "auto":
        index = "exact" if n <= EXACT_INDEX_MAX_ITEMS else "ivf"
    kept_index: ExactKept | IVFKept
    if index == "ivf":
        kept_index = IVFKept(vectors, nlist, nprobe, seed)
    else:
        split = HEAD_DIMS if dim >= 2 * HEAD_DIMS else 0
        if split:
            vectors = vectors @ principal_rotation(vectors, seed)
        kept_index = ExactKept(dim, n, split)
    # The inverted lists are scanned with many small matrix products; a multithreaded BLAS
    # spends far longer synchronizing its threads than computing on those.
    return decide_in_order(vectors, threshold, kept_index, block_size,
                           single_threaded_blas=index == "ivf")


def decide_in_order(vectors: np.ndarray, threshold: float, kept_index: Any,
                    block_size: int = 2048,
                    single_threaded_blas: bool = False) -> list[EmbeddingDuplicate]:
    """The keep/drop loop of :func:`embedding_near_duplicates` over any index of kept items.

    ``kept_index`` has ``add(vectors, ids)`` and ``best(queries, threshold) -> (similarity,
    id)`` arrays (``-inf`` and -1 where no kept item reaches the threshold). Benchmarks pass
    other libraries' indexes here, so that only the search differs.
    """
    n = len(vectors)
    duplicates: list[EmbeddingDuplicate] = []
    limits = one_blas_thread() if single_threaded_blas else contextlib.nullcontext()
    with limits:
        for start in range(0, n, block_size):
            block = np.ascontiguousarray(vectors[start : start + block_size])
            prior_sim, prior_ids = kept_index.best(block, threshold)
            kept, best_sim, best_ids = resolve_block(block, start, threshold, prior_sim,
                                                      prior_ids)
            duplicates.extend(
                EmbeddingDuplicate(start + j, int(best_ids[j]), float(best_sim[j]))
                for j in np.flatnonzero(~kept).tolist())
            keep_rows = np.flatnonzero(kept)
            kept_index.add(block[keep_rows], keep_rows + start)
    return duplicates


class CoverageSplit(NamedTuple):
    """Embedding-stage decisions with the texts the encoder could not see set apart."""

    duplicates: list[EmbeddingDuplicate]  # indices into the full input
    unseen: list[int]  # left out of the embedding stage: coverage below the minimum
    coverage: np.ndarray  # per input text


def embedding_near_duplicates_where_seen(
    embeddings: np.ndarray,
    coverage: np.ndarray | Sequence[float],
    threshold: float = DEFAULT_THRESHOLD,
    min_coverage: float = DEFAULT_MIN_COVERAGE,
    **options: Any,
) -> CoverageSplit:
    """``embedding_near_duplicates`` over the texts the encoder sees, in input order.

    Texts whose coverage is below ``min_coverage`` take no part: they are never dropped as
    duplicates, and no other text is dropped as a duplicate of them. MinHash still applies
    to them upstream.

    Args:
        embeddings: ``(n, dim)`` rows in decision order.
        coverage: ``encoder_coverage`` of each row's text.
        threshold: Cosine at or above which an item counts as a duplicate.
        min_coverage: Coverage below which embedding evidence is not used.
        **options: Passed on to ``embedding_near_duplicates``.
    """
    coverage = np.asarray(coverage, dtype=np.float32)
    vectors = np.asarray(embeddings)
    if len(coverage) != len(vectors):
        raise ValueError(f"{len(coverage)} coverage values for {len(vectors)} embeddings")
    seen = np.flatnonzero(coverage >= min_coverage)
    found = embedding_near_duplicates(vectors[seen], threshold, **options) if len(seen) else []
    duplicates = [EmbeddingDuplicate(int(seen[d.index]), int(seen[d.duplicate_of]),
                                     d.similarity) for d in found]
    unseen = np.flatnonzero(coverage < min_coverage).tolist()
    return CoverageSplit(duplicates, unseen, coverage)


def kept_indices(n: int, duplicates: Sequence[EmbeddingDuplicate]) -> list[int]:
    """Indices of the items that survive ``duplicates`` out of ``n``, in order."""
    dropped = {duplicate.index for duplicate in duplicates}
    return [i for i in range(n) if i not in dropped]
