"""Per-file accounting of a batch: every file it read, what came of its records, and why a
file gave no document.

A file's ``records`` are every record its reader met: the ones kept as documents, the ones
rejected (with a row in ``rejected_documents``) and the ones skipped because they hold no
document (a WARC request or an image, counted by reason). ``records = documents + rejected +
skipped`` for every file, and the check reads the stored tables to confirm it.
"""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

Rows = Callable[[str, Sequence[Any]], list[dict[str, Any]]]

_MAX_REASONS = 3


@dataclass
class FileTally:
    """What the reader gave for one file (or file slice) of a batch."""

    source: str
    path: str
    #: Records and rejections the reader yielded (every one reaches documents or rejections).
    items: int = 0
    #: Records that hold no document, by reason (``skipped_record:request``...).
    skipped: Counter[str] = field(default_factory=Counter)


def _short(reason: str) -> str:
    """A rejection reason without the per-row part (the document a duplicate repeats)."""
    return "exact_duplicate" if reason.startswith("exact_duplicate_of:") else reason


def _why_nothing(path: str, records: int, reasons: Counter[str]) -> str:
    """Why a file gave no document: empty, no records, or its most frequent reasons."""
    if records == 0:
        file = Path(path)
        return "empty_file" if file.is_file() and file.stat().st_size == 0 else "no_records"
    top = ", ".join(f"{r}={n}" for r, n in reasons.most_common(_MAX_REASONS))
    more = len(reasons) - _MAX_REASONS
    return f"no_documents: {top}" + (f" and {more} more reasons" if more > 0 else "")


def file_rows(batch: str, tallies: Iterable[FileTally], kept: Sequence[Mapping[str, Any]],
              rejected: Sequence[Mapping[str, Any]]) -> list[dict[str, Any]]:
    """One ``file_accounting`` row per source of the batch, in the order the files were read.

    Documents and rejections are attributed by their ``source``; parts of a batch that share
    a source name (two slices, or equal names in two folders) share one row.
    """
    merged: dict[str, FileTally] = {}
    for tally in tallies:
        row = merged.setdefault(tally.source, FileTally(tally.source, tally.path))
        row.items += tally.items
        row.skipped.update(tally.skipped)
    documents = Counter(d["source"] for d in kept)
    rejections: dict[str, Counter[str]] = {}
    for r in rejected:
        rejections.setdefault(r["source"], Counter())[_short(r["reason"])] += 1
    rows = []
    for source, tally in merged.items():
        rejected_here = rejections.get(source, Counter())
        skipped = sum(tally.skipped.values())
        n_rejected = sum(rejected_here.values())
        records = documents[source] + n_rejected + skipped
        reason = None if documents[source] else _why_nothing(
            tally.path, records, rejected_here + tally.skipped)
        rows.append({"batch": batch, "source": source, "records": records,
                     "documents": documents[source], "rejected": n_rejected,
                     "skipped": skipped, "reason": reason,
                     "skipped_reasons": json.dumps(dict(sorted(tally.skipped.items())))})
    return rows


def skipped_by_reason(rows: Iterable[Mapping[str, Any]]) -> dict[str, int]:
    """Skipped records of all files, by reason."""
    total: Counter[str] = Counter()
    for row in rows:
        total.update(json.loads(row["skipped_reasons"] or "{}"))
    return dict(total)


def stored_accounting(rows: Rows, batch: str) -> dict[str, Any]:
    """What the warehouse holds for a batch: its file rows and its stored documents and
    rejections counted by source (read back, not taken from the run's own counts)."""
    return {
        "files": rows("SELECT source, records, documents, rejected, skipped, reason "
                      "FROM file_accounting WHERE batch = ?", [batch]),
        "documents": {r["source"]: r["n"] for r in rows(
            "SELECT source, count(*) AS n FROM documents WHERE batch = ? GROUP BY source",
            [batch])},
        "rejected": {r["source"]: r["n"] for r in rows(
            "SELECT source, count(*) AS n FROM rejected_documents WHERE batch = ? "
            "GROUP BY source", [batch])},
    }


def accounting_problems(expected_sources: Iterable[str], stored: Mapping[str, Any]
                        ) -> list[str]:
    """Everything that does not add up between a batch's files and its stored rows.

    Every file of the batch has a row; each row's records are its documents, rejections and
    skips; its documents and rejections are the rows stored under its source; no stored row
    comes from a file without an accounting row; a file with no document says why.
    """
    problems = []
    files = {f["source"]: f for f in stored["files"]}
    expected = set(expected_sources)
    if missing := sorted(expected - set(files)):
        problems.append(f"files without an accounting row: {missing}")
    if extra := sorted(set(files) - expected):
        problems.append(f"accounting rows for files the batch does not hold: {extra}")
    stray = (set(stored["documents"]) | set(stored["rejected"])) - set(files)
    if stray:
        problems.append(f"stored rows from files without an accounting row: {sorted(stray)}")
    for source, f in files.items():
        if f["records"] != f["documents"] + f["rejected"] + f["skipped"]:
            problems.append(f"{source}: {f['records']} records != {f['documents']} documents "
                            f"+ {f['rejected']} rejected + {f['skipped']} skipped")
        if f["documents"] != stored["documents"].get(source, 0):
            problems.append(f"{source}: {f['documents']} documents accounted, "
                            f"{stored['documents'].get(source, 0)} stored")
        if f["rejected"] != stored["rejected"].get(source, 0):
            problems.append(f"{source}: {f['rejected']} rejections accounted, "
                            f"{stored['rejected'].get(source, 0)} stored")
        if f["documents"] == 0 and not f["reason"]:
            problems.append(f"{source}: no documents and no reason")
    return problems
