"""LSH banding and candidate search: which pairs of texts are worth verifying.

``band_keys`` folds each band of a signature into one 64-bit bucket key. ``similar_pairs``
finds colliding bucket keys per band, drops candidates that provably cannot reach the
threshold (size and prefix filters), and verifies the rest by exact Jaccard.

Texts with identical token sets have identical signatures, so they always collide; they are
collapsed onto their first occurrence before banding, which keeps large groups of exact
copies from producing a quadratic number of candidate pairs without changing any decision.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass

import numpy as np

from personahub_assets.lib.curation.token_sets import MinHasher, TokenSets, exact_jaccard

_PAIR_BATCH = 1 << 22
_PREFIX_WIDTH_CAP = 16
_FLOAT_SLACK = 1e-9
_GOLDEN_GAMMA = np.uint64(0x9E3779B97F4A7C15)
_IDENTITY_KEY_SEED = 7


def _band_multipliers(bands: int, rows: int, seed: int) -> np.ndarray:
    """Random odd 64-bit multipliers, ``(bands, rows)``, that fold a band into one key."""
    rng = np.random.default_rng([seed, bands, rows])
    return rng.integers(1, 2**63, size=(bands, rows), dtype=np.uint64) | np.uint64(1)


def band_keys(minima: np.ndarray, bands: int, rows: int, seed: int = 1) -> np.ndarray:
    """One 64-bit bucket key per band of each signature.

    The key is a random linear combination of the band's rows modulo 2**64. Equal bands give
    equal keys; unequal bands collide with probability about 2**-58, which at worst adds a
    candidate pair that exact verification then rejects.

    Args:
        minima: Signatures as a ``(num_perm, n)`` array (one column per text).
        bands: Number of bands.
        rows: Signature rows per band.
        seed: Seed of the random multipliers.

    Returns:
        A ``(bands, n)`` uint64 array.

    Raises:
        ValueError: If ``bands * rows`` exceeds ``num_perm``.
    """
    num_perm = minima.shape[0]
    if bands * rows > num_perm:
        raise ValueError(f"bands*rows={bands * rows} exceeds num_perm={num_perm}")
    multipliers = _band_multipliers(bands, rows, seed)
    keys = np.empty((bands, minima.shape[1]), np.uint64)
    with np.errstate(over="ignore"):
        for band in range(bands):
            rows_of_band = minima[band * rows : (band + 1) * rows].astype(np.uint64, copy=False)
            keys[band] = (rows_of_band * multipliers[band][:, None]).sum(axis=0)
    keys ^= keys >> np.uint64(29)
    return keys


def _equal_key_runs(keys: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Positions whose key occurs more than once, grouped by key: ``(members, run_lengths)``.

    ``members`` lists the runs one after another, positions ascending within a run. Keys are
    hashed, split into cache-sized partitions by their top hash bits (a radix sort), and a
    bincount over the next hash bits discards, per partition, positions alone in their slot;
    only the few positions left are sorted by key. Equal keys share a partition, and the
    radix sort is stable, so positions stay ascending within a run.
    """
    empty = np.empty(0, np.int64)
    if len(keys) < 2:
        return empty, empty
    with np.errstate(over="ignore"):
        mixed = keys.astype(np.uint64, copy=False) * _GOLDEN_GAMMA
    part_bits = min(8, (len(keys) >> 15).bit_length())
    if part_bits:
        part = (mixed >> np.uint64(64 - part_bits)).astype(np.uint8)
        order = np.argsort(part, kind="stable")
        bounds = np.concatenate(([0], np.cumsum(np.bincount(part, minlength=1 << part_bits))))
        mixed = mixed[order] << np.uint64(part_bits)
    else:
        order, bounds = np.arange(len(keys)), np.array([0, len(keys)])
    shared: list[np.ndarray] = []
    for begin, end in zip(bounds[:-1].tolist(), bounds[1:].tolist(), strict=True):
        if end - begin < 2:
            continue
        bits = max(10, (8 * (end - begin)).bit_length())
        slot = (mixed[begin:end] >> np.uint64(64 - bits)).astype(np.intp)
        shared.append(begin + np.flatnonzero(np.bincount(slot, minlength=1 << bits)[slot] > 1))
    maybe = order[np.concatenate(shared)] if shared else empty
    if len(maybe) < 2:
        return empty, empty
    members = maybe[_stable_argsort(keys[maybe].astype(np.uint64, copy=False))]
    ordered = keys[members]
    starts = np.flatnonzero(np.concatenate(([True], ordered[1:] != ordered[:-1])))
    lengths = np.diff(np.append(starts, len(members)))
    repeated = lengths > 1
    return members[np.repeat(repeated, lengths)], lengths[repeated]


def _stable_argsort(keys: np.ndarray) -> np.ndarray:
    """Stable argsort of uint64 keys: least-significant-digit radix sort on 16-bit digits.

    numpy radix-sorts 16-bit keys when asked for a stable sort, which makes this several
    times faster than a comparison sort of the 64-bit keys.
    """
    if len(keys) < 1 << 12:
        return np.argsort(keys, kind="stable")
    order = np.arange(len(keys))
    for shift in range(0, max(1, int(keys.max()).bit_length()), 16):
        digits = ((keys[order] >> np.uint64(shift)) & np.uint64(0xFFFF)).astype(np.uint16)
        order = order[np.argsort(digits, kind="stable")]
    return order


def _select_runs(members: np.ndarray, lengths: np.ndarray, chosen: np.ndarray
                 ) -> tuple[np.ndarray, np.ndarray]:
    """The runs flagged in ``chosen``, in the ``(members, run_lengths)`` form."""
    return members[np.repeat(chosen, lengths)], lengths[chosen]


def _run_pairs(members: np.ndarray, lengths: np.ndarray
               ) -> Iterator[tuple[np.ndarray, np.ndarray]]:
    """All pairs within each run as ``(earlier, later)`` members, in batches of whole runs.

    A batch holds about ``_PAIR_BATCH`` pairs (a single larger run makes its own batch).
    """
    starts = np.cumsum(lengths) - lengths
    cumulative = np.cumsum(lengths * (lengths - 1) // 2)
    begin = 0
    while begin < len(lengths):
        done = int(cumulative[begin - 1]) if begin else 0
        end = max(begin + 1, int(np.searchsorted(cumulative, done + _PAIR_BATCH, "right")))
        run_starts, run_lengths = starts[begin:end], lengths[begin:end]
        within = _ranks_within(run_lengths)
        positions = np.repeat(run_starts, run_lengths) + within
        partners = np.repeat(run_lengths, run_lengths) - 1 - within
        earlier = np.repeat(positions, partners)
        later = earlier + 1 + _ranks_within(partners)
        yield members[earlier], members[later]
        begin = end


def _ranks_within(counts: np.ndarray) -> np.ndarray:
    """``0..c-1`` for each count ``c``, concatenated."""
    total = int(counts.sum())
    return np.arange(total) - np.repeat(np.cumsum(counts) - counts, counts)


def candidate_pairs(signatures: np.ndarray, bands: int, rows: int) -> set[tuple[int, int]]:
    """Index pairs (i < j) that share at least one LSH band bucket."""
    keys = band_keys(np.ascontiguousarray(signatures.T), bands, rows)
    pairs: set[tuple[int, int]] = set()
    for band in range(bands):
        for left, right in _run_pairs(*_equal_key_runs(keys[band])):
            pairs.update(zip(left.tolist(), right.tolist(), strict=True))
    return pairs


@dataclass(frozen=True)
class SimilarPairs:
    """Every verified similar pair found through LSH, over representatives of exact copies.

    ``representative[i]`` is the first text whose token set equals text ``i``'s (``i``
    itself for the first). ``left < right`` are representatives whose exact Jaccard
    ``similarity`` is at least the threshold. Two texts ``x, y`` were found similar when
    they share a representative or their representatives form one of the pairs.
    """

    representative: np.ndarray
    left: np.ndarray
    right: np.ndarray
    similarity: np.ndarray


def _identical_set_representatives(sets: TokenSets, keys: np.ndarray) -> np.ndarray:
    """For every text, the first text with an identical token set (verified exactly)."""
    n = len(sets)
    representative = np.arange(n, dtype=np.int64)
    full_keys = np.zeros(n, np.uint64)
    with np.errstate(over="ignore"):
        for band, multiplier in enumerate(
                _band_multipliers(1, len(keys), _IDENTITY_KEY_SEED)[0]):
            full_keys += keys[band] * multiplier
    members, lengths = _equal_key_runs(full_keys)
    if not len(members):
        return representative
    firsts = np.repeat(members[np.cumsum(lengths) - lengths], lengths)
    others = members != firsts
    firsts, grouped = firsts[others], members[others]
    same_size = sets.sizes[firsts] == sets.sizes[grouped]
    firsts, grouped = firsts[same_size], grouped[same_size]
    identical = exact_jaccard(sets, firsts, grouped) == 1.0
    representative[grouped[identical]] = firsts[identical]
    return representative


def _prefix_rows(sets: TokenSets, threshold: float) -> tuple[np.ndarray, np.ndarray]:
    """Prefix-filter rows: each set's rarest tokens that any match at ``threshold`` must share.

    Two sets with Jaccard >= t share at least ceil(t * |x|) tokens, so under one global token
    order their first |x| - ceil(t * |x|) + 1 tokens intersect. Returns ``(rows, unfiltered)``:
    rows padded with -1, and a mask of sets whose prefix is too long to store (they always
    pass the filter).
    """
    sizes = sets.sizes.astype(np.int64)
    needed = np.ceil(threshold * sizes - _FLOAT_SLACK).astype(np.int64)
    prefix = np.clip(sizes - needed + 1, 0, sizes)
    width = int(min(_PREFIX_WIDTH_CAP, max(1, prefix.max(initial=1))))
    rows = sets.padded(np.arange(len(sets)), width, -1)
    rows[np.arange(width) >= prefix[:, None]] = -1
    return rows, prefix > width


def _band_candidates(keys: np.ndarray, distinct: np.ndarray,
                     prefixes: tuple[np.ndarray, np.ndarray] | None, vocabulary_size: int
                     ) -> Iterator[tuple[np.ndarray, np.ndarray]]:
    """Pairs of texts ``(earlier, later)`` in one band bucket that may reach the threshold.

    ``keys`` are the band's bucket keys of the ``distinct`` texts. With prefix rows, the pairs
    of a bucket are joined on their prefix tokens instead of enumerated, so a large bucket of
    texts that only share common words costs little; texts whose prefix was too long to store
    pair with their whole bucket. A pair may come out more than once.
    """
    members, lengths = _equal_key_runs(keys)
    docs = distinct[members]
    if prefixes is None:
        yield from _run_pairs(docs, lengths)
        return
    rows, unfiltered = prefixes
    bucket_rows = np.take(rows, docs, axis=0)
    present = bucket_rows >= 0
    entry_doc = np.repeat(np.arange(len(docs)), present.sum(axis=1))
    bucket_of_doc = np.repeat(np.arange(len(lengths), dtype=np.uint64), lengths)
    entry_keys = (bucket_of_doc[entry_doc] * np.uint64(vocabulary_size + 1)
                  + bucket_rows[present].astype(np.uint64))
    for earlier, later in _run_pairs(*_equal_key_runs(entry_keys)):
        yield docs[entry_doc[earlier]], docs[entry_doc[later]]
    if len(docs):
        loose = np.logical_or.reduceat(unfiltered[docs], np.cumsum(lengths) - lengths)
        if loose.any():
            yield from _run_pairs(*_select_runs(docs, lengths, loose))


def similar_pairs(
    texts: Sequence[str],
    threshold: float = 0.9,
    num_perm: int = 128,
    bands: int = 16,
    rows: int = 8,
    seed: int = 1,
) -> SimilarPairs:
    """LSH candidates among distinct token sets, verified by exact Jaccard >= ``threshold``.

    Candidates that provably cannot reach the threshold are skipped before verification: a
    size filter (|x| >= t|y|) and, for 0 < t <= 1, a prefix filter.

    Args:
        texts: The texts, in decision order.
        threshold: Jaccard similarity a pair must reach.
        num_perm: Signature length.
        bands: LSH bands.
        rows: Signature rows per band.
        seed: Seed of the hash functions.

    Returns:
        Each text's representative (first text with the same token set) and the verified
        pairs of representatives.

    Raises:
        ValueError: If ``bands * rows`` exceeds ``num_perm``.
    """
    if bands * rows > num_perm:
        raise ValueError(f"bands*rows={bands * rows} exceeds num_perm={num_perm}")
    sets = TokenSets.from_texts(texts)
    n = len(sets)
    hasher = MinHasher(num_perm=num_perm, seed=seed)
    keys = np.empty((bands, n), np.uint64)
    for docs, minima in hasher.signature_blocks(sets):
        keys[:, docs] = band_keys(minima, bands, rows, seed)
    representative = _identical_set_representatives(sets, keys)
    distinct = np.flatnonzero(representative == np.arange(n))
    filtered = 0.0 < threshold <= 1.0
    prefixes = _prefix_rows(sets, threshold) if filtered else None
    found_left: list[np.ndarray] = []
    found_right: list[np.ndarray] = []
    for band in range(bands):
        codes = []
        for left, right in _band_candidates(keys[band, distinct], distinct, prefixes,
                                            len(sets.hashes)):
            if filtered:
                small = np.minimum(sets.sizes[left], sets.sizes[right])
                large = np.maximum(sets.sizes[left], sets.sizes[right])
                fits = small >= threshold * large - _FLOAT_SLACK
                left, right = left[fits], right[fits]
            codes.append(left * n + right)
        if not codes:
            continue
        code = np.unique(np.concatenate(codes))
        left, right = code // n, code % n
        # Count each pair once: in the first band where it collides.
        earlier = (keys[:band, left] == keys[:band, right]).any(axis=0)
        found_left.append(left[~earlier])
        found_right.append(right[~earlier])
    left = np.concatenate(found_left) if found_left else np.empty(0, np.int64)
    right = np.concatenate(found_right) if found_right else np.empty(0, np.int64)
    similarity = exact_jaccard(sets, left, right)
    similar = similarity >= threshold
    return SimilarPairs(representative=representative, left=left[similar],
                        right=right[similar], similarity=similarity[similar])
