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

import re
import unicodedata
from collections import defaultdict
from collections.abc import Iterator, Sequence
from dataclasses import dataclass

import numpy as np

_WORD = re.compile(r"\w+")
# Scripts written without spaces (Han, kana, Thai, Lao, Myanmar, Khmer): a "word" of \w+ is a
# whole clause there, so their runs become characters and overlapping character bigrams.
_UNSPACED_RUN = re.compile("[\u3040-\u30ff\u31f0-\u31ff\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff"
                           "\u0e00-\u0eff\u1000-\u109f\u1780-\u17ff]+")
_UINT32_MAX = np.iinfo(np.uint32).max
_TEXT_SEPARATOR = " \x00 "
_CHUNK_TEXTS = 4_096
_SIGNATURE_BLOCK = 8_192
_PAIR_BATCH = 1 << 22
_COMPARE_BUDGET = 1 << 24
_SLICE = 1 << 20
_PREFIX_WIDTH_CAP = 16
_FLOAT_SLACK = 1e-9
_GOLDEN_GAMMA = np.uint64(0x9E3779B97F4A7C15)
_HASH_SEED = 0x243F6A8885A308D3
_MASK64 = (1 << 64) - 1
_SPLITMIX_1 = 0xBF58476D1CE4E5B9
_SPLITMIX_2 = 0x94D049BB133111EB
_LOW_BYTES = np.array([(1 << (8 * k)) - 1 for k in range(9)], dtype=np.uint64)
_IDENTITY_KEY_SEED = 7


def _words(text: str) -> list[str]:
    """Case-folded word 1-grams of a text; runs of unspaced scripts as their characters and
    character bigrams."""
    words = _WORD.findall(unicodedata.normalize("NFKC", text).casefold())
    if text.isascii() or not any(_UNSPACED_RUN.search(word) for word in words):
        return words
    out: list[str] = []
    for word in words:
        last = 0
        for run in _UNSPACED_RUN.finditer(word):
            if run.start() > last:
                out.append(word[last : run.start()])
            chars = run.group()
            out.extend(chars)  # characters and bigrams: a one-character edit stays near
            out.extend(chars[i : i + 2] for i in range(len(chars) - 1))
            last = run.end()
        if last < len(word):
            out.append(word[last:])
    return out


def word_set(text: str) -> frozenset[str]:
    """The set of case-folded word 1-grams of a text (characters and character bigrams where
    words are not separated by spaces)."""
    return frozenset(_words(text))


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
    return " ".join(_words(text))


def _splitmix(value: int) -> int:
    """The splitmix64 finalizer, a bijection of 64-bit integers."""
    value = ((value ^ (value >> 30)) * _SPLITMIX_1) & _MASK64
    value = ((value ^ (value >> 27)) * _SPLITMIX_2) & _MASK64
    return value ^ (value >> 31)


def _splitmix_array(values: np.ndarray) -> np.ndarray:
    """``_splitmix`` of every element of a uint64 array."""
    values = values ^ (values >> np.uint64(30))
    values *= np.uint64(_SPLITMIX_1)
    values ^= values >> np.uint64(27)
    values *= np.uint64(_SPLITMIX_2)
    values ^= values >> np.uint64(31)
    return values


def token_hash(token: bytes) -> int:
    """Stable 64-bit hash of one UTF-8 encoded token.

    The token is zero-padded to a multiple of 8 bytes (at least 16) and its little-endian
    8-byte words are folded in with splitmix64, so tokens of up to 16 bytes hash in two
    vectorised steps (see ``_short_token_hashes``).
    """
    padded = token.ljust(max(16, -(-len(token) // 8) * 8), b"\0")
    value = _HASH_SEED
    for begin in range(0, len(padded), 8):
        value = _splitmix(value ^ int.from_bytes(padded[begin : begin + 8], "little"))
    return value


def _short_token_hashes(words: np.ndarray) -> np.ndarray:
    """``token_hash`` of tokens of at most 16 bytes, given as ``(n, 2)`` little-endian words."""
    first = _splitmix_array(words[:, 0] ^ np.uint64(_HASH_SEED))
    return _splitmix_array(first ^ words[:, 1])


class _Vocabulary:
    """Exact map from byte tokens to dense ids, vectorised for tokens of up to 16 bytes.

    A token of at most 16 bytes is identified exactly by its two zero-padded little-endian
    8-byte words (tokens never contain NUL, so the padding is unambiguous). Those keys live
    in an open-addressing table (linear probing, kept at most half full) whose rows are
    ``(word 0, word 1, id + 1)``, 0 marking a free slot, and a whole batch of tokens is looked
    up or inserted at once. Longer tokens go through a dict.
    """

    def __init__(self) -> None:
        self.size = 0
        self._stored = 0
        self._bits = 12
        self._table = np.zeros((1 << self._bits, 3), np.uint64)
        self._short_words: list[np.ndarray] = []
        self._short_ids: list[np.ndarray] = []
        self._long: dict[bytes, int] = {}

    def _probe(self, words: np.ndarray, new_ids: np.ndarray | None) -> np.ndarray:
        """Ids of ``words``; a word not in the table takes the next id or its ``new_ids`` entry.

        Every round, items still unresolved read their current slot; items on a free slot
        claim it (one claimant per slot, in order of first appearance), items whose key
        matches are resolved, and the rest move one slot on.
        """
        mask = (1 << self._bits) - 1
        mixed = _splitmix_array(words[:, 0] ^ _splitmix_array(words[:, 1]))
        slots = (mixed >> np.uint64(64 - self._bits)).astype(np.int64)
        out = np.empty(len(words), np.int64)
        pending = np.arange(len(words))
        first_word, second_word = words[:, 0], words[:, 1]
        while len(pending):
            current = slots[pending]
            rows = np.take(self._table, current, axis=0)
            free = rows[:, 2] == 0
            if free.any():
                claimed, first = np.unique(current[free], return_index=True)
                order = np.argsort(first, kind="stable")
                claimed, claimants = claimed[order], pending[free][first[order]]
                if new_ids is None:
                    ids = np.arange(self.size, self.size + len(claimed))
                    self._short_words.append(words[claimants])
                    self._short_ids.append(ids)
                    self.size += len(claimed)
                else:
                    ids = new_ids[claimants]
                self._stored += len(claimed)
                self._table[claimed, :2] = words[claimants]
                self._table[claimed, 2] = (ids + 1).astype(np.uint64)
                rows[free] = np.take(self._table, current[free], axis=0)
            hit = (rows[:, 0] == first_word) & (rows[:, 1] == second_word)
            out[pending[hit]] = rows[:, 2][hit].astype(np.int64) - 1
            pending = pending[~hit]
            first_word, second_word = first_word[~hit], second_word[~hit]
            slots[pending] = (slots[pending] + 1) & mask
        return out

    def _reserve(self, extra: int) -> None:
        """Grow the table so that it stays at most half full with ``extra`` more keys."""
        bits = self._bits
        while (1 << bits) < 2 * (self._stored + extra):
            bits += 1
        if bits == self._bits:
            return
        self._bits = bits
        self._table = np.zeros((1 << bits, 3), np.uint64)
        self._stored = 0
        if self._short_ids:
            self._probe(np.concatenate(self._short_words), np.concatenate(self._short_ids))

    def short_ids(self, words: np.ndarray) -> np.ndarray:
        """Ids of tokens of at most 16 bytes given as ``(n, 2)`` words, adding new ones.

        The table is sized so that it could hold every word of the batch as a new key; after
        the batch it is grown back to at most half full if many keys were new.
        """
        if (1 << self._bits) <= self._stored + len(words):
            self._reserve(len(words))
        ids = self._probe(words, None)
        self._reserve(0)
        return ids

    def long_ids(self, tokens: list[bytes]) -> np.ndarray:
        """Ids of tokens longer than 16 bytes, adding new ones."""
        out = np.empty(len(tokens), np.int64)
        for position, token in enumerate(tokens):
            found = self._long.get(token)
            if found is None:
                found = self._long[token] = self.size
                self.size += 1
            out[position] = found
        return out

    def hashes(self) -> np.ndarray:
        """``token_hash`` of every token, indexed by id."""
        out = np.zeros(self.size, np.uint64)
        if self._short_ids:
            out[np.concatenate(self._short_ids)] = _short_token_hashes(
                np.concatenate(self._short_words))
        for token, index in self._long.items():
            out[index] = token_hash(token)
        return out

    def tokens(self) -> list[bytes]:
        """Every token's bytes, indexed by id."""
        out: list[bytes] = [b""] * self.size
        for words, ids in zip(self._short_words, self._short_ids, strict=True):
            for pair, index in zip(words.tolist(), ids.tolist(), strict=True):
                raw = pair[0].to_bytes(8, "little") + pair[1].to_bytes(8, "little")
                out[index] = raw.rstrip(b"\0")
        for token, index in self._long.items():
            out[index] = token
        return out


def _chunk_token_ids(chunk: Sequence[str], vocabulary: _Vocabulary
                     ) -> tuple[np.ndarray, np.ndarray]:
    """Token ids of a chunk of texts, in text order, and the number of tokens of each text."""
    pieces = chunk
    joined = _TEXT_SEPARATOR.join(pieces)
    if not joined.isascii():
        pieces = [_pretokenize(text) for text in chunk]
        joined = _TEXT_SEPARATOR.join(pieces)
    if joined.count("\x00") != len(pieces) - 1:
        # NUL is not a word character, so blanking it inside texts changes no token.
        joined = _TEXT_SEPARATOR.join(piece.replace("\x00", " ") for piece in pieces)
    data = joined.encode("utf-8").translate(_ASCII_TABLE)
    padded = data + bytes(16)
    raw = np.frombuffer(padded, np.uint8)[: len(data)]
    in_word = raw > 0x20  # blanks are 0x20 and separators 0x00; word bytes are all higher
    edges = np.flatnonzero(np.diff(in_word, prepend=False, append=False))
    starts, ends = edges[0::2], edges[1::2]
    tokens_before_separator = np.searchsorted(starts, np.flatnonzero(raw == 0))
    counts = np.diff(tokens_before_separator, prepend=0, append=len(starts))
    lengths = ends - starts
    # Every byte offset viewed as the start of a little-endian 8-byte word (unaligned reads).
    words_at = np.ndarray((len(data) + 9,), dtype="<u8", buffer=padded, strides=(1,))
    ids = np.empty(len(starts), np.int32)
    short = lengths <= 16
    short_starts, short_lengths = starts[short], lengths[short]
    words = np.empty((len(short_starts), 2), np.uint64)
    words[:, 0] = words_at[short_starts] & _LOW_BYTES[np.minimum(short_lengths, 8)]
    words[:, 1] = words_at[short_starts + 8] & _LOW_BYTES[np.clip(short_lengths - 8, 0, 8)]
    ids[short] = vocabulary.short_ids(words)
    if not short.all():
        long_tokens = [data[begin:end] for begin, end in
                       zip(starts[~short].tolist(), ends[~short].tolist(), strict=True)]
        ids[~short] = vocabulary.long_ids(long_tokens)
    return ids, counts


@dataclass(frozen=True)
class TokenizedTexts:
    """Every text's tokens (in text order, repeats kept) as integer ids.

    ``ids[offsets[i]:offsets[i + 1]]`` are text ``i``'s tokens; ``hashes[id]`` is the token's
    ``token_hash``.
    """

    ids: np.ndarray
    offsets: np.ndarray
    hashes: np.ndarray
    vocabulary: _Vocabulary

    def __len__(self) -> int:
        return len(self.offsets) - 1

    def tokens(self) -> list[bytes]:
        """The UTF-8 bytes of every token, indexed by id (for inspection and tests)."""
        return self.vocabulary.tokens()


def tokenize(texts: Sequence[str], chunk_size: int | None = None) -> TokenizedTexts:
    """Tokenize many texts exactly as ``word_set`` does, into integer ids.

    Each chunk of texts is joined into one string and translated in C; token boundaries,
    token keys and the id lookup are then computed with numpy over the whole chunk.

    Args:
        texts: The texts.
        chunk_size: Texts per chunk (4096 by default).

    Returns:
        Every text's token ids, repeats kept, with each token's ``token_hash``.
    """
    chunk_size = chunk_size or _CHUNK_TEXTS
    vocabulary = _Vocabulary()
    id_chunks: list[np.ndarray] = []
    count_chunks: list[np.ndarray] = []
    for start in range(0, len(texts), chunk_size):
        ids, counts = _chunk_token_ids(texts[start : start + chunk_size], vocabulary)
        id_chunks.append(ids)
        count_chunks.append(counts)
    offsets = np.zeros(len(texts) + 1, np.int64)
    if count_chunks:
        np.cumsum(np.concatenate(count_chunks), out=offsets[1:])
    ids = np.concatenate(id_chunks) if id_chunks else np.empty(0, np.int32)
    return TokenizedTexts(ids=ids, offsets=offsets,
                          hashes=vocabulary.hashes(), vocabulary=vocabulary)


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
