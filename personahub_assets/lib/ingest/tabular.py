"""Readers of tabular files: JSONL (optionally gzipped), Parquet and CSV.

JSONL chunks are parsed by polars; a chunk polars refuses, and any value it may have turned
into a string (a number or a list in the text field), is parsed again line by line with the
``json`` module, so every bad line still gets its own reason and line number. Parquet is read
row group by row group, CSV at once by polars or, where polars refuses it, row by row.
"""

from __future__ import annotations

import csv
import gzip
import io
import json
import sys
import zlib
from collections.abc import Iterator
from pathlib import Path
from typing import BinaryIO

from personahub_assets.lib.ingest.records import (
    PREVIEW_CHARS,
    SourceRecord,
    SourceRejection,
    gzip_reason,
    other_fields,
    preview,
)

_JSONL_CHUNK_LINES = 8192
_CSV_POLARS_MAX_BYTES = 256 * 1024 * 1024


# ------------------------------------------------------------------------------------------
# JSONL


def _bounded_lines(fh: BinaryIO, limit: int) -> Iterator[tuple[int, int, bytes | None]]:
    """``(line_no, byte_offset, line)`` of a binary stream; ``line`` is None for a line
    longer than ``limit`` bytes, which is skipped without being held in memory."""
    offset = 0
    line_no = 0
    while True:
        line = fh.readline(limit + 1)
        if not line:
            return
        start = offset
        offset += len(line)
        if len(line) > limit and not line.endswith(b"\n"):
            while True:  # skip the rest of the oversized line
                rest = fh.readline(1 << 20)
                offset += len(rest)
                if not rest or rest.endswith(b"\n"):
                    break
            yield line_no, start, None
        else:
            yield line_no, start, line
        line_no += 1


def _parse_json_line(source: str, line_no: int, raw: bytes, text_field: str, url_field: str
                     ) -> SourceRecord | SourceRejection:
    where = f"line {line_no + 1}"
    try:
        obj = json.loads(raw.decode("utf-8"))
    except UnicodeDecodeError:
        return SourceRejection(source, line_no, "invalid_utf8", preview(raw), where)
    except json.JSONDecodeError:
        return SourceRejection(source, line_no, "malformed_json", preview(raw), where)
    if not isinstance(obj, dict):
        return SourceRejection(source, line_no, "not_an_object", preview(raw), where)
    if text_field not in obj:
        return SourceRejection(source, line_no, f"missing_field:{text_field}", preview(raw),
                               where)
    url = obj.get(url_field)
    return SourceRecord(source, line_no, str(url) if url is not None else None, obj[text_field],
                        fields=other_fields(obj, text_field))


# A value polars may have made a string out of: a number, a list, an object, a boolean.
_NOT_ORIGINALLY_A_STRING = r"^(?:-?[0-9]|\[|\{|true$|false$)"


def _parse_jsonl_chunk(source: str, lines: list[tuple[int, bytes]], text_field: str,
                       url_field: str, keep_fields: bool = False,
                       ) -> list[SourceRecord | SourceRejection]:
    """Records of a chunk of non-blank lines, in order: polars first, ``json`` per line for
    every line polars cannot vouch for (and for every line when the other fields are asked
    for exactly, since polars may make strings of mixed-type fields)."""
    import polars as pl

    if keep_fields:
        return [_parse_json_line(source, no, raw, text_field, url_field) for no, raw in lines]
    slow = set(range(len(lines)))
    texts: list = [None] * len(lines)
    urls: list = [None] * len(lines)
    rows: list[dict] = [{}] * len(lines)
    try:
        frame = pl.read_ndjson(io.BytesIO(b"\n".join(raw.rstrip(b"\r\n") for _, raw in lines)),
                               infer_schema_length=None)
        if len(frame) == len(lines) and frame.schema.get(text_field) == pl.String:
            check = frame.select(
                pl.col(text_field),
                (pl.col(url_field).cast(pl.String) if url_field in frame.columns
                 else pl.lit(None, pl.String)).alias("_url"),
                (pl.col(text_field).is_null()
                 | pl.col(text_field).str.contains(_NOT_ORIGINALLY_A_STRING)).alias("_slow"))
            texts = check.get_column(text_field).to_list()
            urls = check.get_column("_url").to_list()
            extra = [c for c in frame.columns if c != text_field]
            rows = frame.select(extra).to_dicts() if extra else [{}] * len(lines)
            slow = set(check.get_column("_slow").arg_true().to_list())
    except Exception:  # noqa: BLE001,S110 - polars refused the chunk: every line goes slow
        pass
    out: list[SourceRecord | SourceRejection] = []
    for i, (line_no, raw) in enumerate(lines):
        if i in slow:
            out.append(_parse_json_line(source, line_no, raw, text_field, url_field))
        else:
            out.append(SourceRecord(source, line_no, urls[i], texts[i],
                                    fields=other_fields(rows[i], text_field)))
    return out


def read_jsonl(path: Path, text_field: str, url_field: str, max_record_bytes: int,
               start: int = 0, stop: int | None = None, keep_fields: bool = False):
    """Records of a JSONL file (gzipped when its name ends in ``.gz``), parsed in chunks;
    lines outside ``[start, stop)`` are skipped unparsed."""
    source = path.name
    opener = gzip.open if path.name.lower().endswith(".gz") else open
    line_no = -1
    chunk: list[tuple[int, bytes]] = []
    with opener(path, "rb") as fh:
        lines = _bounded_lines(fh, max_record_bytes)
        while True:
            try:
                line_no, _, raw = next(lines)
            except StopIteration:
                break
            except (EOFError, OSError, zlib.error) as exc:
                yield from _parse_jsonl_chunk(source, chunk, text_field, url_field, keep_fields)
                reason = gzip_reason(exc) or f"unreadable_file:{type(exc).__name__}"
                yield SourceRejection(source, line_no + 1, reason, str(exc)[:PREVIEW_CHARS],
                                      f"line {line_no + 2}")
                return
            if line_no < start:
                continue  # another batch's line: not parsed
            if stop is not None and line_no >= stop:
                break
            if raw is None:
                yield from _parse_jsonl_chunk(source, chunk, text_field, url_field, keep_fields)
                chunk = []
                yield SourceRejection(source, line_no, "record_too_large", "",
                                      f"line {line_no + 1}")
                continue
            if raw.strip():
                chunk.append((line_no, raw))
            if len(chunk) >= _JSONL_CHUNK_LINES:
                yield from _parse_jsonl_chunk(source, chunk, text_field, url_field, keep_fields)
                chunk = []
    yield from _parse_jsonl_chunk(source, chunk, text_field, url_field, keep_fields)


# ------------------------------------------------------------------------------------------
# Parquet and CSV


def read_parquet(path: Path, text_field: str, url_field: str, start: int = 0,
                 stop: int | None = None, keep_fields: bool = False):
    """Row group by row group, reading only the text and URL columns, and only the row
    groups that hold records of ``[start, stop)``."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    source = path.name
    try:
        parquet = pq.ParquetFile(path)
    except (pa.ArrowException, OSError) as exc:
        yield SourceRejection(source, 0, "broken_parquet", str(exc)[:PREVIEW_CHARS],
                              "file footer")
        return
    names = parquet.schema_arrow.names
    if text_field not in names:
        yield SourceRejection(source, 0, f"missing_column:{text_field}", str(names)[:200],
                              "schema")
        return
    columns = names if keep_fields else [text_field] + ([url_field] if url_field in names
                                                          else [])
    record_no = 0
    for group in range(parquet.num_row_groups):
        rows = parquet.metadata.row_group(group).num_rows
        if record_no + rows <= start:
            record_no += rows
            continue
        if stop is not None and record_no >= stop:
            return
        try:
            table = parquet.read_row_group(group, columns=columns)
        except (pa.ArrowException, OSError) as exc:
            yield SourceRejection(source, record_no, "broken_parquet_row_group",
                                  str(exc)[:PREVIEW_CHARS],
                                  f"row group {group}, rows {record_no}-{record_no + rows - 1}")
            record_no += rows
            continue
        texts = table.column(text_field).to_pylist()
        urls = (table.column(url_field).to_pylist() if url_field in table.column_names
                else [None] * len(texts))
        others = table.to_pylist() if keep_fields else [{}] * len(texts)
        for url, text, row in zip(urls, texts, others, strict=True):
            yield SourceRecord(source, record_no, str(url) if url is not None else None, text,
                               fields=other_fields(row, text_field))
            record_no += 1


def read_csv(path: Path, text_field: str, url_field: str, keep_fields: bool = False):
    """polars reads a well-formed file at once; a file it refuses (ragged rows, bad
    quoting, bad UTF-8) is read again row by row so each bad row gets its own rejection."""
    import polars as pl

    source = path.name
    if path.stat().st_size <= _CSV_POLARS_MAX_BYTES:
        try:
            frame = pl.read_csv(path, infer_schema=False, encoding="utf8",
                                raise_if_empty=False)
        except Exception:  # noqa: BLE001 - the row-by-row reader below explains the failure
            frame = None
        if frame is not None and text_field in frame.columns:
            texts = frame.get_column(text_field).to_list()
            urls = (frame.get_column(url_field).to_list() if url_field in frame.columns
                    else [None] * len(texts))
            if None not in texts:
                others = frame.to_dicts() if keep_fields else [{}] * len(texts)
                for record_no, (url, text, row) in enumerate(zip(urls, texts, others,
                                                                 strict=True)):
                    yield SourceRecord(source, record_no, url or None, text,
                                       fields=other_fields(row, text_field))
                return
    yield from _read_csv_rows(path, text_field, url_field)


def _read_csv_rows(path: Path, text_field: str, url_field: str):
    source = path.name
    csv.field_size_limit(sys.maxsize)
    with path.open("r", encoding="utf-8-sig", errors="strict", newline="") as fh:
        reader = csv.DictReader(fh)
        try:
            fieldnames = reader.fieldnames
        except UnicodeDecodeError as exc:
            yield SourceRejection(source, 0, "invalid_utf8", str(exc)[:PREVIEW_CHARS],
                                  "header")
            return
        if fieldnames is None or text_field not in fieldnames:
            yield SourceRejection(source, 0, f"missing_column:{text_field}",
                                  str(fieldnames)[:PREVIEW_CHARS], "header")
            return
        record_no = 0
        while True:
            try:
                row = next(reader)
            except StopIteration:
                return
            except UnicodeDecodeError as exc:
                yield SourceRejection(source, record_no, "invalid_utf8", str(exc)[:200],
                                      f"row {record_no + 1}, line {reader.line_num + 1}")
                return
            except csv.Error as exc:
                yield SourceRejection(source, record_no, "malformed_csv_row", str(exc)[:200],
                                      f"row {record_no + 1}, line {reader.line_num}")
                record_no += 1
                continue
            if row.get(text_field) is None or None in row:
                yield SourceRejection(source, record_no, "malformed_csv_row",
                                      str(row)[:PREVIEW_CHARS],
                                      f"row {record_no + 1}, line {reader.line_num}")
            else:
                yield SourceRecord(source, record_no, row.get(url_field) or None,
                                   row[text_field], fields=other_fields(row, text_field))
            record_no += 1
