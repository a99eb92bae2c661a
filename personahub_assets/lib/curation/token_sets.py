"""Token sets: each text's distinct tokens, their MinHash signatures, and exact Jaccard.

``TokenSets`` holds each text's distinct tokens as sorted integer ranks (rarest first);
``MinHasher`` computes the signatures of all texts of one length at once with numpy;
``exact_jaccard`` verifies pairs of sets exactly.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass

import numpy as np

from personahub_assets.lib.curation.shingles import TokenizedTexts, token_hash, tokenize

_UINT32_MAX = np.iinfo(np.uint32).max
_SIGNATURE_BLOCK = 8_192
_COMPARE_BUDGET = 1 << 24
_SLICE = 1 << 20


def _length_groups(lengths: np.ndarray) -> Iterator[tuple[int, np.ndarray]]:
    """``(length, indices)`` for each distinct length, indices ascending within a group."""
    if len(lengths) and lengths.min() >= 0 and lengths.max() < 1 << 16:
        lengths = lengths.astype(np.uint16)  # a stable sort of 16-bit keys is a radix sort
    order = np.argsort(lengths, kind="stable")
    ordered = lengths[order]
    bounds = np.flatnonzero(np.diff(ordered)) + 1
    for group in np.split(order, bounds):
        if len(group):
            yield int(lengths[group[0]]), group


def _gather_rows(flat: np.ndarray, starts: np.ndarray, width: int) -> np.ndarray:
    """The ``width`` consecutive elements of ``flat`` from each start, as a 2-D array."""
    return flat[starts[:, None] + np.arange(width)]


@dataclass(frozen=True)
class TokenSets:
    """Each text's distinct tokens as integer token numbers, stored flat.

    Set ``i`` is ``values[starts[i]:starts[i] + sizes[i]]`` and ``hashes[number]`` is the
    token's ``token_hash``. ``from_tokenized`` numbers tokens by rank, rarest first, and sorts
    each set, so a set begins with its rarest tokens, which is what prefix filtering needs;
    signatures only need the members, in any order.
    """

    values: np.ndarray
    starts: np.ndarray
    sizes: np.ndarray
    hashes: np.ndarray

    def __len__(self) -> int:
        return len(self.sizes)

    @classmethod
    def from_tokenized(cls, tokenized: TokenizedTexts) -> TokenSets:
        """Deduplicate and sort every text's tokens, all texts of one length at a time."""
        frequency = np.zeros(len(tokenized.hashes), np.int64)
        for begin in range(0, len(tokenized.ids), _SLICE):  # bincount copies its input to intp
            frequency += np.bincount(tokenized.ids[begin : begin + _SLICE],
                                     minlength=len(tokenized.hashes))
        by_rarity = np.argsort(frequency, kind="stable")
        rank_of = np.empty(len(by_rarity), np.int32)
        rank_of[by_rarity] = np.arange(len(by_rarity), dtype=np.int32)
        hashes = tokenized.hashes[by_rarity]
        n = len(tokenized)
        starts = np.zeros(n, np.int64)
        sizes = np.zeros(n, np.int32)
        pieces: list[np.ndarray] = []
        filled = 0
        for length, group in _length_groups(np.diff(tokenized.offsets)):
            if length == 0:
                starts[group] = filled
                continue
            for begin in range(0, len(group), max(1, _SLICE // length)):
                docs = group[begin : begin + max(1, _SLICE // length)]
                ranks = rank_of[_gather_rows(tokenized.ids, tokenized.offsets[docs], length)]
                ranks.sort(axis=1)
                first = np.ones(ranks.shape, bool)
                first[:, 1:] = ranks[:, 1:] != ranks[:, :-1]
                doc_sizes = first.sum(axis=1)
                sizes[docs] = doc_sizes
                starts[docs] = filled + np.cumsum(doc_sizes) - doc_sizes
                pieces.append(ranks[first])
                filled += int(doc_sizes.sum())
        values = np.concatenate(pieces) if pieces else np.empty(0, np.int32)
        return cls(values=values, starts=starts, sizes=sizes, hashes=hashes)

    @classmethod
    def from_texts(cls, texts: Sequence[str]) -> TokenSets:
        """``word_set`` of every text, in the flat integer form."""
        return cls.from_tokenized(tokenize(texts))

    def padded(self, docs: np.ndarray, width: int, fill: int) -> np.ndarray:
        """The first ``width`` members of each doc's set as rows, padded with ``fill``."""
        rows = np.full((len(docs), width), fill, np.int32)
        starts, sizes = self.starts[docs], self.sizes[docs]
        for column in range(width):
            present = np.flatnonzero(sizes > column)
            rows[present, column] = self.values[starts[present] + column]
        return rows


class MinHasher:
    """Computes MinHash signatures with a fixed, seeded family of hash functions."""

    def __init__(self, num_perm: int = 128, seed: int = 1):
        rng = np.random.default_rng(seed)
        # Multiply-shift hashing: odd 64-bit multipliers, top 32 bits kept.
        self.a = rng.integers(1, 2**63, size=num_perm, dtype=np.uint64) | np.uint64(1)
        self.b = rng.integers(0, 2**63, size=num_perm, dtype=np.uint64)
        self.num_perm = num_perm

    def permuted_minima(self, hashes: np.ndarray) -> np.ndarray:
        """MinHash of equal-length token-hash rows, as a ``(num_perm, rows)`` uint64 array.

        ``hashes`` is ``(rows, length)`` with ``length >= 1``; repeated tokens in a row do not
        change its minima. The minimum is taken on the full 64-bit values and shifted once:
        taking the top 32 bits is monotone, so it commutes with the minimum.
        """
        columns = np.ascontiguousarray(hashes.T)
        a, b = self.a[:, None], self.b[:, None]
        with np.errstate(over="ignore"):
            minima = np.multiply(a, columns[0])
            minima += b
            mixed = np.empty_like(minima)
            for column in columns[1:]:
                np.multiply(a, column, out=mixed)
                mixed += b
                np.minimum(minima, mixed, out=minima)
        minima >>= np.uint64(32)
        return minima

    def signature_blocks(self, sets: TokenSets) -> Iterator[tuple[np.ndarray, np.ndarray]]:
        """``(docs, minima)`` blocks covering every set; ``minima`` is ``(num_perm, len(docs))``.

        Sets of one size are hashed together; an empty set gets the all-max signature.
        """
        for size, docs in _length_groups(sets.sizes):
            for begin in range(0, len(docs), _SIGNATURE_BLOCK):
                block = docs[begin : begin + _SIGNATURE_BLOCK]
                if size == 0:
                    yield block, np.full((self.num_perm, len(block)), _UINT32_MAX, np.uint64)
                    continue
                members = _gather_rows(sets.values, sets.starts[block], size)
                yield block, self.permuted_minima(sets.hashes[members])

    def signatures_of_sets(self, sets: TokenSets) -> np.ndarray:
        """Signatures of all sets as an ``(n, num_perm)`` uint32 array."""
        out = np.empty((len(sets), self.num_perm), dtype=np.uint32)
        for docs, minima in self.signature_blocks(sets):
            out[docs] = minima.T
        return out

    def signature(self, tokens: frozenset[str]) -> np.ndarray:
        """Signature of one token set; an empty set gets the all-max signature."""
        return self.signatures([tokens])[0]

    def signatures(self, token_sets: Sequence[frozenset[str]]) -> np.ndarray:
        """Signatures of many token sets as an (n, num_perm) uint32 array."""
        vocabulary: dict[str, int] = {}
        members = [vocabulary.setdefault(token, len(vocabulary))
                   for tokens in token_sets for token in tokens]
        sizes = np.fromiter(map(len, token_sets), np.int32, len(token_sets))
        starts = np.zeros(len(token_sets), np.int64)
        np.cumsum(sizes[:-1], out=starts[1:])
        hashes = np.fromiter((token_hash(token.encode("utf-8", "surrogatepass"))
                              for token in vocabulary), np.uint64, len(vocabulary))
        sets = TokenSets(values=np.asarray(members, np.int32), starts=starts, sizes=sizes,
                         hashes=hashes)
        return self.signatures_of_sets(sets)


def exact_jaccard(sets: TokenSets, left: np.ndarray, right: np.ndarray) -> np.ndarray:
    """Exact Jaccard similarity of each pair ``(left[k], right[k])`` of sets.

    Pairs are grouped by their larger set size and each group compares padded rows element
    by element, in batches of bounded size.

    Args:
        sets: The token sets.
        left: Index of each pair's first set.
        right: Index of each pair's second set.

    Returns:
        A float64 array of similarities, equal to ``jaccard`` on the same sets (1.0 for two
        empty sets).
    """
    left, right = np.asarray(left, np.int64), np.asarray(right, np.int64)
    size_left = sets.sizes[left].astype(np.int64)
    size_right = sets.sizes[right].astype(np.int64)
    common = np.zeros(len(left), np.int64)
    for width, group in _length_groups(np.maximum(size_left, size_right)):
        if width == 0:
            continue
        for begin in range(0, len(group), max(1, _COMPARE_BUDGET // (width * width))):
            batch = group[begin : begin + max(1, _COMPARE_BUDGET // (width * width))]
            rows_left = sets.padded(left[batch], width, -1)
            rows_right = sets.padded(right[batch], width, -2)
            matches = rows_left[:, :, None] == rows_right[:, None, :]
            common[batch] = matches.sum(axis=(1, 2))
    union = size_left + size_right - common
    return np.where(union > 0, common / np.maximum(union, 1), 1.0)
