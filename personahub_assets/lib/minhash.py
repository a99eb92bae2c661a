"""MinHash near-duplicate detection with LSH banding and exact Jaccard verification.

Signatures use word 1-grams and multiply-shift hashing (128 permutations by default). The
banding defaults (16 bands of 8 rows) catch a pair at Jaccard 0.9 with probability
1 - (1 - 0.9**8)**16 > 0.9998; every candidate pair is then verified on the exact token sets,
so precision is exact and the banding only costs time.
"""

from __future__ import annotations

import hashlib
import re
import unicodedata
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

_WORD = re.compile(r"\w+")


def word_set(text: str) -> frozenset[str]:
    """The set of case-folded word 1-grams of a text."""
    return frozenset(_WORD.findall(unicodedata.normalize("NFKC", text).casefold()))


def jaccard(a: frozenset[str], b: frozenset[str]) -> float:
    """Exact Jaccard similarity of two sets (1.0 for two empty sets)."""
    if not a and not b:
        return 1.0
    return len(a & b) / len(a | b)


def band_recall(similarity: float, bands: int, rows: int) -> float:
    """Probability that a pair with this Jaccard similarity becomes an LSH candidate."""
    return 1.0 - (1.0 - similarity**rows) ** bands


class MinHasher:
    """Computes MinHash signatures with a fixed, seeded family of hash functions."""

    def __init__(self, num_perm: int = 128, seed: int = 1):
        rng = np.random.default_rng(seed)
        # Multiply-shift hashing: odd 64-bit multipliers, top 32 bits kept.
        self.a = rng.integers(1, 2**63, size=num_perm, dtype=np.uint64) | np.uint64(1)
        self.b = rng.integers(0, 2**63, size=num_perm, dtype=np.uint64)
        self.num_perm = num_perm
        self._token_cache: dict[str, int] = {}

    def _token_hash(self, token: str) -> int:
        value = self._token_cache.get(token)
        if value is None:
            digest = hashlib.blake2b(token.encode("utf-8", "surrogatepass"), digest_size=8)
            value = int.from_bytes(digest.digest(), "little")
            self._token_cache[token] = value
        return value

    def signature(self, tokens: frozenset[str]) -> np.ndarray:
        """Signature of one token set; an empty set gets the all-max signature."""
        if not tokens:
            return np.full(self.num_perm, np.iinfo(np.uint32).max, dtype=np.uint32)
        hashes = np.fromiter((self._token_hash(t) for t in tokens), np.uint64, len(tokens))
        with np.errstate(over="ignore"):
            mixed = self.a[:, None] * hashes[None, :] + self.b[:, None]
        return (mixed >> np.uint64(32)).min(axis=1).astype(np.uint32)

    def signatures(self, token_sets: Sequence[frozenset[str]]) -> np.ndarray:
        """Signatures of many token sets as an (n, num_perm) uint32 array."""
        out = np.empty((len(token_sets), self.num_perm), dtype=np.uint32)
        for i, tokens in enumerate(token_sets):
            out[i] = self.signature(tokens)
        return out


def candidate_pairs(signatures: np.ndarray, bands: int, rows: int) -> set[tuple[int, int]]:
    """Index pairs (i < j) that share at least one LSH band bucket."""
    n, num_perm = signatures.shape
    if bands * rows > num_perm:
        raise ValueError(f"bands*rows={bands * rows} exceeds num_perm={num_perm}")
    pairs: set[tuple[int, int]] = set()
    for band in range(bands):
        block = np.ascontiguousarray(signatures[:, band * rows : (band + 1) * rows])
        buckets: dict[bytes, list[int]] = defaultdict(list)
        for i in range(n):
            buckets[block[i].tobytes()].append(i)
        for members in buckets.values():
            for x in range(len(members)):
                for y in range(x + 1, len(members)):
                    pairs.add((members[x], members[y]))
    return pairs


@dataclass(frozen=True)
class NearDuplicate:
    """One dropped item: its index, the kept item it duplicates, and their Jaccard."""

    index: int
    duplicate_of: int
    similarity: float


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
    """
    token_sets = [word_set(t) for t in texts]
    signatures = MinHasher(num_perm=num_perm, seed=seed).signatures(token_sets)
    neighbours: dict[int, list[tuple[int, float]]] = defaultdict(list)
    for i, j in candidate_pairs(signatures, bands, rows):
        sim = jaccard(token_sets[i], token_sets[j])
        if sim >= threshold:
            neighbours[j].append((i, sim))  # i < j: i is earlier, so it decides first
    kept: set[int] = set()
    dropped: list[NearDuplicate] = []
    for j in range(len(texts)):
        matches = [(sim, -i, i) for i, sim in neighbours.get(j, ()) if i in kept]
        if matches:
            sim, _, i = max(matches)
            dropped.append(NearDuplicate(index=j, duplicate_of=i, similarity=sim))
        else:
            kept.add(j)
    return dropped
