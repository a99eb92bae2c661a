"""Ingestion: one batch's files -> cleaned ``documents`` and ``rejected_documents``."""

from collections import Counter
from collections.abc import Iterator
from pathlib import Path

from dagster import AssetCheckSpec, AssetExecutionContext, Config, MaterializeResult, asset
from pydantic import Field

from personahub_assets import previews
from personahub_assets.assets.common import batch_of, check_result, materialize_result
from personahub_assets.automation import batch_condition
from personahub_assets.lib.common.tables import to_arrow
from personahub_assets.lib.ingest import queries
from personahub_assets.lib.ingest.batching import DOCUMENTS
from personahub_assets.lib.ingest.cleaning import MAX_RAW_CHARS, CleaningConfig, clean_batch
from personahub_assets.lib.ingest.duplicates import split_earlier_duplicates
from personahub_assets.lib.ingest.file_accounting import (
    FileTally,
    accounting_problems,
    file_rows,
    skipped_by_reason,
    stored_accounting,
)
from personahub_assets.lib.ingest.sources import (
    PREVIEW_CHARS,
    SUPPORTED_SUFFIXES,
    SourceRecord,
    SourceRejection,
    read_records,
    source_name,
    suffix_of,
)
from personahub_assets.partitions import batch_partitions
from personahub_assets.resources.warehouse import WarehouseResource


class IngestConfig(Config):
    """How a batch's records are read and how strictly they are cleaned."""

    text_field: str = Field(default="text", description="Field holding the document text.")
    url_field: str = Field(default="url", description="Field holding the document URL.")
    min_chars: int = Field(default=200, description="Shorter documents are rejected.")
    max_chars: int = Field(default=100_000, description="Longer documents are rejected.")
    languages: list[str] = Field(default=["en"],
                                 description="Languages to keep (ISO 639-1); empty = all.")
    min_language_probability: float = Field(default=0.7, description="Language confidence.")
    min_alpha_ratio: float = Field(default=0.6, description="Letters among non-space chars.")
    max_duplicate_line_ratio: float = Field(default=0.3, description="Repeated-line share.")
    max_raw_chars: int = Field(default=MAX_RAW_CHARS, description="Larger raw inputs (HTML "
                               "before extraction) are rejected; length rules read the text.")
    workers: int = Field(default=1, description="Processes that clean a batch of 4,096 "
                         "documents or more (HTML extraction, ftfy, language ID).")


def _read_part(path: str, start: int, stop, config: IngestConfig, tally: FileTally
               ) -> Iterator[SourceRecord | SourceRejection]:
    """The records of one file part; an unsupported or unreadable file becomes a rejection
    (with the reason), never a failed partition. ``tally`` counts what the file gave."""
    name = tally.source
    suffix = suffix_of(Path(path))
    if suffix not in SUPPORTED_SUFFIXES and not path.startswith("hf:"):
        tally.items += 1
        yield SourceRejection(name, 0, f"unsupported_format:{suffix or 'none'}", "")
        return
    last = start - 1
    try:
        for rec in read_records(path, config.text_field, config.url_field, start, stop,
                                skipped=tally.skipped):
            last = rec.record_no
            tally.items += 1
            yield rec
    except Exception as exc:  # noqa: BLE001 - one bad file must not fail the batch
        tally.items += 1
        yield SourceRejection(name, last + 1, f"unreadable:{type(exc).__name__}",
                              str(exc)[:PREVIEW_CHARS], f"after record {last}")


@asset(
    partitions_def=batch_partitions,
    group_name="ingestion",
    kinds={"duckdb", "python"},
    automation_condition=batch_condition(),
    check_specs=[AssetCheckSpec(
            "documents_accounted", asset="web_documents",
            partitions_def=batch_partitions, blocking=True,
            description="Every record read is kept or rejected, and the warehouse holds "
                        "exactly those rows; every file of the batch has a file_accounting "
                        "row whose records are its documents, rejections and skips.")],
)
def web_documents(
    context: AssetExecutionContext, config: IngestConfig, warehouse: WarehouseResource
) -> MaterializeResult:
    """Web documents of one batch, cleaned; every rejected record is kept with its reason.

    The batch reads only its own files or its own slice of a file, once. A document whose
    text was already kept by an earlier batch (lower sequence number) is rejected as a
    duplicate that names the batch and document it repeats. A persona-set batch writes an
    empty partition.
    """
    batch, spec, seq = batch_of(context, warehouse)
    cleaning = CleaningConfig(
        min_chars=config.min_chars, max_chars=config.max_chars,
        languages=tuple(config.languages),
        min_language_probability=config.min_language_probability,
        min_alpha_ratio=config.min_alpha_ratio,
        max_duplicate_line_ratio=config.max_duplicate_line_ratio,
        max_raw_chars=config.max_raw_chars)
    parts = spec.parts if spec.kind == DOCUMENTS else ()
    records = []
    tallies = [FileTally(source_name(part.path), part.path) for part in parts]
    for n, (part, tally) in enumerate(zip(parts, tallies, strict=True), start=1):
        records.extend(_read_part(part.path, part.start, part.stop, config, tally))
        context.log.info(f"batch {batch}: file {n}/{len(parts)} read, {len(records)} records, "
                         f"{sum(tally.skipped.values())} skipped")
    read = len(records)
    cleaned = clean_batch(records, cleaning, batch=batch, workers=config.workers)
    del records
    kept, rejected = cleaned.kept.to_pylist(), cleaned.rejected.to_pylist()
    languages: Counter[str] = Counter(d["language"] for d in kept)
    kept, earlier = _drop_earlier_duplicates(kept, seq, warehouse)
    rejected += earlier
    files = file_rows(batch, tallies, kept, rejected)

    warehouse.replace_partitions([
        ("documents", {"batch": batch}, to_arrow("documents", kept)),
        ("rejected_documents", {"batch": batch}, to_arrow("rejected_documents", rejected)),
        ("file_accounting", {"batch": batch}, to_arrow("file_accounting", files)),
    ])
    with warehouse.reader() as rows:  # the check's reads share one session
        stored_kept, stored_rej = queries.stored_document_counts(rows, batch)
        stored = stored_accounting(rows, batch)
    problems = accounting_problems({t.source for t in tallies}, stored)
    accounted = read == len(kept) + len(rejected) == stored_kept + stored_rej and not problems
    skipped = skipped_by_reason(files)
    reasons = Counter(r["reason"].split(":")[0] for r in rejected)
    context.log.info(f"batch {batch} (#{seq}, {spec.kind}): read {read}, kept {len(kept)}, "
                     f"rejected {len(rejected)} {dict(reasons)}")
    return materialize_result(
        {
            "batch_seq": seq,
            "batch_kind": spec.kind,
            "records_read": read,
            "records_in_batch": spec.records if spec.kind == DOCUMENTS else 0,
            "documents_kept": len(kept),
            "documents_rejected": len(rejected),
            "duplicates_of_earlier_batches": len(earlier),
            "records_skipped": sum(skipped.values()),
            "skipped_records": previews.counts(skipped),
            "files_read": len(files),
            "files_without_documents": sum(1 for f in files if not f["documents"]),
            "files": previews.table(files[:20], ["source", "records", "documents", "rejected",
                                                 "skipped", "reason"]),
            "reject_rate": round(len(rejected) / read, 4) if read else 0.0,
            "rejection_reasons": previews.counts(dict(reasons)),
            "languages": previews.counts(dict(languages)),
            "english_share": round(languages["en"] / len(kept), 4) if kept else 0.0,
            "preview": previews.table(kept[:5], ["doc_id", "url", "text"]),
        },
        table="documents", row_count=stored_kept,
        checks=[check_result(
            "documents_accounted", accounted,
            {"read": read, "kept": stored_kept, "rejected": stored_rej, "files": len(files),
             "problems": "; ".join(problems)[:2000] or "none"})],
    )


def _drop_earlier_duplicates(kept: list[dict], seq: int, warehouse: WarehouseResource
                             ) -> tuple[list[dict], list[dict]]:
    """Split kept documents into new ones and ones an earlier batch already kept."""
    if not kept:
        return kept, []
    with warehouse.session() as conn:
        first = queries.first_kept_copies(conn, [d["content_hash"] for d in kept], seq)
    return split_earlier_duplicates(kept, first)
