"""MinHash near-duplicate detection with LSH banding and exact Jaccard verification.

Signatures use word 1-grams and multiply-shift hashing (128 permutations by default). The
banding defaults (16 bands of 8 rows) catch a pair at Jaccard 0.9 with probability
1 - (1 - 0.9**8)**16 > 0.9998; every candidate pair is then verified on the exact token sets,
so precision is exact and the banding only costs time.

The corpus path is vectorised so that a million short texts fit in well under a minute. It
runs through four modules, one job each:

1. :mod:`.shingles`: ``tokenize`` turns all texts into integer token ids in one pass per chunk
   (a bytes translation table for ASCII text, the ``word_set`` regex for everything else).
2. :mod:`.token_sets`: ``TokenSets`` holds each text's distinct tokens as sorted integer
   ranks (rarest first), and ``MinHasher`` computes the signatures of all texts of one length
   at once with numpy.
3. :mod:`.lsh`: ``band_keys`` folds each band of a signature into one 64-bit bucket key;
   ``similar_pairs`` finds colliding bucket keys per band, drops candidates that provably
   cannot reach the threshold (size and prefix filters), and verifies the rest exactly.
4. here: ``near_duplicates`` makes the keep/drop decisions in input order.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from personahub_assets.lib.curation.lsh import SimilarPairs, similar_pairs


def band_recall(similarity: float, bands: int, rows: int) -> float:
    """Probability that a pair with this Jaccard similarity becomes an LSH candidate."""
    return 1.0 - (1.0 - similarity**rows) ** bands


@dataclass(frozen=True)
class NearDuplicate:
    """One dropped item: its index, the kept item it duplicates, and their Jaccard."""

    index: int
    duplicate_of: int
    similarity: float


def resolve_duplicates(pairs: SimilarPairs) -> list[NearDuplicate]:
    """Keep/drop decisions in index order (earlier items win) from verified similar pairs.

    A representative is dropped when a kept earlier representative is similar to it; it
    records the most similar one (the earliest on ties). Every later copy of a set is always
    dropped: the set's representative is either kept (the copy duplicates it, similarity
    1.0) or dropped by a kept item that the copy also matches, so the copy records its best
    kept match among the representative's neighbours that precede it. Only representatives
    can be kept, and a representative is kept exactly when it has no decision here.

    Args:
        pairs: Verified similar pairs from ``similar_pairs``.

    Returns:
        The dropped items in index order.
    """
    order = np.lexsort((pairs.left, -pairs.similarity, pairs.right))
    later, earlier = pairs.right[order].tolist(), pairs.left[order].tolist()
    scores = pairs.similarity[order].tolist()
    chosen: dict[int, int] = {}  # dropped representative -> position of its pair
    for position, (j, i) in enumerate(zip(later, earlier, strict=True)):
        # Sorted by j, so every i < j is already decided when j comes up.
        if j not in chosen and i not in chosen:
            chosen[j] = position
    index = list(chosen)
    duplicate_of = [earlier[chosen[j]] for j in index]
    similarity = [scores[chosen[j]] for j in index]

    copies = np.flatnonzero(pairs.representative != np.arange(len(pairs.representative)))
    reps = pairs.representative[copies]
    is_dropped = np.zeros(len(pairs.representative), bool)
    is_dropped[index] = True
    of_kept = ~is_dropped[reps]
    index += copies[of_kept].tolist()
    duplicate_of += reps[of_kept].tolist()
    similarity += [1.0] * int(of_kept.sum())
    if not of_kept.all():
        # Copies of dropped representatives: the best kept neighbour that precedes the copy.
        troubled = np.unique(reps[~of_kept])
        touches = np.isin(pairs.left, troubled) | np.isin(pairs.right, troubled)
        neighbours: dict[int, list[tuple[float, int]]] = defaultdict(list)
        for i, j, sim in zip(pairs.left[touches].tolist(), pairs.right[touches].tolist(),
                             pairs.similarity[touches].tolist(), strict=True):
            neighbours[i].append((-sim, j))
            neighbours[j].append((-sim, i))
        for copy, rep in zip(copies[~of_kept].tolist(), reps[~of_kept].tolist(), strict=True):
            for negative_sim, m in sorted(neighbours[rep]):
                if m < copy and not is_dropped[m]:
                    index.append(copy)
                    duplicate_of.append(m)
                    similarity.append(-negative_sim)
                    break
    ordered = np.argsort(np.asarray(index, np.int64), kind="stable").tolist()
    return [NearDuplicate(index=index[k], duplicate_of=duplicate_of[k],
                          similarity=similarity[k]) for k in ordered]


def near_duplicates(
    texts: Sequence[str],
    threshold: float = 0.9,
    num_perm: int = 128,
    bands: int = 16,
    rows: int = 8,
    seed: int = 1,
) -> list[NearDuplicate]:
    """Near-duplicates to drop, deciding in the order of ``texts`` (earlier items win).

    An item is dropped when its verified Jaccard with an already kept item is at least
    ``threshold``; it records the most similar kept item. No two kept items that were
    LSH candidates reach the threshold.

    Args:
        texts: The texts, in decision order.
        threshold: Jaccard similarity at which an item is dropped.
        num_perm: Signature length.
        bands: LSH bands; with ``rows``, a pair at Jaccard s is a candidate with
            probability ``band_recall(s, bands, rows)``.
        rows: Signature rows per band.
        seed: Seed of the hash functions.

    Returns:
        The dropped items in index order.

    Raises:
        ValueError: If ``bands * rows`` exceeds ``num_perm``.
    """
    if not threshold <= 1.0:  # no Jaccard reaches it (NaN included)
        if bands * rows > num_perm:
            raise ValueError(f"bands*rows={bands * rows} exceeds num_perm={num_perm}")
        return []
    return resolve_duplicates(similar_pairs(texts, threshold, num_perm, bands, rows, seed))
