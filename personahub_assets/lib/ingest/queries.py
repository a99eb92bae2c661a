"""Reads of the ingestion tables: ``documents``, ``rejected_documents`` and ``file_accounting``
(the per-file figures are read by :func:`personahub_assets.lib.ingest.file_accounting.
stored_accounting`). Every read names the batch it is about."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import duckdb
import pyarrow as pa

from personahub_assets.lib.common.queries import Rows, first_value


def batch_documents(rows: Rows, batch: str) -> list[dict[str, Any]]:
    """The kept documents of a batch (id, URL, text), by document ID."""
    return rows("SELECT doc_id, url, text FROM documents WHERE batch = ? "
                "ORDER BY doc_id", [batch])


def stored_document_counts(rows: Rows, batch: str) -> tuple[int, int]:
    """(documents, rejected documents) the warehouse holds for a batch."""
    kept = first_value(rows, "SELECT count(*) FROM documents WHERE batch = ?", [batch])
    rejected = first_value(rows, "SELECT count(*) FROM rejected_documents WHERE batch = ?",
                           [batch])
    return kept, rejected


def first_kept_copies(conn: duckdb.DuckDBPyConnection, content_hashes: Sequence[str],
                      seq: int) -> dict[str, tuple[str, str]]:
    """``content_hash -> (batch, doc_id)`` of the earliest document with that hash that a batch
    with a lower sequence number than ``seq`` kept, for the hashes given (the join reads only
    the documents whose hash is among them)."""
    hashes = pa.table({"content_hash": pa.array(list(content_hashes), pa.string())})
    conn.register("incoming_hashes", hashes)
    try:
        found = conn.execute(
            "SELECT d.content_hash, arg_min(d.batch, b.seq) AS batch, "
            "arg_min(d.doc_id, b.seq) AS doc_id FROM documents d "
            "JOIN batches b USING (batch) JOIN incoming_hashes h USING (content_hash) "
            "WHERE b.seq < ? GROUP BY d.content_hash", [seq]).fetchall()
    finally:
        conn.unregister("incoming_hashes")
    return {h: (b, d) for h, b, d in found}
