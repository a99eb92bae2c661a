"""Readers that turn sources into records, and malformed input into rejections.

Sources: JSONL (optionally gzipped), Parquet and CSV files, folders and globs of them; WARC
files (text ``response`` and ``resource`` records, and the ``conversion`` records of Common
Crawl's WET files, told apart by their records rather than by the file's name); plain HTML
files; Hugging Face datasets by name (``hf:NAME`` with
optional ``?config=...&split=...``, streamed) or saved to disk (a folder written by
``Dataset.save_to_disk``). HTML is kept as HTML here; cleaning extracts its main text.

One bad file or record never stops the others: a broken archive, gzip stream, Parquet file
or line becomes a :class:`SourceRejection` with its reason, its source file and where in the
file it was found, and reading goes on with the rest of the file where the format allows it
(a line, a WARC record, a Parquet row group) and with the next file. Memory stays bounded:
files are streamed in chunks, and a record larger than ``max_record_bytes`` is skipped
without being held.

JSONL chunks are parsed by polars; a chunk polars refuses, and any value it may have turned
into a string (a number or a list in the text field), is parsed again line by line with the
``json`` module, so every bad line still gets its own reason and line number.
"""

from __future__ import annotations

import csv
import glob
import gzip
import io
import json
import sys
import zlib
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO
from urllib.parse import parse_qs

PREVIEW_CHARS = 200
#: Default bound on one raw record (a line, a WARC body, an HTML file): 32 MiB.
MAX_RECORD_BYTES = 32 * 1024 * 1024
_JSONL_CHUNK_LINES = 8192
_CSV_POLARS_MAX_BYTES = 256 * 1024 * 1024


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
    #: The record's other fields (for persona sets: occupation, domains...), when it has any
    #: and the reader was asked for them (``keep_fields``).
    fields: dict | None = None


@dataclass(frozen=True)
class SourceSkip:
    """A record that holds no document (a WARC request, metadata or image record), with why.

    Readers yield these among their records; :func:`read_file` counts them into the caller's
    ``skipped`` counter instead of passing them on, so every record of a file is either a
    record, a rejection or a counted skip.
    """

    source: str
    record_no: int
    reason: str


@dataclass(frozen=True)
class SourceRejection:
    """A record, or the unreadable rest of a file, that could not be read, with the reason.

    ``location`` says where in the file: ``"line 12"``, ``"record 3, byte 5120"``,
    ``"row group 2"``, ``"byte 81920"``. For a rejection that covers the rest of a file,
    ``record_no`` is the number the next record would have had.
    """

    source: str
    record_no: int
    reason: str
    raw_preview: str
    location: str | None = None


_FILE_SUFFIXES = (".jsonl", ".jsonl.gz", ".json", ".ndjson", ".parquet", ".csv", ".warc",
                  ".warc.gz", ".wet", ".wet.gz", ".wat", ".wat.gz", ".html", ".htm")
#: Media types whose body is a document: HTML (text extracted later) and any other text.
_HTML_TYPES = ("text/html", "application/xhtml+xml")
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
        ".jsonl": lambda: _read_jsonl(path, text_field, url_field, max_record_bytes, start,
                                      stop, keep_fields),
        ".parquet": lambda: _read_parquet(path, text_field, url_field, start, stop,
                                          keep_fields),
        ".csv": lambda: _read_csv(path, text_field, url_field, keep_fields),
        ".warc": lambda: _read_warc(path, max_record_bytes),
        ".html": lambda: _read_html(path, max_record_bytes),
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


def _preview(raw: bytes) -> str:
    return raw[:PREVIEW_CHARS].decode("utf-8", "replace")


# ------------------------------------------------------------------------------------------
# JSONL


def _gzip_reason(exc: BaseException) -> str | None:
    """``broken_gzip:<kind>`` for the errors a damaged gzip stream raises, else None."""
    if isinstance(exc, EOFError):
        return "broken_gzip:truncated"
    if isinstance(exc, gzip.BadGzipFile | zlib.error):
        return "broken_gzip:corrupt"
    return None


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
        return SourceRejection(source, line_no, "invalid_utf8", _preview(raw), where)
    except json.JSONDecodeError:
        return SourceRejection(source, line_no, "malformed_json", _preview(raw), where)
    if not isinstance(obj, dict):
        return SourceRejection(source, line_no, "not_an_object", _preview(raw), where)
    if text_field not in obj:
        return SourceRejection(source, line_no, f"missing_field:{text_field}", _preview(raw),
                               where)
    url = obj.get(url_field)
    return SourceRecord(source, line_no, str(url) if url is not None else None, obj[text_field],
                        fields=_others(obj, text_field))


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
                                    fields=_others(rows[i], text_field)))
    return out


def _read_jsonl(path: Path, text_field: str, url_field: str, max_record_bytes: int,
                start: int = 0, stop: int | None = None, keep_fields: bool = False):
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
                reason = _gzip_reason(exc) or f"unreadable_file:{type(exc).__name__}"
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


def _read_parquet(path: Path, text_field: str, url_field: str, start: int = 0,
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
                               fields=_others(row, text_field))
            record_no += 1


def _read_csv(path: Path, text_field: str, url_field: str, keep_fields: bool = False):
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
                                       fields=_others(row, text_field))
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
                                   row[text_field], fields=_others(row, text_field))
            record_no += 1


# ------------------------------------------------------------------------------------------
# WARC and HTML


def _warc_reason(exc: BaseException) -> str:
    message = str(exc).lower()
    if "non-chunked gzip" in message:
        return "broken_archive:non_chunked_gzip"
    if "unknown archive format" in message or "invalid warc record" in message:
        return "broken_archive:bad_record_header"
    if _gzip_reason(exc):
        return "broken_archive:bad_gzip"
    return f"broken_archive:{type(exc).__name__}"


def _warc_document_kind(record) -> str:
    """``html`` or ``text`` for a record that holds a document, else why it holds none.

    ``response`` records are typed by their HTTP ``Content-Type`` (the record's own where
    there is no HTTP header block), ``resource`` records by the record's ``Content-Type``;
    text types are ``text/*`` and ``application/xhtml+xml``. A ``conversion`` record (a WET
    file's extracted text) is text whatever it declares. Every other record type (request,
    metadata, revisit, warcinfo...) is ``skipped_record:<type>``, and a record of another
    media type ``unsupported_content_type:<type>``.
    """
    rec_type = (record.rec_type or "unknown").lower()
    if rec_type == "conversion":
        return "text"
    if rec_type not in ("response", "resource"):
        return f"skipped_record:{rec_type}"
    headers = record.http_headers if rec_type == "response" and record.http_headers else None
    ctype = (headers or record.rec_headers).get_header("Content-Type") or ""
    media = ctype.split(";")[0].strip().lower()
    if media in _HTML_TYPES:
        return "html"
    if media.startswith("text/"):
        return "text"
    return f"unsupported_content_type:{media or 'none'}"


def _read_warc(path: Path, max_record_bytes: int):
    """Documents of a WARC or WET file: text ``response``, ``resource`` and ``conversion``
    records (HTML is kept as HTML; a conversion record's text is used as it stands), and a
    counted :class:`SourceSkip` for every other record.

    A WARC whose whole file is one gzip stream ("non-chunked", which warcio refuses) is read
    through a decompressing stream instead. A file that breaks off (a bad record header, a
    damaged or truncated gzip member, missing bytes at the end) yields the records before
    the break and one rejection with the byte offset where reading stopped.
    """
    size = path.stat().st_size
    with path.open("rb") as fh:
        items = _iterate_warc(path.name, fh, size, max_record_bytes, None)
        head = []  # warcio tells a non-chunked file by its second record: hold the first
        for item in items:
            head.append(item)
            if (isinstance(item, SourceRejection)
                    and item.reason == "broken_archive:non_chunked_gzip"):
                break
            if item.record_no >= 1:
                yield from head
                yield from items
                return
    if head and getattr(head[-1], "reason", None) == "broken_archive:non_chunked_gzip":
        with gzip.open(path, "rb") as stream:
            yield from _iterate_warc(path.name, stream, None, max_record_bytes,
                                     "decompressed byte")
        return
    yield from head


def _iterate_warc(source: str, fh: BinaryIO, size: int | None, max_record_bytes: int,
                  unit: str | None) -> Iterator[SourceRecord | SourceRejection]:
    from warcio.archiveiterator import ArchiveIterator

    unit = unit or "byte"
    iterator = ArchiveIterator(fh)
    record_no = -1
    records = iter(iterator)
    while True:
        try:
            record = next(records)
        except StopIteration:
            break
        except Exception as exc:  # noqa: BLE001 - warcio raises many kinds for broken input
            reason = _warc_reason(exc)
            if size is not None and fh.tell() >= size and reason.endswith("Error"):
                reason = "broken_archive:truncated"  # it failed on the file's last bytes
            start = getattr(iterator, "offset", 0)  # where the unreadable record begins
            yield SourceRejection(source, record_no + 1, reason,
                                  str(exc).strip()[:PREVIEW_CHARS],
                                  f"record {record_no + 1}, {unit} {start}")
            return
        record_no += 1
        kind = _warc_document_kind(record)
        is_document = kind in ("html", "text")
        url = record.rec_headers.get_header("WARC-Target-URI")
        # read the body before asking warcio for offsets: asking reads the record to its end
        try:
            body = (record.content_stream().read(max_record_bytes + 1) if is_document
                    else _drain(record.raw_stream))
        except Exception as exc:  # noqa: BLE001 - a damaged body (bad chunking, bad encoding)
            yield SourceRejection(source, record_no, "broken_record", str(exc)[:200],
                                  f"record {record_no}")
            continue
        cut_short = getattr(record.raw_stream, "limit", 0) > 0 and len(body) <= max_record_bytes
        where = f"record {record_no}, {unit} {iterator.get_record_offset()}"
        if cut_short:  # the file ended inside this record (a skipped one too)
            yield SourceRejection(source, record_no, "broken_archive:truncated",
                                  _preview(body), where)
            continue
        if not is_document:
            yield SourceSkip(source, record_no, kind)
            continue
        if len(body) > max_record_bytes:
            yield SourceRejection(source, record_no, "record_too_large", "", where)
            continue
        yield SourceRecord(source, record_no, url, body.decode("utf-8", "replace"),
                           is_html=kind == "html")
    if size is not None and record_no >= 0:
        try:
            end = iterator.get_record_offset() + iterator.get_record_length()
        except Exception:  # noqa: BLE001 - no complete record to measure from
            return
        if end < size and not _only_record_separator(fh, end, size):
            yield SourceRejection(source, record_no + 1, "broken_archive:truncated",
                                  f"{size - end} bytes after the last complete record",
                                  f"{unit} {end}")
    elif size is not None and size > 0:
        yield SourceRejection(source, 0, "broken_archive:no_records", "", f"{unit} 0")


def _drain(stream: BinaryIO) -> bytes:
    """Read a skipped record to its end in bounded blocks; returns its first bytes."""
    head = stream.read(1 << 16)
    while stream.read(1 << 20):
        pass
    return head


def _only_record_separator(fh: BinaryIO, end: int, size: int) -> bool:
    """True when the bytes after the last record are only the blank lines that close it
    (warcio leaves them out of an uncompressed file's last record length)."""
    if size - end > 8:
        return False
    fh.seek(end)
    return not fh.read(size - end).strip(b"\r\n")


def _read_html(path: Path, max_record_bytes: int):
    if path.stat().st_size > max_record_bytes:
        yield SourceRejection(path.name, 0, "record_too_large", "", "file")
        return
    raw = path.read_bytes()
    yield SourceRecord(path.name, 0, path.name, raw.decode("utf-8", "replace"), is_html=True)


def source_name(spec: str) -> str:
    """The ``source`` that the records of one file or dataset carry: a file's name, or
    ``hf:NAME[/CONFIG]/SPLIT`` for a Hugging Face dataset."""
    if spec.startswith("hf:"):
        name, config, split = parse_hf_spec(spec)
        return f"hf:{name}" + (f"/{config}" if config else "") + f"/{split}"
    return Path(spec).name


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
    source = source_name(spec)
    for record_no, row in enumerate(dataset, start=start):
        if text_field not in row:
            yield SourceRejection(source, record_no, f"missing_field:{text_field}",
                                  str(row)[:PREVIEW_CHARS], f"row {record_no}")
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
