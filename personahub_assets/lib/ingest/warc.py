"""Readers of web archives and pages: WARC and WET files, and plain HTML files.

WARC ``response`` and ``resource`` records of a text type, and the ``conversion`` records of
Common Crawl's WET files, become documents, told apart by their records rather than by the
file's name; every other record is a counted :class:`SourceSkip`. HTML is kept as HTML here;
cleaning extracts its main text.
"""

from __future__ import annotations

import gzip
from collections.abc import Iterator
from pathlib import Path
from typing import BinaryIO

from personahub_assets.lib.ingest.records import (
    PREVIEW_CHARS,
    SourceRecord,
    SourceRejection,
    SourceSkip,
    gzip_reason,
    preview,
)

#: Media types whose body is a document: HTML (text extracted later) and any other text.
_HTML_TYPES = ("text/html", "application/xhtml+xml")


def _warc_reason(exc: BaseException) -> str:
    message = str(exc).lower()
    if "non-chunked gzip" in message:
        return "broken_archive:non_chunked_gzip"
    if "unknown archive format" in message or "invalid warc record" in message:
        return "broken_archive:bad_record_header"
    if gzip_reason(exc):
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


def read_warc(path: Path, max_record_bytes: int):
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
                                  preview(body), where)
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


def read_html(path: Path, max_record_bytes: int):
    """A plain HTML file as one record, its HTML kept for cleaning to extract."""
    if path.stat().st_size > max_record_bytes:
        yield SourceRejection(path.name, 0, "record_too_large", "", "file")
        return
    raw = path.read_bytes()
    yield SourceRecord(path.name, 0, path.name, raw.decode("utf-8", "replace"), is_html=True)
