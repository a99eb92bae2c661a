"""What every reader yields (records, rejections, counted skips) and the helpers they share."""

from __future__ import annotations

import gzip
import zlib
from dataclasses import dataclass

PREVIEW_CHARS = 200
#: Default bound on one raw record (a line, a WARC body, an HTML file): 32 MiB.
MAX_RECORD_BYTES = 32 * 1024 * 1024


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

    Readers yield these among their records; ``sources.read_file`` counts them into the
    caller's ``skipped`` counter instead of passing them on, so every record of a file is
    either a record, a rejection or a counted skip.
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


def preview(raw: bytes) -> str:
    """The first :data:`PREVIEW_CHARS` bytes of a raw record, as text."""
    return raw[:PREVIEW_CHARS].decode("utf-8", "replace")


def gzip_reason(exc: BaseException) -> str | None:
    """``broken_gzip:<kind>`` for the errors a damaged gzip stream raises, else None."""
    if isinstance(exc, EOFError):
        return "broken_gzip:truncated"
    if isinstance(exc, gzip.BadGzipFile | zlib.error):
        return "broken_gzip:corrupt"
    return None


def other_fields(row: dict, text_field: str) -> dict | None:
    """The fields of a record besides its text, JSON-safe, or None when there are none."""
    others = {k: v for k, v in row.items() if k != text_field
              and isinstance(v, (str, int, float, bool))}
    return others or None
