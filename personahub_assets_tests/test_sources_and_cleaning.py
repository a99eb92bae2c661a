import json

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from personahub_assets.lib.cleaning import CleaningConfig, clean_document, normalize_whitespace
from personahub_assets.lib.sources import SourceRecord, SourceRejection, read_records

GOOD = "A long enough document about growing tomatoes in a cold frame. " * 5


def test_jsonl_reader_turns_bad_lines_into_rejections(tmp_path):
    path = tmp_path / "docs.jsonl"
    path.write_bytes(
        json.dumps({"url": "u1", "text": GOOD}).encode() + b"\n"
        + b'{"url": "u2", "text": "unterminated\n'
        + b"\xff\xfe not utf-8\n"
        + b"[1, 2, 3]\n"
        + json.dumps({"url": "u5", "body": GOOD}).encode() + b"\n"
        + b"\n"
        + json.dumps({"text": GOOD}).encode() + b"\n"
    )
    out = list(read_records(str(path)))
    kinds = [(type(r).__name__, getattr(r, "reason", None)) for r in out]
    assert kinds == [
        ("SourceRecord", None),
        ("SourceRejection", "malformed_json"),
        ("SourceRejection", "invalid_utf8"),
        ("SourceRejection", "not_an_object"),
        ("SourceRejection", "missing_field:text"),
        ("SourceRecord", None),
    ]
    assert out[0].url == "u1" and out[-1].url is None
    assert out[-1].record_no == 6  # blank line 5 is skipped but still counted in numbering


def test_parquet_reader_and_missing_column(tmp_path):
    path = tmp_path / "docs.parquet"
    pq.write_table(pa.table({"url": ["a", "b"], "content": [GOOD, "x"]}), path)
    recs = list(read_records(str(path), text_field="content"))
    assert [r.text for r in recs] == [GOOD, "x"]
    assert all(isinstance(r, SourceRecord) for r in recs)
    with pytest.raises(ValueError, match="no column 'text'"):
        list(read_records(str(path)))


def test_missing_source_is_a_clear_error(tmp_path):
    with pytest.raises(FileNotFoundError, match="source not found"):
        list(read_records(str(tmp_path / "nope.jsonl")))


def test_directory_source_reads_every_file(tmp_path):
    for name in ("a.jsonl", "b.jsonl"):
        (tmp_path / name).write_text(json.dumps({"text": GOOD}) + "\n")
    assert sum(isinstance(r, SourceRecord) for r in read_records(str(tmp_path))) == 2


@pytest.mark.parametrize(
    ("raw", "reason"),
    [
        (None, "text_not_a_string"),
        (12, "text_not_a_string"),
        ("   \n\t ", "empty"),
        ("short", "too_short"),
        ("x" * 300_000, "too_long"),
        ("1234 5678 9012 3456 " * 20, "low_alpha_ratio"),
    ],
)
def test_clean_document_rejection_reasons(raw, reason):
    assert clean_document(raw, CleaningConfig()) == (None, reason)


def test_clean_document_keeps_and_normalizes():
    raw = "  Hello\u00a0\u00a0world.\r\n\r\n\r\n\r\n" + GOOD
    text, reason = clean_document(raw, CleaningConfig())
    assert reason is None
    assert text.startswith("Hello world.\n\nA long enough")


def test_normalize_whitespace_removes_control_characters():
    assert normalize_whitespace("a\x00b\x07c") == "a b c"


def test_rejection_preview_is_bounded(tmp_path):
    path = tmp_path / "d.jsonl"
    path.write_bytes(b"{" + b"x" * 10_000 + b"\n")
    (rej,) = list(read_records(str(path)))
    assert isinstance(rej, SourceRejection) and len(rej.raw_preview) <= 200
