import json
from collections import Counter

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from personahub_assets.lib.ingest.cleaning import (
    CleaningConfig,
    clean_document,
    normalize_whitespace,
)
from personahub_assets.lib.ingest.sources import SourceRecord, SourceRejection, read_records

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
    (rejection,) = read_records(str(path))  # one file without the column: one rejection
    assert isinstance(rejection, SourceRejection)
    assert (rejection.reason, rejection.location) == ("missing_column:text", "schema")


def test_missing_source_is_a_clear_error(tmp_path):
    with pytest.raises(FileNotFoundError, match="source not found"):
        list(read_records(str(tmp_path / "nope.jsonl")))


def test_directory_source_reads_every_file(tmp_path):
    for name in ("a.jsonl", "b.jsonl"):
        (tmp_path / name).write_text(json.dumps({"text": GOOD}) + "\n")
    assert sum(isinstance(r, SourceRecord) for r in read_records(str(tmp_path))) == 2


FRENCH = ("Le jardin partagé du quartier ouvre ses portes samedi matin. Les bénévoles "
          "installeront de nouveaux bacs pour les tomates et les herbes aromatiques, et chacun "
          "pourra repartir avec des semis. Apportez vos gants et une bouteille d'eau.") * 2


@pytest.mark.parametrize(
    ("raw", "reason"),
    [
        (None, "text_not_a_string"),
        (12, "text_not_a_string"),
        ("   \n\t ", "empty"),
        ("short", "too_short"),
        ("x" * 300_000, "too_long"),
        ("1234 5678 9012 3456 " * 20, "low_alpha_ratio"),
        ("\x00\x01\x02binary\x00" * 40, "binary_content"),
        ("Buy now!\nBuy now!\nBuy now!\nBuy now!\n" + GOOD, "repeated_lines"),
        (FRENCH, "language:fr"),
    ],
)
def test_clean_document_rejection_reasons(raw, reason):
    assert clean_document(raw, CleaningConfig())[:2] == (None, reason)


def test_clean_document_keeps_normalizes_and_repairs():
    raw = "  Hello\u00a0\u00a0world.\r\n\r\n\r\n\r\n" + GOOD + " The cafÃ© opens early."
    text, reason, language = clean_document(raw, CleaningConfig())
    assert (reason, language) == (None, "en")
    assert text.startswith("Hello world.\n\nA long enough")
    assert text.endswith("The café opens early.")  # mojibake repaired by ftfy


def test_other_languages_are_kept_when_asked():
    text, reason, language = clean_document(FRENCH, CleaningConfig(languages=("en", "fr")))
    assert reason is None and language == "fr"


def test_html_main_text_is_extracted_and_boilerplate_rejected():
    page = ("<html><body><nav>Home | Shop | Contact</nav><article><h1>Tomato blight</h1>"
            f"<p>{GOOD}</p></article><footer>Copyright 2026</footer></body></html>")
    text, reason, _ = clean_document(page, CleaningConfig(), is_html=True)
    assert reason is None and "Home | Shop" not in text and "cold frame" in text
    boiler = "<html><body><nav>Home | Shop</nav><footer>Copyright 2026</footer></body></html>"
    assert clean_document(boiler, CleaningConfig(), is_html=True)[:2] == (None, "no_main_text")


def test_normalize_whitespace_removes_control_characters():
    assert normalize_whitespace("a\x00b\x07c") == "a b c"


def test_rejection_preview_is_bounded(tmp_path):
    path = tmp_path / "d.jsonl"
    path.write_bytes(b"{" + b"x" * 10_000 + b"\n")
    (rej,) = list(read_records(str(path)))
    assert isinstance(rej, SourceRejection) and len(rej.raw_preview) <= 200


def test_csv_reader(tmp_path):
    path = tmp_path / "d.csv"
    path.write_text('url,text\nu1,"' + GOOD + '"\nu2\n', encoding="utf-8")
    recs = list(read_records(str(path)))
    assert isinstance(recs[0], SourceRecord) and recs[0].url == "u1"
    assert isinstance(recs[1], SourceRejection) and recs[1].reason == "malformed_csv_row"


def test_warc_reader_keeps_html_and_counts_other_responses(tmp_path):
    from io import BytesIO

    from warcio.statusandheaders import StatusAndHeaders
    from warcio.warcwriter import WARCWriter

    path = tmp_path / "crawl.warc.gz"
    with path.open("wb") as fh:
        writer = WARCWriter(fh, gzip=True)
        for url, ctype, body in [
            ("https://a.example/page", "text/html; charset=utf-8",
             f"<html><body><p>{GOOD}</p></body></html>".encode()),
            ("https://a.example/logo.png", "image/png", b"\x89PNG...."),
        ]:
            headers = StatusAndHeaders("200 OK", [("Content-Type", ctype)], protocol="HTTP/1.0")
            writer.write_record(writer.create_warc_record(url, "response",
                                                          payload=BytesIO(body),
                                                          http_headers=headers))
    skipped = Counter()
    recs = list(read_records(str(path), skipped=skipped))
    assert [type(r).__name__ for r in recs] == ["SourceRecord"]
    assert recs[0].is_html and recs[0].url == "https://a.example/page"
    assert "cold frame" in recs[0].text
    assert skipped == {"unsupported_content_type:image/png": 1}


def test_hugging_face_loaders_on_local_data(tmp_path):
    """The hub loader code path (load_dataset by name, streamed) on a local data folder,
    and a dataset saved to disk."""
    from datasets import Dataset

    folder = tmp_path / "corpus"
    folder.mkdir()
    for i in range(4):  # four files of two rows: a slice crosses file boundaries
        pq.write_table(pa.table({"url": [f"u{i}a", f"u{i}b"], "text": [GOOD, GOOD + str(i)]}),
                       folder / f"part-{i}.parquet")
    every = list(read_records(f"hf:{folder}?split=train"))
    assert len(every) == 8 and [r.record_no for r in every] == list(range(8))
    slices = [list(read_records(f"hf:{folder}?split=train", start=start, stop=stop))
              for start, stop in ((0, 3), (3, 6), (6, None))]
    assert [len(s) for s in slices] == [3, 3, 2]
    # The slices are the dataset cut in order: each row once, with its own record number.
    assert [(r.record_no, r.url, r.text) for s in slices for r in s] == [
        (r.record_no, r.url, r.text) for r in every]
    assert list(read_records(f"hf:{folder}?split=train", start=8, stop=10)) == []

    saved = tmp_path / "saved"
    Dataset.from_dict({"content": [GOOD], "url": ["x"]}).save_to_disk(str(saved))
    (rec,) = read_records(str(saved), text_field="content")
    assert rec.text == GOOD and rec.url == "x"
    with pytest.raises(ValueError, match="bad Hugging Face source"):
        list(read_records("hf:name?revision=main"))


@pytest.mark.parametrize("suffix", [".jsonl", ".jsonl.gz", ".parquet", ".csv"])
def test_slices_of_a_file_read_every_record_once(tmp_path, suffix):
    """A file cut into batch slices (by its counted records) is read once in total."""
    import csv
    import gzip

    from personahub_assets.lib.ingest.batching import count_records, slice_file

    rows = [{"url": f"u{i}", "text": f"{GOOD} Line {i},\nwith a comma and a newline."}
            for i in range(7)]
    path = tmp_path / f"docs{suffix}"
    if suffix == ".parquet":
        pq.write_table(pa.Table.from_pylist(rows), path)
    elif suffix == ".csv":
        with path.open("w", newline="", encoding="utf-8") as fh:
            writer = csv.DictWriter(fh, ["url", "text"])
            writer.writeheader()
            writer.writerows(rows)
    else:
        data = "".join(json.dumps(r) + "\n" for r in rows).encode()
        path.write_bytes(gzip.compress(data) if suffix.endswith(".gz") else data)
    assert count_records(path) == 7
    specs = slice_file(str(path), "h", 7, max_records=3)
    assert [(s.parts[0].start, s.parts[0].stop, s.records) for s in specs] == [
        (0, 3, 3), (3, 6, 3), (6, 7, 1)]
    read = [r for s in specs for r in read_records(str(path), start=s.parts[0].start,
                                                   stop=s.parts[0].stop)]
    assert [(r.record_no, r.url, r.text) for r in read] == [
        (i, r["url"], r["text"]) for i, r in enumerate(rows)]


def test_a_hugging_face_dataset_registered_as_batches_is_ingested_slice_by_slice(tmp_path):
    from dagster import instance_for_test, materialize

    from personahub_assets.automation import register_source
    from personahub_assets.definitions import ASSETS
    from personahub_assets.resources.embeddings import EmbeddingsResource
    from personahub_assets.resources.llm import LLMResource
    from personahub_assets.resources.warehouse import WarehouseResource
    from personahub_assets_tests.batch_helpers import add_partitions

    folder = tmp_path / "corpus"
    folder.mkdir()
    for i in range(4):
        pq.write_table(pa.table({"url": [f"u{i}a", f"u{i}b"],
                                 "text": [f"{GOOD} {i}a", f"{GOOD} {i}b"]}),
                       folder / f"part-{i}.parquet")
    wh = WarehouseResource(path=str(tmp_path / "w.duckdb"))
    resources = {"warehouse": wh, "embeddings": EmbeddingsResource(),
                 "llm": LLMResource(cache_path=str(tmp_path / "c.duckdb")),
                 "judge_llm": LLMResource(cache_path=str(tmp_path / "c.duckdb"))}
    with instance_for_test() as instance:
        registered = register_source(wh, f"hf:{folder}?split=train", records=8, max_records=5)
        keys = add_partitions(instance, [b.key for b in registered])
        assert len(keys) == 2
        for key in keys:
            assert materialize(ASSETS, selection=["web_documents"], partition_key=key,
                               instance=instance, resources=resources).success
    assert wh.rows("SELECT reason FROM rejected_documents") == []
    rows = wh.rows("SELECT batch, record_no FROM documents ORDER BY record_no")
    assert [(r["batch"], r["record_no"]) for r in rows] == [
        (keys[0], n) for n in range(5)] + [(keys[1], n) for n in range(5, 8)]
