"""Imported personas: the records of a persona set (a PersonaHub release, ``{"persona": ...}``
or ``{"input persona": ...}`` per line) as ``personas`` rows (method ``import``) and
rejections with their reason."""

from __future__ import annotations

import json
from itertools import islice
from typing import Any

from personahub_assets.lib.common.ids import persona_id
from personahub_assets.lib.ingest.language import persona_language
from personahub_assets.lib.ingest.sources import SourceRecord, SourceRejection, read_records
from personahub_assets.lib.personas.validation import validate_persona

#: Fields that hold the persona in released sets, tried in this order when none is set.
PERSONA_FIELDS = ("persona", "input persona")


def persona_field_of(path: str, start: int, stop, configured: str) -> str:
    """The configured field, or the first known persona field the first record holds."""
    if configured:
        return configured
    for field in PERSONA_FIELDS:
        first = next(islice(read_records(path, field, "_none_", start, stop), 1), None)
        if first is not None and not isinstance(first, SourceRejection):
            return field
    return PERSONA_FIELDS[0]


def read_persona_set(path: str, start: int, stop, field: str
                     ) -> list[SourceRecord | SourceRejection]:
    """The records of one file part, the persona in ``field`` and the other fields kept; a
    file that cannot be read becomes one rejection, never a crash."""
    try:
        return list(read_records(path, field, "_none_", start, stop, keep_fields=True))
    except Exception as exc:  # noqa: BLE001 - a broken set is a rejection, not a crash
        return [SourceRejection(path, 0, f"unreadable:{type(exc).__name__}", str(exc)[:200])]


def import_rows(records: list[SourceRecord | SourceRejection], batch: str
                ) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """(kept personas rows, rejected_personas rows) of a batch's records, in record order."""
    kept, rejected = [], []
    for rec in records:
        base = {"batch": batch, "method": "import", "depth": 0, "doc_id": None,
                "backend": "import", "model": rec.source, "template": "import",
                "template_version": "1", "sampling_params": "{}"}
        if isinstance(rec, SourceRejection):
            rejected.append({**base, "raw_output": rec.raw_preview, "reason": rec.reason})
            continue
        raw = rec.text if isinstance(rec.text, str) else ""
        persona, reason = validate_persona(raw, "stop")
        if persona is None:
            rejected.append({**base, "raw_output": str(rec.text)[:200],
                             "reason": reason if isinstance(rec.text, str) else "not_a_string"})
            continue
        kept.append({**base, "persona_id": persona_id(persona), "persona": persona,
                     "language": persona_language(persona),
                     # Fields beside the persona (e.g. the elite domains) feed attributes.
                     "source_fields": json.dumps(rec.fields) if rec.fields else None})
    return kept, rejected
