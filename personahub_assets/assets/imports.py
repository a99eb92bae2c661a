"""Imported personas: persona sets brought in from files or datasets (method ``import``)."""

import json
from collections import Counter

from dagster import (
    AssetCheckResult,
    AssetCheckSeverity,
    AssetCheckSpec,
    AssetExecutionContext,
    Config,
    MaterializeResult,
    MetadataValue,
    asset,
)
from pydantic import Field

from personahub_assets.lib import markdown
from personahub_assets.lib.ids import persona_id, shard_of
from personahub_assets.lib.sources import SourceRejection, read_records
from personahub_assets.lib.tables import to_arrow
from personahub_assets.lib.validation import validate_persona
from personahub_assets.resources.warehouse import WarehouseResource
from personahub_assets.settings import SETTINGS


class ImportConfig(Config):
    """Persona sets to import: files, folders, globs, hf:NAME datasets or saved datasets."""

    sources: list[str] = Field(default=[], description="Where the persona sets are; each "
                                                       "record holds one persona.")
    persona_field: str = Field(default="persona", description="Field holding the persona "
                                                              "(PersonaHub releases: persona).")


@asset(
    group_name="personas",
    kinds={"duckdb", "python"},
    check_specs=[AssetCheckSpec("imports_accounted", asset="imported_personas", blocking=True,
                                description="Every record read is kept or rejected.")],
)
def imported_personas(
    context: AssetExecutionContext, config: ImportConfig, warehouse: WarehouseResource
) -> MaterializeResult:
    """Personas from existing sets (for example a PersonaHub release, ``{"persona": ...}`` per
    line) join the generated ones before curation; invalid records are kept with a reason."""
    kept, rejected, read = [], [], 0
    for spec in config.sources:
        for rec in read_records(spec, text_field=config.persona_field, url_field="_none_",
                                keep_fields=True):
            read += 1
            base = {"method": "import", "depth": 0, "doc_id": None,
                    "backend": "import", "model": rec.source, "template": "import",
                    "template_version": "1", "sampling_params": "{}"}
            if isinstance(rec, SourceRejection):
                rejected.append({**base, "shard": 0, "raw_output": rec.raw_preview,
                                 "reason": rec.reason})
                continue
            raw = rec.text if isinstance(rec.text, str) else ""
            persona, reason = validate_persona(raw, "stop")
            if persona is None:
                rejected.append({**base, "shard": 0, "raw_output": str(rec.text)[:200],
                                 "reason": reason if isinstance(rec.text, str)
                                 else "not_a_string"})
                continue
            pid = persona_id(persona)
            kept.append({**base, "persona_id": pid, "persona": persona,
                         "shard": shard_of(pid, SETTINGS.num_shards),
                         # Fields beside the persona (e.g. the elite domains) feed attributes.
                         "source_fields": json.dumps(rec.fields) if rec.fields else None})
    warehouse.replace_partitions([
        ("personas", {"method": "import"}, to_arrow("personas", kept)),
        ("rejected_personas", {"method": "import"}, to_arrow("rejected_personas", rejected)),
    ])
    stored = warehouse.rows(
        "SELECT (SELECT count(*) FROM personas WHERE method = 'import') AS kept, "
        "(SELECT count(*) FROM rejected_personas WHERE method = 'import') AS rejected")[0]
    reasons = Counter(r["reason"] for r in rejected)
    context.log.info(f"imported {len(kept)} personas from {len(config.sources)} sources, "
                     f"rejected {len(rejected)}")
    return MaterializeResult(
        metadata={
            "sources": len(config.sources),
            "records_read": read,
            "personas_kept": len(kept),
            "personas_rejected": len(rejected),
            "rejection_reasons": MetadataValue.md(markdown.counts(dict(reasons))),
            "preview": MetadataValue.md(markdown.table(kept[:8], ["persona", "model"])),
        },
        check_results=[AssetCheckResult(
            check_name="imports_accounted",
            passed=read == stored["kept"] + stored["rejected"],
            severity=AssetCheckSeverity.ERROR,
            metadata={"read": read, **stored})],
    )
