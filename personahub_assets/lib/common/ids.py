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


def sample_id(persona_id_: str, domain: str, template_version: str, model: str,
              sample_index: int) -> str:
    """ID of a synthetic sample: everything that produced it (persona, domain, template
    version, model and sample index), so a verdict can never attach to a text it did not see."""
    return "s" + stable_hash("sample", persona_id_, domain, template_version, model,
                             sample_index)


def batch_key(kind: str, fingerprint: str) -> str:
    """Partition key of a batch: its kind's letter and a hash of its content fingerprint.

    Short, stable and safe as a Dagster partition key (hex digits and one dash, never ``|``).
    """
    return f"{kind[0]}-{stable_hash('batch', kind, fingerprint, length=12)}"
