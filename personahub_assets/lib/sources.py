"""Readers that turn source files into records, and malformed input into rejections."""

from __future__ import annotations

import glob
import json
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

PREVIEW_CHARS = 200


@dataclass(frozen=True)
class SourceRecord:
    """One record read from a source: where it came from and its raw fields."""

    source: str
    record_no: int
    url: str | None
    text: object


@dataclass(frozen=True)
class SourceRejection:
    """A record that could not even be read, with the reason."""

    source: str
    record_no: int
    reason: str
    raw_preview: str


def expand_paths(spec: str) -> list[Path]:
    """Paths named by a file, a directory (its JSONL and Parquet files) or a glob."""
    path = Path(spec)
    if path.is_dir():
        found = sorted([*path.glob("*.jsonl"), *path.glob("*.parquet")])
    elif any(ch in spec for ch in "*?["):
        found = sorted(Path(p) for p in glob.glob(spec))
    else:
        found = [path]
    missing = [p for p in found if not p.exists()]
    if missing or not found:
        raise FileNotFoundError(f"source not found: {spec}")
    return found


def read_records(
    spec: str, text_field: str = "text", url_field: str = "url"
) -> Iterator[SourceRecord | SourceRejection]:
    """Yield every record of the JSONL or Parquet files named by ``spec``, in order."""
    for path in expand_paths(spec):
        suffix = path.suffix.lower()
        if suffix in {".jsonl", ".json", ".ndjson"}:
            yield from _read_jsonl(path, text_field, url_field)
        elif suffix == ".parquet":
            yield from _read_parquet(path, text_field, url_field)
        else:
            raise ValueError(f"unsupported source format {suffix!r} for {path.name}")


def _read_jsonl(path: Path, text_field: str, url_field: str):
    source = path.name
    with path.open("rb") as fh:
        for record_no, raw in enumerate(fh):
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
                               obj[text_field])


def _read_parquet(path: Path, text_field: str, url_field: str):
    import pyarrow.parquet as pq

    source = path.name
    table = pq.read_table(path)
    if text_field not in table.column_names:
        raise ValueError(f"{path.name} has no column {text_field!r}: {table.column_names}")
    texts = table.column(text_field).to_pylist()
    urls = (table.column(url_field).to_pylist() if url_field in table.column_names
            else [None] * len(texts))
    for record_no, (url, text) in enumerate(zip(urls, texts, strict=True)):
        yield SourceRecord(source, record_no, str(url) if url is not None else None, text)
