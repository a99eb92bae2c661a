"""MinHash near-duplicate detection with LSH banding and exact Jaccard verification.

Signatures use word 1-grams and multiply-shift hashing (128 permutations by default). The
banding defaults (16 bands of 8 rows) catch a pair at Jaccard 0.9 with probability
1 - (1 - 0.9**8)**16 > 0.9998; every candidate pair is then verified on the exact token sets,
so precision is exact and the banding only costs time.

The corpus path is vectorised so that a million short texts fit in well under a minute:

1. ``tokenize`` turns all texts into integer token ids in one pass per chunk (a bytes
   translation table for ASCII text, the ``word_set`` regex for everything else).
2. ``TokenSets`` holds each text's distinct tokens as sorted integer ranks (rarest first).
3. ``MinHasher`` computes the signatures of all texts of one length at once with numpy, and
   ``band_keys`` folds each band of a signature into one 64-bit bucket key.
4. ``similar_pairs`` finds colliding bucket keys per band, drops candidates that provably
   cannot reach the threshold (size and prefix filters), and verifies the rest exactly.
5. ``near_duplicates`` makes the keep/drop decisions in input order.

Texts with identical token sets have identical signatures, so they always collide; they are
collapsed onto their first occurrence before banding, which keeps large groups of exact
copies from producing a quadratic number of candidate pairs without changing any decision.
"""

from __future__ import annotations

import hashlib
import itertools
import math
import re
import unicodedata
from collections import defaultdict
from collections.abc import Iterator, Sequence
from dataclasses import dataclass

import numpy as np

_WORD = re.compile(r"\w+")
_UINT32_MAX = np.iinfo(np.uint32).max
_TEXT_SEPARATOR = " \x00 "
_SEPARATOR_TOKEN = b"\x00"
_CHUNK_TEXTS = 16_384
_SIGNATURE_BLOCK = 2_048
_PAIR_BATCH = 1 << 22
_COMPARE_BUDGET = 1 << 24
_PREFIX_WIDTH_CAP = 16
_FLOAT_SLACK = 1e-9


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


def _ascii_translation() -> bytes:
    """Byte table that lower-cases ASCII word characters and blanks every other ASCII byte.

    Bytes from 0x80 up pass through unchanged: they only occur in tokens that the regex has
    already extracted from non-ASCII texts. The NUL byte passes through as the text separator.
    """
    table = bytearray(b" " * 128) + bytearray(range(128, 256))
    for byte in b"0123456789_abcdefghijklmnopqrstuvwxyz":
        table[byte] = byte
    for byte in b"ABCDEFGHIJKLMNOPQRSTUVWXYZ":
        table[byte] = byte + 32
    table[0] = 0
    return bytes(table)


_ASCII_TABLE = _ascii_translation()


def _pretokenize(text: str) -> str:
    """A text reduced to its space-separated ``word_set`` tokens (ASCII texts unchanged).

    For ASCII text NFKC is the identity, case folding is lower-casing and ``\\w`` is
    ``[A-Za-z0-9_]``, which the translation table reproduces byte for byte.
    """
    if text.isascii():
        return text
    return " ".join(_WORD.findall(unicodedata.normalize("NFKC", text).casefold()))


def token_hash(token: bytes) -> int:
    """Stable 64-bit hash of one UTF-8 encoded token."""
    return int.from_bytes(hashlib.blake2b(token, digest_size=8).digest(), "little")


@dataclass(frozen=True)
class TokenizedTexts:
    """Every text's tokens (in text order, repeats kept) as ids into ``tokens``."""

    tokens: list[bytes]
    ids: np.ndarray
    offsets: np.ndarray

    def __len__(self) -> int:
        return len(self.offsets) - 1

    def token_hashes(self) -> np.ndarray:
        """``token_hash`` of every vocabulary entry, indexed by token id."""
        return np.fromiter(map(token_hash, self.tokens), np.uint64, len(self.tokens))


def tokenize(texts: Sequence[str], chunk_size: int = _CHUNK_TEXTS) -> TokenizedTexts:
    """Tokenize many texts exactly as ``word_set`` does, into integer ids.

    Each chunk of texts is joined into one string, translated and split in C, and the tokens
    are numbered with a single dictionary pass. Ids are numbered by first occurrence.
    """
    vocabulary: dict[bytes, int] = {_SEPARATOR_TOKEN: -1}
    numbering = itertools.count()
    id_chunks: list[np.ndarray] = []
    length_chunks: list[np.ndarray] = []
    for start in range(0, len(texts), chunk_size):
        chunk = [_pretokenize(text) for text in texts[start : start + chunk_size]]
        joined = _TEXT_SEPARATOR.join(chunk)
        if joined.count("\x00") != len(chunk) - 1:
            # NUL is not a word character, so blanking it inside texts changes no token.
            joined = _TEXT_SEPARATOR.join(text.replace("\x00", " ") for text in chunk)
        words = joined.encode("utf-8").translate(_ASCII_TABLE).split()
        # setdefault keeps the first number a token was given; later numbers are discarded.
        raw = np.fromiter(map(vocabulary.setdefault, words, numbering), np.int64, len(words))
        separators = np.flatnonzero(raw < 0)
        edges = np.concatenate(([-1], separators, [len(raw)]))
        length_chunks.append(np.diff(edges) - 1)
        id_chunks.append(raw[raw >= 0])
    first_numbers = np.fromiter(vocabulary.values(), np.int64, len(vocabulary))[1:]
    raw_ids = np.concatenate(id_chunks) if id_chunks else np.empty(0, np.int64)
    renumber = np.zeros(int(first_numbers[-1]) + 1 if len(first_numbers) else 0, np.int32)
    renumber[first_numbers] = np.arange(len(first_numbers), dtype=np.int32)
    lengths = np.concatenate(length_chunks) if length_chunks else np.empty(0, np.int64)
    offsets = np.zeros(len(texts) + 1, np.int64)
    np.cumsum(lengths, out=offsets[1:])
    return TokenizedTexts(tokens=list(vocabulary)[1:], ids=renumber[raw_ids], offsets=offsets)


def _length_groups(lengths: np.ndarray) -> Iterator[tuple[int, np.ndarray]]:
    """``(length, indices)`` for each distinct length, indices ascending within a group."""
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
    """Each text's distinct tokens as ascending integer ranks, stored flat.

    Rank 0 is the rarest token of the corpus, so the first elements of a set are its rarest
    tokens, which is what prefix filtering needs. ``hashes[rank]`` is the token's
    ``token_hash``.
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
        frequency = np.bincount(tokenized.ids, minlength=len(tokenized.tokens))
        by_rarity = np.argsort(frequency, kind="stable")
        rank_of = np.empty(len(by_rarity), np.int32)
        rank_of[by_rarity] = np.arange(len(by_rarity), dtype=np.int32)
        hashes = tokenized.token_hashes()[by_rarity]
        n = len(tokenized)
        starts = np.zeros(n, np.int64)
        sizes = np.zeros(n, np.int32)
        pieces: list[np.ndarray] = []
        filled = 0
        for length, docs in _length_groups(np.diff(tokenized.offsets)):
            if length == 0:
                starts[docs] = filled
                continue
            ranks = rank_of[_gather_rows(tokenized.ids, tokenized.offsets[docs], length)]
            ranks.sort(axis=1)
            first = np.ones(ranks.shape, bool)
            first[:, 1:] = ranks[:, 1:] != ranks[:, :-1]
            group_sizes = first.sum(axis=1)
            sizes[docs] = group_sizes
            starts[docs] = filled + np.cumsum(group_sizes) - group_sizes
            pieces.append(ranks[first])
            filled += int(group_sizes.sum())
        values = np.concatenate(pieces) if pieces else np.empty(0, np.int32)
        return cls(values=values, starts=starts, sizes=sizes, hashes=hashes)

    @classmethod
    def from_texts(cls, texts: Sequence[str]) -> TokenSets:
        """``word_set`` of every text, in the flat integer form."""
        return cls.from_tokenized(tokenize(texts))

    def padded(self, docs: np.ndarray, width: int, fill: int) -> np.ndarray:
        """The first ``width`` ranks of each doc's set, padded with ``fill``."""
        if len(self.values) == 0:
            return np.full((len(docs), width), fill, np.int32)
        positions = np.minimum(self.starts[docs][:, None] + np.arange(width),
                               len(self.values) - 1)
        rows = self.values[positions]
        rows[np.arange(width) >= self.sizes[docs][:, None]] = fill
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

        An empty set gets the all-max signature.
        """
        for size, docs in _length_groups(sets.sizes):
            for begin in range(0, len(docs), _SIGNATURE_BLOCK):
                block = docs[begin : begin + _SIGNATURE_BLOCK]
                if size == 0:
                    yield block, np.full((self.num_perm, len(block)), _UINT32_MAX, np.uint64)
                    continue
                ranks = _gather_rows(sets.values, sets.starts[block], size)
                yield block, self.permuted_minima(sets.hashes[ranks])

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
        texts = [" ".join(tokens) for tokens in token_sets]
        if any(not token.isalnum() and _WORD.fullmatch(token) is None
               for tokens in token_sets for token in tokens):
            return self._signatures_of_arbitrary_sets(token_sets)
        return self.signatures_of_sets(TokenSets.from_texts(texts))

    def _signatures_of_arbitrary_sets(self, token_sets: Sequence[frozenset[str]]) -> np.ndarray:
        """Signatures of sets whose members are not single word tokens (slow path)."""
        out = np.full((len(token_sets), self.num_perm), _UINT32_MAX, dtype=np.uint32)
        for i, tokens in enumerate(token_sets):
            if tokens:
                hashes = np.fromiter(
                    (token_hash(t.encode("utf-8", "surrogatepass")) for t in tokens),
                    np.uint64, len(tokens))
                out[i] = self.permuted_minima(hashes[None, :])[:, 0]
        return out


def _band_multipliers(bands: int, rows: int, seed: int) -> np.ndarray:
    """Random odd 64-bit multipliers, ``(bands, rows)``, that fold a band into one key."""
    rng = np.random.default_rng([seed, bands, rows])
    return rng.integers(1, 2**63, size=(bands, rows), dtype=np.uint64) | np.uint64(1)


def band_keys(minima: np.ndarray, bands: int, rows: int, seed: int = 1) -> np.ndarray:
    """One 64-bit bucket key per band: ``(bands, n)`` from ``(num_perm, n)`` signatures.

    The key is a random linear combination of the band's rows modulo 2**64. Equal bands give
    equal keys; unequal bands collide with probability about 2**-58, which at worst adds a
    candidate pair that exact verification then rejects.
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


def _equal_key_runs(keys: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Groups of positions whose keys are equal, for keys that occur more than once.

    Returns ``(members, run_starts, run_lengths)``: ``members`` lists positions sorted by key
    and, within a key, ascending. A bincount over hashed slots first discards positions
    whose slot is unique, so only a small fraction of the keys has to be sorted.
    """
    empty = np.empty(0, np.int64)
    if len(keys) < 2:
        return empty, empty, empty
    slots = 1 << max(10, (4 * len(keys)).bit_length())
    slot = (keys & np.uint64(slots - 1)).astype(np.intp)
    maybe = np.flatnonzero(np.bincount(slot, minlength=slots)[slot] > 1)
    if len(maybe) < 2:
        return empty, empty, empty
    order = np.argsort(keys[maybe], kind="stable")
    members = maybe[order]
    sorted_keys = keys[members]
    starts = np.flatnonzero(np.concatenate(([True], sorted_keys[1:] != sorted_keys[:-1])))
    lengths = np.diff(np.append(starts, len(members)))
    repeated = lengths > 1
    return members, starts[repeated], lengths[repeated]


def _run_pairs(members: np.ndarray, starts: np.ndarray, lengths: np.ndarray
               ) -> Iterator[tuple[np.ndarray, np.ndarray]]:
    """All pairs within each run, ``(earlier, later)`` member, in batches of bounded size."""
    pair_counts = lengths * (lengths - 1) // 2
    batch_ends = np.searchsorted(np.cumsum(pair_counts), np.arange(1, 1 + len(lengths))
                                 * 0 + _PAIR_BATCH, side="right")
    del batch_ends
    begin = 0
    cumulative = np.cumsum(pair_counts)
    while begin < len(lengths):
        base = cumulative[begin - 1] if begin else 0
        end = max(begin + 1, int(np.searchsorted(cumulative, base + _PAIR_BATCH, "right")))
        run_starts, run_lengths = starts[begin:end], lengths[begin:end]
        within = np.arange(int(run_lengths.sum())) - np.repeat(
            np.cumsum(run_lengths) - run_lengths, run_lengths)
        positions = np.repeat(run_starts, run_lengths) + within
        partners = np.repeat(run_lengths, run_lengths) - 1 - within
        left = np.repeat(positions, partners)
        step = np.arange(len(left)) - np.repeat(np.cumsum(partners) - partners, partners) + 1
        yield members[left], members[left + step]
        begin = end


def candidate_pairs(signatures: np.ndarray, bands: int, rows: int) -> set[tuple[int, int]]:
    """Index pairs (i < j) that share at least one LSH band bucket."""
    keys = band_keys(np.ascontiguousarray(signatures.T), bands, rows)
    pairs: set[tuple[int, int]] = set()
    for band in range(bands):
        for left, right in _run_pairs(*_equal_key_runs(keys[band])):
            pairs.update(zip(left.tolist(), right.tolist()))
    return pairs


def exact_jaccard(sets: TokenSets, left: np.ndarray, right: np.ndarray) -> np.ndarray:
    """Exact Jaccard similarity of each pair ``(left[k], right[k])`` of sets.

    The pairs are taken in order of their larger set, and each batch compares padded rows
    element by element; two empty sets have similarity 1.0.
    """
    left, right = np.asarray(left, np.int64), np.asarray(right, np.int64)
    size_left, size_right = sets.sizes[left], sets.sizes[right]
    widest = np.maximum(size_left, size_right)
    order = np.argsort(widest, kind="stable")
    common = np.zeros(len(left), np.int64)
    begin = 0
    while begin < len(order):
        width = max(1, int(widest[order[begin]]))
        end = min(len(order), begin + max(1, _COMPARE_BUDGET // (width * width)))
        width = max(1, int(widest[order[end - 1]]))
        batch = order[begin:end]
        rows_left = sets.padded(left[batch], width, -1)
        rows_right = sets.padded(right[batch], width, -2)
        common[batch] = (rows_left[:, :, None] == rows_right[:, None, :]).sum(axis=(1, 2))
        begin = end
    union = size_left.astype(np.int64) + size_right - common
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(union > 0, common / np.maximum(union, 1), 1.0)


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
        for band, multiplier in enumerate(_band_multipliers(1, len(keys), 7)[0]):
            full_keys += keys[band] * multiplier
    members, starts, lengths = _equal_key_runs(full_keys)
    if not len(members):
        return representative
    firsts = np.repeat(members[starts], lengths)
    grouped = members[np.repeat(starts, lengths) + np.arange(int(lengths.sum()))
                      - np.repeat(np.cumsum(lengths) - lengths, lengths)]
    others = grouped != firsts
    firsts, grouped = firsts[others], grouped[others]
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


def _could_reach(sets: TokenSets, prefixes: tuple[np.ndarray, np.ndarray] | None,
                 threshold: float, left: np.ndarray, right: np.ndarray) -> np.ndarray:
    """False for pairs whose Jaccard is provably below ``threshold`` (size, then prefix)."""
    if prefixes is None:
        return np.ones(len(left), bool)
    small = np.minimum(sets.sizes[left], sets.sizes[right])
    large = np.maximum(sets.sizes[left], sets.sizes[right])
    keep = small >= threshold * large - _FLOAT_SLACK
    rows, unfiltered = prefixes
    check = np.flatnonzero(keep & ~unfiltered[left] & ~unfiltered[right])
    for begin in range(0, len(check), _PAIR_BATCH // 4):
        part = check[begin : begin + _PAIR_BATCH // 4]
        a, b = rows[left[part]], rows[right[part]]
        shared = ((a[:, :, None] == b[:, None, :]) & (a >= 0)[:, :, None]).any(axis=(1, 2))
        keep[part] = shared
    return keep


def similar_pairs(
    texts: Sequence[str],
    threshold: float = 0.9,
    num_perm: int = 128,
    bands: int = 16,
    rows: int = 8,
    seed: int = 1,
) -> SimilarPairs:
    """LSH candidates among distinct token sets, verified by exact Jaccard >= ``threshold``."""
    if bands * rows > num_perm:
        raise ValueError(f"bands*rows={bands * rows} exceeds num_perm={num_perm}")
    sets = TokenSets.from_texts(texts)
    hasher = MinHasher(num_perm=num_perm, seed=seed)
    keys = np.empty((bands, len(sets)), np.uint64)
    for docs, minima in hasher.signature_blocks(sets):
        keys[:, docs] = band_keys(minima, bands, rows, seed)
    representative = _identical_set_representatives(sets, keys)
    distinct = np.flatnonzero(representative == np.arange(len(sets)))
    distinct_keys = keys[:, distinct]
    prefixes = _prefix_rows(sets, threshold) if 0.0 < threshold <= 1.0 else None
    found_left: list[np.ndarray] = []
    found_right: list[np.ndarray] = []
    for band in range(bands):
        for left, right in _run_pairs(*_equal_key_runs(distinct_keys[band])):
            keep = _could_reach(sets, prefixes, threshold, distinct[left], distinct[right])
            left, right = left[keep], right[keep]
            # Count each pair once: in the first band where it collides.
            earlier = (distinct_keys[:band, left] == distinct_keys[:band, right]).any(axis=0)
            found_left.append(distinct[left[~earlier]])
            found_right.append(distinct[right[~earlier]])
    left = np.concatenate(found_left) if found_left else np.empty(0, np.int64)
    right = np.concatenate(found_right) if found_right else np.empty(0, np.int64)
    similarity = exact_jaccard(sets, left, right)
    similar = similarity >= threshold
    return SimilarPairs(representative=representative, left=left[similar],
                        right=right[similar], similarity=similarity[similar])


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
    kept match among the representative's neighbours that precede it.
    """
    n = len(pairs.representative)
    kept = np.ones(n, bool)
    kept[pairs.representative != np.arange(n)] = False
    order = np.lexsort((pairs.left, -pairs.similarity, pairs.right))
    later = pairs.right[order].tolist()
    earlier = pairs.left[order].tolist()
    scores = pairs.similarity[order].tolist()
    decided: dict[int, NearDuplicate] = {}
    for j, i, sim in zip(later, earlier, scores, strict=True):
        if j not in decided and kept[i]:
            decided[j] = NearDuplicate(index=j, duplicate_of=i, similarity=sim)
            kept[j] = False
    copies = np.flatnonzero(pairs.representative != np.arange(n))
    if len(copies):
        neighbours: dict[int, list[tuple[float, int]]] = defaultdict(list)
        for i, j, sim in zip(pairs.left.tolist(), pairs.right.tolist(),
                             pairs.similarity.tolist(), strict=True):
            neighbours[i].append((-sim, j))
            neighbours[j].append((-sim, i))
        for candidates in neighbours.values():
            candidates.sort()
        for copy, rep in zip(copies.tolist(), pairs.representative[copies].tolist(),
                             strict=True):
            if kept[rep]:
                decided[copy] = NearDuplicate(index=copy, duplicate_of=rep, similarity=1.0)
                continue
            for negative_sim, m in neighbours.get(rep, ()):
                if m < copy and kept[m]:
                    decided[copy] = NearDuplicate(index=copy, duplicate_of=m,
                                                  similarity=-negative_sim)
                    break
    return [decided[index] for index in sorted(decided)]


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
    if threshold > 1.0:
        if bands * rows > num_perm:
            raise ValueError(f"bands*rows={bands * rows} exceeds num_perm={num_perm}")
        return []
    return resolve_duplicates(similar_pairs(texts, threshold, num_perm, bands, rows, seed))
