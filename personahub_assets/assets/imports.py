"""Imported personas: a persona-set batch brought in from a file (method ``import``)."""

import json
from collections import Counter
from itertools import islice

from dagster import (
    AssetCheckResult,
    AssetCheckSeverity,
    AssetCheckSpec,
    AssetExecutionContext,
    Config,
    MaterializeResult,
    asset,
)
from pydantic import Field

from personahub_assets import previews
from personahub_assets.assets.common import batch_of, table_metadata
from personahub_assets.automation import batch_condition
from personahub_assets.lib.common.ids import persona_id
from personahub_assets.lib.common.tables import to_arrow
from personahub_assets.lib.ingest.batching import PERSONAS
from personahub_assets.lib.ingest.language import persona_language
from personahub_assets.lib.ingest.sources import SourceRejection, read_records
from personahub_assets.lib.personas.validation import validate_persona
from personahub_assets.partitions import batch_partitions
from personahub_assets.resources.warehouse import WarehouseResource

#: Fields that hold the persona in released sets, tried in this order when none is set.
PERSONA_FIELDS = ("persona", "input persona")


class ImportConfig(Config):
    """Which field of a persona set's records holds the persona."""

    persona_field: str = Field(default="", description="Field holding the persona; empty: "
                                                       f"the first of {list(PERSONA_FIELDS)} "
                                                       "that the set's first record has.")


def persona_field_of(path: str, start: int, stop, configured: str) -> str:
    """The configured field, or the first known persona field the first record holds."""
    if configured:
        return configured
    for field in PERSONA_FIELDS:
        first = next(islice(read_records(path, field, "_none_", start, stop), 1), None)
        if first is not None and not isinstance(first, SourceRejection):
            return field
    return PERSONA_FIELDS[0]


@asset(
    partitions_def=batch_partitions,
    group_name="personas",
    kinds={"duckdb", "python"},
    automation_condition=batch_condition(),
    check_specs=[AssetCheckSpec(
            "imports_accounted", asset="imported_personas",
            partitions_def=batch_partitions, blocking=True,
                                description="Every record read is kept or rejected.")],
)
def imported_personas(
    context: AssetExecutionContext, config: ImportConfig, warehouse: WarehouseResource
) -> MaterializeResult:
    """Personas of a persona-set batch (for example a PersonaHub release, ``{"persona": ...}``
    or ``{"input persona": ...}`` per line) join the generated ones before curation; invalid
    records are kept with a reason. A documents batch writes an empty partition."""
    batch, spec, seq = batch_of(context, warehouse)
    kept, rejected, read = [], [], 0
    fields = set()
    for part in spec.parts if spec.kind == PERSONAS else ():
        field = persona_field_of(part.path, part.start, part.stop, config.persona_field)
        fields.add(field)
        try:
            records = list(read_records(part.path, field, "_none_", part.start, part.stop,
                                        keep_fields=True))
        except Exception as exc:  # noqa: BLE001 - a broken set is a rejection, not a crash
            records = [SourceRejection(part.path, 0, f"unreadable:{type(exc).__name__}",
                                       str(exc)[:200])]
        for rec in records:
            read += 1
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
                                 "reason": reason if isinstance(rec.text, str)
                                 else "not_a_string"})
                continue
            kept.append({**base, "persona_id": persona_id(persona), "persona": persona,
                         "language": persona_language(persona),
                         # Fields beside the persona (e.g. the elite domains) feed attributes.
                         "source_fields": json.dumps(rec.fields) if rec.fields else None})
    warehouse.replace_partitions([
        ("personas", {"method": "import", "batch": batch}, to_arrow("personas", kept)),
        ("rejected_personas", {"method": "import", "batch": batch},
         to_arrow("rejected_personas", rejected)),
    ])
    stored = warehouse.rows(
        "SELECT (SELECT count(*) FROM personas WHERE method = 'import' AND batch = ?) AS kept, "
        "(SELECT count(*) FROM rejected_personas WHERE method = 'import' AND batch = ?) "
        "AS rejected", [batch, batch])[0]
    reasons = Counter(r["reason"] for r in rejected)
    context.log.info(f"batch {batch} (#{seq}, {spec.kind}): imported {len(kept)} personas, "
                     f"rejected {len(rejected)}")
    return MaterializeResult(
        metadata={
            **table_metadata("personas", stored["kept"]),
            "batch_seq": seq,
            "batch_kind": spec.kind,
            "persona_fields": ", ".join(sorted(fields)) or "-",
            "records_read": read,
            "personas_kept": len(kept),
            "personas_rejected": len(rejected),
            "rejection_reasons": previews.counts(dict(reasons)),
            "languages": previews.language_table(
                [p["language"] for p in kept]
                + [persona_language(str(r.get("raw_output") or "")) for r in rejected],
                [True] * len(kept) + [False] * len(rejected)),
            "preview": previews.table(kept[:8], ["persona", "model"]),
        },
        check_results=[AssetCheckResult(
            check_name="imports_accounted",
            passed=read == stored["kept"] + stored["rejected"],
            severity=AssetCheckSeverity.ERROR,
            metadata={"read": read, **stored})],
    )
