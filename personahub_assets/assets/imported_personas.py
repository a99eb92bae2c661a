"""Imported personas: a persona-set batch brought in from a file (method ``import``)."""

from collections import Counter

from dagster import AssetCheckSpec, AssetExecutionContext, Config, MaterializeResult, asset
from pydantic import Field

from personahub_assets import previews
from personahub_assets.assets.common import batch_of, check_result, materialize_result
from personahub_assets.automation import batch_condition
from personahub_assets.lib.common.tables import to_arrow
from personahub_assets.lib.ingest.batching import PERSONAS
from personahub_assets.lib.ingest.language import persona_language
from personahub_assets.lib.personas.imports import (
    PERSONA_FIELDS,
    import_rows,
    persona_field_of,
    read_persona_set,
)
from personahub_assets.lib.personas.queries import stored_persona_counts
from personahub_assets.partitions import batch_partitions
from personahub_assets.resources.warehouse import WarehouseResource


class ImportConfig(Config):
    """Which field of a persona set's records holds the persona."""

    persona_field: str = Field(default="", description="Field holding the persona; empty: "
                                                       f"the first of {list(PERSONA_FIELDS)} "
                                                       "that the set's first record has.")


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
        records = read_persona_set(part.path, part.start, part.stop, field)
        read += len(records)
        part_kept, part_rejected = import_rows(records, batch)
        kept += part_kept
        rejected += part_rejected
    warehouse.replace_partitions([
        ("personas", {"method": "import", "batch": batch}, to_arrow("personas", kept)),
        ("rejected_personas", {"method": "import", "batch": batch},
         to_arrow("rejected_personas", rejected)),
    ])
    stored = stored_persona_counts(warehouse.rows, "import", batch)
    reasons = Counter(r["reason"] for r in rejected)
    context.log.info(f"batch {batch} (#{seq}, {spec.kind}): imported {len(kept)} personas, "
                     f"rejected {len(rejected)}")
    return materialize_result(
        {
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
        table="personas", row_count=stored["kept"],
        checks=[check_result("imports_accounted", read == stored["kept"] + stored["rejected"],
                             {"read": read, **stored})],
    )
