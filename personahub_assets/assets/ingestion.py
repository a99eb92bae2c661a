"""Ingestion: source files -> cleaned ``documents`` and ``rejected_documents``, per shard."""

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
from personahub_assets.lib.cleaning import CleaningConfig, clean_document
from personahub_assets.lib.ids import doc_id, normalize_text, shard_of, stable_hash
from personahub_assets.lib.sources import PREVIEW_CHARS, SourceRejection, read_records
from personahub_assets.lib.tables import to_arrow
from personahub_assets.partitions import shard_partitions
from personahub_assets.resources.warehouse import WarehouseResource
from personahub_assets.settings import SETTINGS


class IngestConfig(Config):
    """Where documents come from and how strictly they are cleaned."""

    source: str = Field(default=SETTINGS.source,
                        description="JSONL or Parquet file, a folder of them, or a glob.")
    text_field: str = Field(default="text", description="Field holding the document text.")
    url_field: str = Field(default="url", description="Field holding the document URL.")
    min_chars: int = Field(default=200, description="Shorter documents are rejected.")
    max_chars: int = Field(default=100_000, description="Longer documents are rejected.")
    languages: list[str] = Field(default=["en"],
                                 description="Languages to keep (ISO 639-1); empty = all.")
    min_language_probability: float = Field(default=0.7, description="Language confidence.")
    min_alpha_ratio: float = Field(default=0.6, description="Letters among non-space chars.")
    max_duplicate_line_ratio: float = Field(default=0.3, description="Repeated-line share.")


@asset(
    partitions_def=shard_partitions,
    group_name="ingestion",
    kinds={"duckdb", "python"},
    check_specs=[AssetCheckSpec("documents_accounted", asset="web_documents", blocking=True,
                                description="Every record read is kept or rejected, "
                                            "and the warehouse holds exactly those rows.")],
)
def web_documents(
    context: AssetExecutionContext, config: IngestConfig, warehouse: WarehouseResource
) -> MaterializeResult:
    """Web documents of one shard, cleaned; every rejected record is kept with its reason.

    A document's shard is the hash of its normalized text mod the shard count, so exact
    duplicates always meet in the same shard and are caught there (every shard therefore
    cleans every record; streamed datasets with enough files are split by file instead).
    A rejected record's shard is the hash of its source and position.
    """
    shard = int(context.partition_key)
    cleaning = CleaningConfig(
        min_chars=config.min_chars, max_chars=config.max_chars,
        languages=tuple(config.languages),
        min_language_probability=config.min_language_probability,
        min_alpha_ratio=config.min_alpha_ratio,
        max_duplicate_line_ratio=config.max_duplicate_line_ratio)
    kept, rejected, seen = [], [], {}
    read_total = read_in_shard = 0
    languages: Counter[str] = Counter()
    records = read_records(config.source, config.text_field, config.url_field,
                           shard=shard, num_shards=SETTINGS.num_shards)
    for rec in records:
        read_total += 1
        # Rejections are sharded by position, kept documents by content (see docstring);
        # records a streamed dataset already assigned to this shard skip both tests.
        by_position = shard_of(stable_hash(rec.source, rec.record_no), SETTINGS.num_shards)
        preassigned = getattr(rec, "shard", None) is not None
        if isinstance(rec, SourceRejection):
            if by_position == shard:
                read_in_shard += 1
                rejected.append({"shard": shard, "source": rec.source, "record_no": rec.record_no,
                                 "reason": rec.reason, "raw_preview": rec.raw_preview})
            continue
        text, reason, language = clean_document(rec.text, cleaning, is_html=rec.is_html)
        if text is None:
            if not preassigned and by_position != shard:
                continue
            read_in_shard += 1
            rejected.append({"shard": shard, "source": rec.source, "record_no": rec.record_no,
                             "url": rec.url, "reason": reason,
                             "raw_preview": str(rec.text)[:PREVIEW_CHARS]})
            continue
        content_hash = stable_hash("content", normalize_text(text))
        if not preassigned and shard_of(content_hash, SETTINGS.num_shards) != shard:
            continue
        languages[language] += 1
        read_in_shard += 1
        if content_hash in seen:
            rejected.append({"shard": shard, "source": rec.source, "record_no": rec.record_no,
                             "url": rec.url, "reason": f"exact_duplicate_of:{seen[content_hash]}",
                             "raw_preview": text[:PREVIEW_CHARS]})
            continue
        did = doc_id(rec.source, text)
        seen[content_hash] = did
        kept.append({"doc_id": did, "shard": shard, "source": rec.source,
                     "record_no": rec.record_no, "url": rec.url, "text": text,
                     "n_chars": len(text), "content_hash": content_hash,
                     "language": language})

    warehouse.replace_partitions([
        ("documents", {"shard": shard}, to_arrow("documents", kept)),
        ("rejected_documents", {"shard": shard}, to_arrow("rejected_documents", rejected)),
    ])
    stored_kept = warehouse.scalar("SELECT count(*) FROM documents WHERE shard = ?", [shard])
    stored_rej = warehouse.scalar(
        "SELECT count(*) FROM rejected_documents WHERE shard = ?", [shard])
    accounted = read_in_shard == len(kept) + len(rejected) == stored_kept + stored_rej
    reasons = Counter(r["reason"].split(":")[0] for r in rejected)
    context.log.info(f"shard {shard}: read {read_in_shard}, kept {len(kept)}, "
                     f"rejected {len(rejected)} {dict(reasons)}")
    return MaterializeResult(
        metadata={
            "records_in_source": read_total,
            "records_in_shard": read_in_shard,
            "documents_kept": len(kept),
            "documents_rejected": len(rejected),
            "reject_rate": round(len(rejected) / read_in_shard, 4) if read_in_shard else 0.0,
            "rejection_reasons": MetadataValue.md(markdown.counts(dict(reasons))),
            "languages": MetadataValue.md(markdown.counts(dict(languages))),
            "english_share": round(languages["en"] / len(kept), 4) if kept else 0.0,
            "preview": MetadataValue.md(markdown.table(kept[:5], ["doc_id", "url", "text"])),
        },
        check_results=[AssetCheckResult(
            check_name="documents_accounted",
            passed=accounted,
            severity=AssetCheckSeverity.ERROR,
            metadata={"read": read_in_shard, "kept": stored_kept, "rejected": stored_rej},
        )],
    )
