"""How much of a text an encoder can see: embedding evidence counts only where it can.

``encoder_coverage`` measures, per text, the share of its letters that the encoder
represents: letters of a script it was trained on, inside a vocabulary word or a piece of at
least two characters (an English WordPiece vocabulary spells Cyrillic letter by letter: no
unknown tokens, no meaning either), and nothing at all of a text in a language the encoder was
not trained on (an English vocabulary cuts French into plausible pieces, and the English model
embeds any two French first-person profiles at cosine 0.90 to 0.93).
``embedding_near_duplicates_where_seen`` (:mod:`.embedding_dedup`) leaves texts below
``min_coverage`` out of the embedding stage altogether: they are never dropped there, and
never cause another drop.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

#: Texts whose coverage is below this are not deduplicated by embedding similarity.
DEFAULT_MIN_COVERAGE = 0.8
#: Scripts and languages the packaged English MiniLM (and the static model distilled from
#: it) was trained on.
ENGLISH_SCRIPTS = ("latin",)
ENGLISH_LANGUAGES = ("en",)


def language_mask(texts: Sequence[str], languages: Sequence[str] | None) -> np.ndarray:
    """1.0 for texts whose ``persona_language`` is among ``languages`` (all when None)."""
    if languages is None:
        return np.ones(len(texts), np.float32)
    from personahub_assets.lib.ingest.language import persona_language

    allowed = set(languages)
    return np.array([persona_language(str(t)) in allowed for t in texts], np.float32)


def _letter_scripts(text: str) -> list[str | None]:
    from personahub_assets.lib.ingest.language import letter_script

    return [letter_script(ch) for ch in text]


def script_coverage(texts: Sequence[str], scripts: Sequence[str] | None) -> np.ndarray:
    """Share of each text's letters written in one of ``scripts`` (all scripts when None).

    A text without letters gets 0.0: its embedding says nothing an encoder learned.
    """
    out = np.zeros(len(texts), np.float32)
    allowed = set(scripts) if scripts is not None else None
    for i, text in enumerate(texts):
        letters = [s for s in _letter_scripts(text) if s]
        if letters:
            seen = len(letters) if allowed is None else sum(s in allowed for s in letters)
            out[i] = seen / len(letters)
    return out


def tokenizer_coverage(texts: Sequence[str], tokenizer: Any,
                       scripts: Sequence[str] | None = None, unknown_token: str = "[UNK]",
                       batch_size: int = 1024) -> np.ndarray:
    """Share of each text's letters that a ``tokenizers.Tokenizer`` represents meaningfully.

    A letter counts when its script is in ``scripts`` (any script when None) and it lies in
    a word the vocabulary holds whole, or in a piece of at least two letters; letters in
    single-letter pieces of a longer word, or in unknown tokens, do not count.
    """
    out = np.zeros(len(texts), np.float32)
    allowed = set(scripts) if scripts is not None else None
    for start in range(0, len(texts), batch_size):
        batch = [str(t) for t in texts[start : start + batch_size]]
        encodings = tokenizer.encode_batch(batch, add_special_tokens=False)
        for offset, (text, enc) in enumerate(zip(batch, encodings, strict=True)):
            scripts_of = _letter_scripts(text)
            total = sum(1 for s in scripts_of if s)
            if not total:
                continue
            pieces_per_word: dict[Any, int] = {}
            for word in enc.word_ids:
                pieces_per_word[word] = pieces_per_word.get(word, 0) + 1
            seen = 0
            for token, (lo, hi), word in zip(enc.tokens, enc.offsets, enc.word_ids,
                                             strict=True):
                if token == unknown_token:
                    continue
                span = [s for s in scripts_of[lo:hi] if s]
                if not span or (len(span) < 2 and pieces_per_word[word] > 1):
                    continue
                seen += len(span) if allowed is None else sum(s in allowed for s in span)
            out[start + offset] = min(seen / total, 1.0)
    return out


def encoder_coverage(encoder: Any, texts: Sequence[str]) -> np.ndarray:
    """How well ``encoder`` represents each text, in [0, 1] (see the module docstring).

    Uses the encoder's own ``coverage(texts)`` when it has one; an encoder without it is
    trusted with every text (1.0).
    """
    measure = getattr(encoder, "coverage", None)
    if callable(measure):
        return np.asarray(measure(texts), dtype=np.float32)
    return np.ones(len(texts), np.float32)
