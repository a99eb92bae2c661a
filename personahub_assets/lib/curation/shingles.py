"""Word shingles: the tokens MinHash compares, and a fast integer form of them.

A text's shingles are its case-folded word 1-grams (``word_set``); in scripts written without
spaces, characters and character bigrams. ``tokenize`` turns many texts into integer token ids
in one pass per chunk (a bytes translation table for ASCII text, the ``word_set`` regex for
everything else), with each token's stable 64-bit ``token_hash``.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

_WORD = re.compile(r"\w+")
# Scripts written without spaces (Han, kana, Thai, Lao, Myanmar, Khmer): a "word" of \w+ is a
# whole clause there, so their runs become characters and overlapping character bigrams.
_UNSPACED_RUN = re.compile("[\u3040-\u30ff\u31f0-\u31ff\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff"
                           "\u0e00-\u0eff\u1000-\u109f\u1780-\u17ff]+")
_TEXT_SEPARATOR = " \x00 "
_CHUNK_TEXTS = 4_096
_HASH_SEED = 0x243F6A8885A308D3
_MASK64 = (1 << 64) - 1
_SPLITMIX_1 = 0xBF58476D1CE4E5B9
_SPLITMIX_2 = 0x94D049BB133111EB
_LOW_BYTES = np.array([(1 << (8 * k)) - 1 for k in range(9)], dtype=np.uint64)


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
