"""Batches: which files (or slices of files) a unit of added data holds.

Files under ``incoming/`` are documents, files under ``incoming/personas/`` are persona sets.
A large file is cut into slices of ``max_records`` records (by line, row or record number), a
folder of small files is grouped into batches of up to ``max_records`` records, and a persona
set is one batch. A batch's fingerprint is a hash of the content of what it holds, so the
same content registered again gives the same key, and a changed file gives a new batch.
"""

from __future__ import annotations

import csv
import gzip
import hashlib
import json
import sys
import zlib
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

from personahub_assets.lib.common.ids import batch_key, stable_hash
from personahub_assets.lib.ingest.sources import SUPPORTED_SUFFIXES, suffix_of

DOCUMENTS, PERSONAS = "documents", "personas"
KINDS = (DOCUMENTS, PERSONAS)
PERSONAS_SUBDIR = "personas"
#: Suffixes of files still being written (or editor leftovers): never registered.
_PARTIAL_SUFFIXES = (".tmp", ".part", ".partial", ".crdownload", ".swp")
_SLICEABLE = {".jsonl", ".jsonl.gz", ".ndjson", ".json", ".parquet", ".csv"}


@dataclass(frozen=True)
class FilePart:
    """One file, or the records ``[start, stop)`` of it (``stop`` None: to the end)."""

    path: str
    content_hash: str
    start: int = 0
    stop: int | None = None


@dataclass(frozen=True)
class BatchSpec:
    """What a batch holds: its kind and its file parts, with the records they contain."""

    kind: str
    parts: tuple[FilePart, ...]
    records: int

    @property
    def fingerprint(self) -> str:
        return stable_hash(self.kind, *[(p.content_hash, p.start, p.stop) for p in self.parts],
                           length=32)

    @property
    def key(self) -> str:
        return batch_key(self.kind, self.fingerprint)

    def to_json(self) -> str:
        return json.dumps({"kind": self.kind, "records": self.records,
                           "parts": [{"path": p.path, "content_hash": p.content_hash,
                                      "start": p.start, "stop": p.stop} for p in self.parts]},
                          sort_keys=True)

    @classmethod
    def from_json(cls, text: str) -> BatchSpec:
        obj = json.loads(text)
        return cls(obj["kind"], tuple(FilePart(**p) for p in obj["parts"]), obj["records"])


@dataclass(frozen=True)
class IncomingFile:
    """A file found in the incoming folder: its kind, content hash and record count."""

    path: str
    kind: str
    content_hash: str
    records: int | None  # None: not countable before reading (WARC)
    is_supported: bool


def file_hash(path: Path) -> str:
    """A content hash of a file, read in 1 MiB blocks."""
    h = hashlib.blake2b(digest_size=16)
    with path.open("rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def count_records(path: Path) -> int | None:
    """Records a file holds, counted without parsing them (None where that is not possible).

    JSONL: lines (a blank line is a position too, so slices match the reader's record
    numbers); Parquet: rows from the footer; CSV: rows; HTML: one page; WARC: unknown.
    """
    suffix = suffix_of(path)
    try:
        if suffix in {".jsonl", ".ndjson", ".json"}:
            with path.open("rb") as fh:
                return sum(1 for _ in fh)
        if suffix == ".jsonl.gz":
            with gzip.open(path, "rb") as fh:
                return sum(1 for _ in fh)
        if suffix == ".parquet":
            import pyarrow.parquet as pq

            return pq.ParquetFile(path).metadata.num_rows
        if suffix == ".csv":
            csv.field_size_limit(sys.maxsize)
            with path.open(encoding="utf-8-sig", errors="replace", newline="") as fh:
                return max(sum(1 for _ in csv.reader(fh)) - 1, 0)
    except (OSError, EOFError, ValueError, zlib.error):
        return None  # broken file: ingestion reports what it can read and why the rest failed
    if suffix in {".html", ".htm"}:
        return 1
    return None


def scan_incoming(incoming: Path) -> list[IncomingFile]:
    """Every file under ``incoming`` (subfolders included), in path order.

    Hidden files and files still being written (``.tmp``, ``.part`` ...) are left for later;
    every other file is returned, supported or not, so an unsupported one gets a rejection.
    """
    if not incoming.is_dir():
        return []
    found = []
    personas_dir = incoming / PERSONAS_SUBDIR
    for path in sorted(p for p in incoming.rglob("*") if p.is_file()):
        rel = path.relative_to(incoming)
        if any(part.startswith(".") for part in rel.parts) or path.name.lower().endswith(
                _PARTIAL_SUFFIXES):
            continue
        kind = PERSONAS if personas_dir in path.parents else DOCUMENTS
        supported = suffix_of(path) in SUPPORTED_SUFFIXES
        found.append(IncomingFile(str(path), kind, file_hash(path),
                                  count_records(path) if supported else 1, supported))
    return found


def plan_batches(files: Iterable[IncomingFile], max_records: int,
                 registered: set[tuple[str, str]] = frozenset()) -> list[BatchSpec]:
    """New batches for the files not yet registered with the same content.

    ``registered`` holds ``(path, content_hash)`` of every file already in a batch. A persona
    set is one batch; a document file with more than ``max_records`` records is cut into
    slices; smaller document files are grouped, in path order, up to ``max_records`` records
    (a file of unknown size, such as a WARC file, is a batch of its own).
    """
    if max_records < 1:
        raise ValueError(f"max_records must be >= 1, got {max_records}")
    batches: list[BatchSpec] = []
    group: list[FilePart] = []
    group_records = 0

    def close_group() -> None:
        nonlocal group, group_records
        if group:
            batches.append(BatchSpec(DOCUMENTS, tuple(group), group_records))
        group, group_records = [], 0

    for f in files:
        if (f.path, f.content_hash) in registered:
            continue
        if f.kind == PERSONAS:
            batches.append(BatchSpec(PERSONAS, (FilePart(f.path, f.content_hash),),
                                     f.records or 0))
        elif f.records is None:
            batches.append(BatchSpec(DOCUMENTS, (FilePart(f.path, f.content_hash),), 0))
        elif f.records > max_records and suffix_of(Path(f.path)) in _SLICEABLE:
            batches.extend(slice_file(f.path, f.content_hash, f.records, max_records))
        else:
            if group_records + f.records > max_records:
                close_group()
            group.append(FilePart(f.path, f.content_hash))
            group_records += f.records
    close_group()
    return batches


def slice_file(path: str, content_hash: str, records: int, max_records: int,
               kind: str = DOCUMENTS) -> list[BatchSpec]:
    """A large file as batches of ``max_records`` consecutive records each (a file that fits
    in one batch is one batch of the whole file, the same batch as when it is grouped)."""
    if records <= max_records:
        return [BatchSpec(kind, (FilePart(path, content_hash),), records)]
    return [BatchSpec(kind, (FilePart(path, content_hash, start, min(start + max_records,
                                                                     records)),),
                      min(max_records, records - start))
            for start in range(0, records, max_records)]


def registered_pairs(rows: Sequence[dict]) -> set[tuple[str, str]]:
    """``(path, content_hash)`` pairs from ``batch_files`` rows."""
    return {(r["path"], r["content_hash"]) for r in rows}
