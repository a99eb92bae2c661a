"""The warehouse tables, defined once as Arrow schemas; the DuckDB DDL is derived from them."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

import pyarrow as pa

_S, _I, _L, _F, _B = pa.string(), pa.int32(), pa.int64(), pa.float64(), pa.bool_()
_V = pa.list_(pa.float32())  # an embedding vector

_PROVENANCE = [
    ("backend", _S),
    ("model", _S),
    ("template", _S),
    ("template_version", _S),
    ("sampling_params", _S),
    ("prompt_tokens", _I),
    ("completion_tokens", _I),
]

TABLES: dict[str, pa.Schema] = {
    # The ledger of batches: what each holds, in the order it was registered (``seq``).
    "batches": pa.schema([
        ("batch", _S), ("kind", _S), ("spec", _S), ("fingerprint", _S), ("seq", _L),
        ("records", _L), ("registered_at", _S),
    ]),
    # Each file (or file slice) a batch holds, by content hash: a file already registered
    # with the same content is never registered again.
    "batch_files": pa.schema([
        ("batch", _S), ("path", _S), ("content_hash", _S), ("start", _L), ("stop", _L),
    ]),
    "documents": pa.schema([
        ("doc_id", _S), ("batch", _S), ("source", _S), ("record_no", _L), ("url", _S),
        ("text", _S), ("n_chars", _I), ("content_hash", _S), ("language", _S),
    ]),
    "rejected_documents": pa.schema([
        ("batch", _S), ("source", _S), ("record_no", _L), ("url", _S), ("reason", _S),
        ("raw_preview", _S), ("location", _S),
    ]),
    # One row per file (or file slice) a batch read: its records are its documents, its
    # rejections and its skipped records (WARC requests, images...), and ``reason`` says why
    # a file gave no document.
    "file_accounting": pa.schema([
        ("batch", _S), ("source", _S), ("records", _L), ("documents", _L), ("rejected", _L),
        ("skipped", _L), ("reason", _S), ("skipped_reasons", _S),
    ]),
    "personas": pa.schema([
        ("persona_id", _S), ("batch", _S), ("method", _S), ("persona", _S), ("role", _S),
        ("doc_id", _S), ("parent_persona_id", _S), ("depth", _I), ("relation", _S),
        *_PROVENANCE, ("source_fields", _S), ("language", _S),
    ]),
    "rejected_personas": pa.schema([
        ("batch", _S), ("method", _S), ("doc_id", _S), ("parent_persona_id", _S),
        ("depth", _I), ("role", _S), ("relation", _S), ("raw_output", _S), ("reason", _S),
        *_PROVENANCE,
    ]),
    "persona_hub": pa.schema([
        ("persona_id", _S), ("batch", _S), ("persona", _S), ("method", _S), ("role", _S),
        ("doc_id", _S), ("parent_persona_id", _S), ("depth", _I), ("relation", _S),
        *_PROVENANCE,
    ]),
    "persona_dedup_log": pa.schema([
        ("persona_id", _S), ("persona", _S), ("method", _S), ("batch", _S),
        ("stage", _S), ("duplicate_of", _S), ("similarity", _F),
    ]),
    # The incremental hub's state (lib/curation/hub_state.py), every row keyed by the batch that
    # wrote it.
    # The ledger: which batches are curated, with their accounting and the settings used.
    "hub_ledger": pa.schema([
        ("batch", _S), ("seq", _L), ("personas_in", _L), ("kept", _L), ("dropped", _L),
        ("filtered", _L), ("exact", _L), ("minhash", _L), ("embedding", _L),
        ("settings", _S), ("curated_at", _S),
    ]),
    # Every distinct persona that passed the filters, in decision order (seq, pos), and the
    # stage that decided it: kept, or dropped at minhash or embedding.
    "hub_members": pa.schema([
        ("persona_id", _S), ("batch", _S), ("seq", _L), ("pos", _L), ("stage", _S),
    ]),
    # MinHash LSH band keys of every persona that survived the MinHash stage.
    "hub_band_keys": pa.schema([
        ("persona_id", _S), ("batch", _S), ("band", _I), ("key", _L),
    ]),
    # Embedding of every hub persona; ``list`` is its inverted list once the IVF index exists.
    "hub_vectors": pa.schema([
        ("persona_id", _S), ("batch", _S), ("seq", _L), ("pos", _L), ("list", _I),
        ("vector", _V),
    ]),
    # Frozen index state (IVF centroids), keyed by the batch before which it was trained.
    "hub_index": pa.schema([
        ("batch", _S), ("kind", _S), ("row", _I), ("vector", _V),
    ]),
    # Files of retracted batches: never registered again while they sit in incoming/.
    "retracted_files": pa.schema([
        ("batch", _S), ("path", _S), ("content_hash", _S), ("retracted_at", _S),
    ]),
    "synthetic_samples": pa.schema([
        ("sample_id", _S), ("domain", _S), ("batch", _S), ("persona_id", _S), ("persona", _S),
        ("sample_index", _I), ("mode", _S), ("text", _S), ("json_value", _S), ("valid", _B),
        ("reason", _S), ("finish_reason", _S), *_PROVENANCE, ("selection", _S),
    ]),
    "math_solutions": pa.schema([
        ("sample_id", _S), ("batch", _S), ("solver", _I), ("solution", _S), ("answer", _S),
        ("finish_reason", _S), ("error", _S), *_PROVENANCE,
    ]),
    "math_answers": pa.schema([
        ("sample_id", _S), ("batch", _S), ("answer", _S), ("votes", _I), ("k", _I),
        ("verified", _B),
    ]),
    # Issue 16: verifiable instruction data, the judge and safety screen, persona attributes.
    "instruction_responses": pa.schema([
        ("sample_id", _S), ("batch", _S), ("constraints", _S), ("instruction", _S),
        ("response", _S), ("constraints_passed", _B), ("constraint_verdicts", _S),
        ("n_constraints", _I), ("finish_reason", _S), ("error", _S), *_PROVENANCE,
    ]),
    "sample_quality": pa.schema([
        ("sample_id", _S), ("domain", _S), ("batch", _S), ("safety_flag", _B),
        ("safety_reason", _S), ("safety_score", _F), ("judge_score", _I),
        ("judge_reason", _S), ("judge_flag", _B), ("judge_error", _S), *_PROVENANCE,
    ]),
    "persona_attributes": pa.schema([
        ("persona_id", _S), ("batch", _S), ("occupation", _S), ("domain", _S),
        ("expertise", _S), ("language", _S), ("attribute_source", _S),
        ("source_fields", _S), *_PROVENANCE,
    ]),
}

_DUCKDB_TYPES = {_S: "VARCHAR", _I: "INTEGER", _L: "BIGINT", _F: "DOUBLE", _B: "BOOLEAN",
                 _V: "FLOAT[]"}


def ddl(table: str) -> str:
    """CREATE TABLE statement for a table of :data:`TABLES`."""
    cols = ", ".join(f'"{f.name}" {_DUCKDB_TYPES[f.type]}' for f in TABLES[table])
    return f'CREATE TABLE IF NOT EXISTS "{table}" ({cols})'


def to_arrow(table: str, rows: Iterable[Mapping[str, Any]]) -> pa.Table:
    """Rows as an Arrow table with exactly the table's schema (missing keys become null)."""
    schema = TABLES[table]
    rows = list(rows)
    unknown = {k for row in rows for k in row} - set(schema.names)
    if unknown:
        raise KeyError(f"unknown columns for {table}: {sorted(unknown)}")
    columns = {name: [row.get(name) for row in rows] for name in schema.names}
    return pa.table(columns, schema=schema)
