"""The one ID scheme: every ID is a content hash, so re-running a stage is idempotent."""

from __future__ import annotations

import hashlib
import re
import unicodedata

_WS = re.compile(r"\s+")
_EDGE_PUNCT = " \t\n\"'`.,;:!?()[]{}"


def stable_hash(*parts: object, length: int = 16) -> str:
    """Hex digest of the parts joined by a separator that cannot occur in text."""
    h = hashlib.blake2b(digest_size=16)
    for part in parts:
        h.update(str(part).encode("utf-8", "surrogatepass"))
        h.update(b"\x1f")
    return h.hexdigest()[:length]


def normalize_text(text: str) -> str:
    """Case-folded, NFKC, single-spaced text with edge punctuation removed."""
    text = unicodedata.normalize("NFKC", text).casefold()
    return _WS.sub(" ", text).strip(_EDGE_PUNCT)


def doc_id(source: str, text: str) -> str:
    """ID of a web document: its source and its exact text."""
    return "d" + stable_hash("doc", source, text)


def persona_id(persona: str) -> str:
    """ID of a persona: its normalized text, so trivially different spellings collide."""
    return "p" + stable_hash("persona", normalize_text(persona))


def sample_id(persona_id_: str, domain: str, template_version: str, sample_index: int) -> str:
    """ID of a synthetic sample: persona, domain, template version and sample index."""
    return "s" + stable_hash("sample", persona_id_, domain, template_version, sample_index)


def shard_of(row_id: str, num_shards: int) -> int:
    """The shard a row belongs to: hash(id) mod N."""
    if num_shards < 1:
        raise ValueError(f"num_shards must be >= 1, got {num_shards}")
    return int(stable_hash("shard", row_id, length=8), 16) % num_shards
