"""Readers that turn sources into records, and malformed input into rejections.

Sources: JSONL (optionally gzipped), Parquet and CSV files, folders and globs of them; WARC
files (HTML responses); plain HTML files; Hugging Face datasets by name (``hf:NAME`` with
optional ``?config=...&split=...``, streamed) or saved to disk (a folder written by
``Dataset.save_to_disk``). HTML is kept as HTML here; cleaning extracts its main text.
"""

from __future__ import annotations

import csv
import glob
import gzip
import io
import json
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import parse_qs

PREVIEW_CHARS = 200


@dataclass(frozen=True)
class SourceRecord:
    """One record read from a source: where it came from and its raw fields.

    ``is_html`` marks raw HTML whose main text is still to be extracted.
    """

    source: str
    record_no: int
    url: str | None
    text: object
    is_html: bool = False
    #: The record's other fields (for persona sets: occupation, domains...), when it has any.
    fields: dict | None = None


@dataclass(frozen=True)
class SourceRejection:
    """A record that could not even be read, with the reason."""

    source: str
    record_no: int
    reason: str
    raw_preview: str


_FILE_SUFFIXES = (".jsonl", ".jsonl.gz", ".json", ".ndjson", ".parquet", ".csv", ".warc",
                  ".warc.gz", ".html", ".htm")
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


def is_saved_dataset(spec: str) -> bool:
    """True for a folder written by ``datasets.Dataset.save_to_disk``."""
    path = Path(spec)
    return path.is_dir() and (path / "dataset_info.json").exists() and (
        path / "state.json").exists()


def _others(row: dict, text_field: str) -> dict | None:
    """The fields of a record besides its text, JSON-safe, or None when there are none."""
    others = {k: v for k, v in row.items() if k != text_field
              and isinstance(v, (str, int, float, bool))}
    return others or None


def read_records(
    spec: str, text_field: str = "text", url_field: str = "url",
    start: int = 0, stop: int | None = None, keep_fields: bool = False,
) -> Iterator[SourceRecord | SourceRejection]:
    """Yield every record of the source named by ``spec``, in a stable order.

    ``start``/``stop`` restrict a single file or dataset to the records ``[start, stop)``;
    JSONL lines outside the slice are skipped unparsed, so each record is read once in total
    when a file is cut into batches.
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
        suffix = suffix_of(path)
        if suffix in {".jsonl", ".jsonl.gz", ".json", ".ndjson"}:
            yield from _read_jsonl(path, text_field, url_field, start, stop)
        elif suffix == ".parquet":
            yield from _read_parquet(path, text_field, url_field, start, stop, keep_fields)
        elif suffix == ".csv":
            yield from _in_slice(_read_csv(path, text_field, url_field), start, stop)
        elif suffix in {".warc", ".warc.gz"}:
            yield from _read_warc(path)
        elif suffix in {".html", ".htm"}:
            raw = path.read_bytes()
            yield SourceRecord(path.name, 0, path.name, raw.decode("utf-8", "replace"),
                               is_html=True)
        else:
            raise ValueError(f"unsupported source format {suffix!r} for {path.name}")


def _in_slice(records, start: int, stop: int | None):
    for rec in records:
        if stop is not None and rec.record_no >= stop:
            return
        if rec.record_no >= start:
            yield rec


def _read_jsonl(path: Path, text_field: str, url_field: str, start: int = 0,
                stop: int | None = None):
    source = path.name
    opener = gzip.open if path.name.lower().endswith(".gz") else open
    with opener(path, "rb") as fh:
        for record_no, raw in enumerate(fh):
            if record_no < start:
                continue
            if stop is not None and record_no >= stop:
                return
            if not raw.strip():
                continue
            preview = raw[:PREVIEW_CHARS].decode("utf-8", "replace")
            try:
                obj = json.loads(raw.decode("utf-8"))
            except UnicodeDecodeError:
                yield SourceRejection(source, record_no, "invalid_utf8", preview)
                continue
            except json.JSONDecodeError:
                yield SourceRejection(source, record_no, "malformed_json", preview)
                continue
            if not isinstance(obj, dict):
                yield SourceRejection(source, record_no, "not_an_object", preview)
                continue
            if text_field not in obj:
                yield SourceRejection(source, record_no, f"missing_field:{text_field}", preview)
                continue
            url = obj.get(url_field)
            yield SourceRecord(source, record_no, str(url) if url is not None else None,
                               obj[text_field], fields=_others(obj, text_field))


def _read_parquet(path: Path, text_field: str, url_field: str, start: int = 0,
                  stop: int | None = None, keep_fields: bool = False):
    import pyarrow.parquet as pq

    source = path.name
    names = pq.ParquetFile(path).schema_arrow.names
    if text_field not in names:
        raise ValueError(f"{path.name} has no column {text_field!r}: {names}")
    table = pq.read_table(path, columns=names if keep_fields else
                          [c for c in (text_field, url_field) if c in names])
    table = table.slice(start, None if stop is None else max(stop - start, 0))
    texts = table.column(text_field).to_pylist()
    urls = (table.column(url_field).to_pylist() if url_field in table.column_names
            else [None] * len(texts))
    others = table.to_pylist() if keep_fields else [{}] * len(texts)
    for record_no, (url, text, row) in enumerate(zip(urls, texts, others, strict=True),
                                                 start=start):
        yield SourceRecord(source, record_no, str(url) if url is not None else None, text,
                           fields=_others(row, text_field))


def _read_csv(path: Path, text_field: str, url_field: str):
    source = path.name
    csv.field_size_limit(sys.maxsize)
    with path.open("rb") as fh:
        raw = fh.read()
    try:
        text = raw.decode("utf-8-sig")
    except UnicodeDecodeError:
        yield SourceRejection(source, 0, "invalid_utf8", raw[:PREVIEW_CHARS].decode(
            "utf-8", "replace"))
        return
    reader = csv.DictReader(io.StringIO(text, newline=""))
    if reader.fieldnames is None or text_field not in reader.fieldnames:
        raise ValueError(f"{path.name} has no column {text_field!r}: {reader.fieldnames}")
    for record_no, row in enumerate(reader):
        if row.get(text_field) is None or None in row:
            yield SourceRejection(source, record_no, "malformed_csv_row", str(row)[:PREVIEW_CHARS])
            continue
        yield SourceRecord(source, record_no, row.get(url_field) or None, row[text_field],
                           fields=_others(row, text_field))


def _read_warc(path: Path):
    """HTML responses of a WARC file; other responses are rejected with their content type."""
    from warcio.archiveiterator import ArchiveIterator

    source = path.name
    with path.open("rb") as fh:
        for record_no, record in enumerate(ArchiveIterator(fh)):
            if record.rec_type != "response":
                continue  # requests, warcinfo and metadata records hold no documents
            url = record.rec_headers.get_header("WARC-Target-URI")
            ctype = (record.http_headers.get_header("Content-Type") or ""
                     if record.http_headers else "")
            body = record.content_stream().read()
            if "html" not in ctype.lower():
                yield SourceRejection(source, record_no, f"not_html:{ctype.split(';')[0]}",
                                      body[:PREVIEW_CHARS].decode("utf-8", "replace"))
                continue
            yield SourceRecord(source, record_no, url, body.decode("utf-8", "replace"),
                               is_html=True)


def parse_hf_spec(spec: str) -> tuple[str, str | None, str]:
    """``hf:NAME?config=C&split=S`` -> (NAME, C or None, S or 'train')."""
    name, _, query = spec[3:].partition("?")
    params = {k: v[-1] for k, v in parse_qs(query).items()}
    unknown = set(params) - {"config", "split"}
    if not name or unknown:
        raise ValueError(f"bad Hugging Face source {spec!r}: use hf:NAME?config=C&split=S")
    return name, params.get("config"), params.get("split", "train")


def read_hf_dataset(spec: str, text_field: str, url_field: str, start: int = 0,
                    stop: int | None = None):
    """Stream a Hugging Face dataset (by hub name, or a local folder of data files); a slice
    ``[start, stop)`` skips to its first row and stops after its last."""
    from datasets import load_dataset

    name, config, split = parse_hf_spec(spec)
    dataset = load_dataset(name, config, split=split, streaming=True)
    if start:
        dataset = dataset.skip(start)
    if stop is not None:
        dataset = dataset.take(max(stop - start, 0))
    source = f"hf:{name}" + (f"/{config}" if config else "") + f"/{split}"
    for record_no, row in enumerate(dataset, start=start):
        if text_field not in row:
            yield SourceRejection(source, record_no, f"missing_field:{text_field}",
                                  str(row)[:PREVIEW_CHARS])
            continue
        url = row.get(url_field)
        yield SourceRecord(source, record_no, str(url) if url is not None else None,
                           row[text_field], fields=_others(row, text_field))


def read_saved_dataset(spec: str, text_field: str, url_field: str):
    """A dataset saved with ``save_to_disk``."""
    from datasets import load_from_disk

    dataset = load_from_disk(spec)
    if text_field not in dataset.column_names:
        raise ValueError(f"{spec} has no column {text_field!r}: {dataset.column_names}")
    source = Path(spec).name
    has_url = url_field in dataset.column_names
    for record_no, row in enumerate(dataset):
        url = row[url_field] if has_url else None
        yield SourceRecord(source, record_no, str(url) if url is not None else None,
                           row[text_field], fields=_others(row, text_field))
