"""Sources: what a source spec names, and one reader per format behind :func:`read_records`.

Sources, each read by its own module:

- :mod:`.tabular`: JSONL (optionally gzipped), Parquet and CSV files, folders and globs of
  them;
- :mod:`.warc`: WARC files (text ``response`` and ``resource`` records, and the
  ``conversion`` records of Common Crawl's WET files, told apart by their records rather
  than by the file's name) and plain HTML files;
- :mod:`.hf`: Hugging Face datasets by name (``hf:NAME`` with optional
  ``?config=...&split=...``, streamed) or saved to disk (a folder written by
  ``Dataset.save_to_disk``).

HTML is kept as HTML here; cleaning extracts its main text.

One bad file or record never stops the others: a broken archive, gzip stream, Parquet file
or line becomes a :class:`SourceRejection` with its reason, its source file and where in the
file it was found, and reading goes on with the rest of the file where the format allows it
(a line, a WARC record, a Parquet row group) and with the next file. Memory stays bounded:
files are streamed in chunks, and a record larger than ``max_record_bytes`` is skipped
without being held.

The record types (:class:`SourceRecord`, :class:`SourceRejection`, :class:`SourceSkip`) live
in :mod:`.records` and are importable from here.
"""

from __future__ import annotations

import glob
from collections import Counter
from collections.abc import Callable, Iterator
from pathlib import Path

from personahub_assets.lib.ingest.hf import (
    hf_source_name,
    is_saved_dataset,
    read_hf_dataset,
    read_saved_dataset,
)
from personahub_assets.lib.ingest.records import (
    MAX_RECORD_BYTES,
    PREVIEW_CHARS,
    SourceRecord,
    SourceRejection,
    SourceSkip,
)
from personahub_assets.lib.ingest.tabular import read_csv, read_jsonl, read_parquet
from personahub_assets.lib.ingest.warc import read_html, read_warc

__all__ = [
    "MAX_RECORD_BYTES", "PREVIEW_CHARS", "SUPPORTED_SUFFIXES", "SourceRecord", "SourceRejection",
    "SourceSkip", "expand_paths", "read_file", "read_records", "source_name", "suffix_of",
]

_FILE_SUFFIXES = (".jsonl", ".jsonl.gz", ".json", ".ndjson", ".parquet", ".csv", ".warc",
                  ".warc.gz", ".wet", ".wet.gz", ".wat", ".wat.gz", ".html", ".htm")
SUPPORTED_SUFFIXES = frozenset(_FILE_SUFFIXES)


def suffix_of(path: Path) -> str:
    """The file's format suffix, compound ones (``.jsonl.gz``) included."""
    name = path.name.lower()
    return next((s for s in sorted(_FILE_SUFFIXES, key=len, reverse=True) if name.endswith(s)),
                path.suffix.lower())


def expand_paths(spec: str) -> list[Path]:
    """Paths named by a file, a directory (its supported files) or a glob."""
    path = Path(spec)
    if path.is_dir():
        found = sorted(p for p in path.iterdir() if p.is_file() and suffix_of(p) in _FILE_SUFFIXES)
    elif any(ch in spec for ch in "*?["):
        found = sorted(Path(p) for p in glob.glob(spec))
    else:
        found = [path]
    missing = [p for p in found if not p.exists()]
    if missing or not found:
        raise FileNotFoundError(f"source not found: {spec}")
    return found


def read_records(
    spec: str, text_field: str = "text", url_field: str = "url",
    start: int = 0, stop: int | None = None, keep_fields: bool = False,
    max_record_bytes: int = MAX_RECORD_BYTES, skipped: Counter[str] | None = None,
) -> Iterator[SourceRecord | SourceRejection]:
    """Yield every record of the source named by ``spec``, in a stable order.

    Records that hold no document (WARC requests, metadata, revisits, non-text types) are
    not yielded; each is counted, by reason, into ``skipped`` when a counter is given.

    Every file named by ``spec`` is accounted for: its records, its bad records and, when
    it breaks off, one rejection for its unreadable rest. ``start``/``stop`` restrict a
    single file or dataset to the records ``[start, stop)``; JSONL lines and Parquet row
    groups outside the slice are skipped unparsed, so each record is read once in total when
    a file is cut into batches.
    """
    if spec.startswith("hf:"):
        yield from read_hf_dataset(spec, text_field, url_field, start, stop)
        return
    if is_saved_dataset(spec):
        yield from read_saved_dataset(spec, text_field, url_field)
        return
    paths = expand_paths(spec)
    if (start or stop is not None) and len(paths) != 1:
        raise ValueError(f"a record slice needs a single file, and {spec} names {len(paths)}")
    for path in paths:
        yield from read_file(path, text_field, url_field, max_record_bytes, start, stop,
                             keep_fields, skipped)


def _in_slice(records, start: int, stop: int | None):
    for rec in records:
        if stop is not None and rec.record_no >= stop:
            return
        if rec.record_no >= start:
            yield rec


def read_file(path: Path, text_field: str = "text", url_field: str = "url",
              max_record_bytes: int = MAX_RECORD_BYTES, start: int = 0,
              stop: int | None = None, keep_fields: bool = False,
              skipped: Counter[str] | None = None,
              ) -> Iterator[SourceRecord | SourceRejection]:
    """The records ``[start, stop)`` of one file; an error the format reader did not place
    becomes one rejection for the rest of the file (``unreadable_file:<error>``). Records
    that hold no document are counted into ``skipped`` by reason."""
    suffix = suffix_of(path)
    readers: dict[str, Callable[[], Iterator[SourceRecord | SourceRejection]]] = {
        ".jsonl": lambda: read_jsonl(path, text_field, url_field, max_record_bytes, start,
                                     stop, keep_fields),
        ".parquet": lambda: read_parquet(path, text_field, url_field, start, stop,
                                         keep_fields),
        ".csv": lambda: read_csv(path, text_field, url_field, keep_fields),
        ".warc": lambda: read_warc(path, max_record_bytes),
        ".html": lambda: read_html(path, max_record_bytes),
    }
    for alias, same in ((".jsonl.gz", ".jsonl"), (".json", ".jsonl"), (".ndjson", ".jsonl"),
                        (".warc.gz", ".warc"), (".wet", ".warc"), (".wet.gz", ".warc"),
                        (".wat", ".warc"), (".wat.gz", ".warc"), (".htm", ".html")):
        readers[alias] = readers[same]
    if suffix not in readers:
        raise ValueError(f"unsupported source format {suffix!r} for {path.name}")
    next_no = start
    try:
        for item in _in_slice(readers[suffix](), start, stop):
            next_no = item.record_no + 1
            if isinstance(item, SourceSkip):
                if skipped is not None:
                    skipped[item.reason] += 1
                continue
            yield item
    except Exception as exc:  # noqa: BLE001 - any failure of a reader is this file's rejection
        if stop is None or next_no < stop:
            yield SourceRejection(path.name, next_no,
                                  f"unreadable_file:{type(exc).__name__}",
                                  str(exc)[:PREVIEW_CHARS], f"after record {next_no - 1}"
                                  if next_no else "start of file")


def source_name(spec: str) -> str:
    """The ``source`` that the records of one file or dataset carry: a file's name, or
    ``hf:NAME[/CONFIG]/SPLIT`` for a Hugging Face dataset."""
    if spec.startswith("hf:"):
        return hf_source_name(spec)
    return Path(spec).name
