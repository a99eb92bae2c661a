"""Retraction: a batch and every row derived from it leave the warehouse.

:func:`personahub_assets.lib.curation.hub.retract_batch` runs these steps in order, with the
hub's replay between deleting the batch and removing the samples of personas that left it.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path

from personahub_assets.lib.common.transactions import rollback_if_open
from personahub_assets.lib.curation.hub_state import HUB_TABLES, Session

#: Tables holding rows of a batch, in the order a retraction deletes them.
BATCH_TABLES = ("math_answers", "math_solutions", "synthetic_samples", *HUB_TABLES,
                "rejected_personas", "personas", "file_accounting", "rejected_documents",
                "documents", "batch_files", "batches")
_LATER_HUB_ROWS = ("SELECT persona_id, batch FROM persona_hub p WHERE EXISTS (SELECT 1 FROM "
                   "hub_ledger l WHERE l.batch = p.batch AND l.seq > ?)")


@dataclass
class Retraction:
    """What retracting a batch removed and which later batches' hub rows changed."""

    batch: str
    seq: int
    rows_deleted: dict[str, int]
    files_deleted: list[str]
    replayed: list[str]
    changed_batches: list[str]
    personas_left: int
    personas_admitted: int
    samples_removed: int


def locate_batch(session: Session, batch: str) -> tuple[int, set[tuple[str, str]]]:
    """The batch's sequence number and the hub rows ``(persona_id, batch)`` of every curated
    batch after it.

    Raises:
        KeyError: The batch is not registered.
    """
    with session() as conn:
        row = conn.execute("SELECT seq FROM batches WHERE batch = ?", [batch]).fetchone()
        if row is None:
            raise KeyError(f"batch {batch!r} is not registered (nothing to retract)")
        seq = int(row[0])
        before = {(r[0], r[1]) for r in conn.execute(_LATER_HUB_ROWS, [seq]).fetchall()}
    return seq, before


def delete_batch_rows(session: Session, batch: str) -> dict[str, int]:
    """Delete every row of the batch in every table (one transaction), and record its files in
    ``retracted_files`` so the incoming folder does not register them again; returns the rows
    deleted per table."""
    deleted: dict[str, int] = {}
    now = datetime.now(timezone.utc).isoformat(timespec="seconds")
    with session() as conn:
        conn.execute("BEGIN TRANSACTION")
        try:
            conn.execute("INSERT INTO retracted_files SELECT batch, path, content_hash, ? "
                         "FROM batch_files WHERE batch = ?", [now, batch])
            for table in ("math_answers", "math_solutions"):
                deleted[table] = conn.execute(
                    f'DELETE FROM "{table}" WHERE batch = ? OR sample_id IN (SELECT sample_id '
                    f'FROM synthetic_samples WHERE batch = ?)', [batch, batch]).fetchone()[0]
            for table in BATCH_TABLES[2:]:
                deleted[table] = conn.execute(f'DELETE FROM "{table}" WHERE batch = ?',
                                              [batch]).fetchone()[0]
            conn.execute("COMMIT")
        except BaseException:
            rollback_if_open(conn)
            raise
    return deleted


def remove_orphan_samples(session: Session, seq: int) -> tuple[set[tuple[str, str]], int]:
    """After the replay: the hub rows of every curated batch after ``seq``, and the number of
    samples deleted (with their math verdicts) because their persona left the hub."""
    with session() as conn:
        after = {(r[0], r[1]) for r in conn.execute(_LATER_HUB_ROWS, [seq]).fetchall()}
        conn.execute("BEGIN TRANSACTION")
        try:
            orphan = ("SELECT sample_id FROM synthetic_samples s WHERE NOT EXISTS (SELECT 1 "
                      "FROM persona_hub h WHERE h.persona_id = s.persona_id AND h.batch = "
                      "s.batch)")
            for table in ("math_answers", "math_solutions"):
                conn.execute(f'DELETE FROM "{table}" WHERE sample_id IN ({orphan})')
            removed = conn.execute(f"DELETE FROM synthetic_samples WHERE sample_id IN "
                                   f"({orphan})").fetchone()[0]
            conn.execute("COMMIT")
        except BaseException:
            rollback_if_open(conn)
            raise
    return after, int(removed)


def delete_export_files(exports_dir: str | Path | None, batch: str) -> list[str]:
    """Delete the batch's export files under every domain folder; returns their paths."""
    files: list[str] = []
    if exports_dir is not None and Path(exports_dir).is_dir():
        for domain_dir in sorted(p for p in Path(exports_dir).iterdir() if p.is_dir()):
            for suffix in (".jsonl", ".parquet"):
                path = domain_dir / f"{batch}{suffix}"
                if path.exists():
                    path.unlink()
                    files.append(str(path))
    return files


def changed_batches(before: set[tuple[str, str]], after: set[tuple[str, str]],
                    replayed: list[str]) -> list[str]:
    """Batches whose hub rows differ between ``before`` and ``after``, in replay order."""
    return sorted({b for _, b in before ^ after},
                  key=lambda b: replayed.index(b) if b in replayed else len(replayed))
