"""Real-world inputs: broken archives and streams beside good files, heavy pages, huge lines.

Every file handed to ingestion must be accounted for: its documents are kept or rejected,
and a file that breaks off yields one rejection with the place where reading stopped.
"""

import gzip
import io
import json
import tracemalloc

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from warcio.statusandheaders import StatusAndHeaders
from warcio.warcwriter import WARCWriter

from personahub_assets.lib.ingest.cleaning import CleaningConfig, clean_batch, clean_document
from personahub_assets.lib.ingest.sources import SourceRecord, SourceRejection, read_records

PARAGRAPH = ("The harbour committee met on Tuesday to discuss the new ferry timetable, which "
             "adds an early crossing for workers and a late one for the theatre crowd. ")


def _page(i: int, tag: str) -> bytes:
    return (f"<html><body><nav>Home | News</nav><article><h1>Ferry news {i}</h1>"
            f"<p>{PARAGRAPH * 3} Story number {i} from the {tag} desk.</p></article></body>"
            "</html>").encode()


def _warc(n: int, gzipped: bool = True, tag: str = "city") -> bytes:
    buf = io.BytesIO()
    writer = WARCWriter(buf, gzip=gzipped)
    for i in range(n):
        headers = StatusAndHeaders("200 OK", [("Content-Type", "text/html; charset=utf-8")],
                                   protocol="HTTP/1.1")
        writer.write_record(writer.create_warc_record(
            f"https://news.example/{tag}/{i}", "response", payload=io.BytesIO(_page(i, tag)),
            http_headers=headers))
    return buf.getvalue()


def _jsonl(n: int, start: int = 0) -> bytes:
    return b"".join(json.dumps({"url": f"u{i}", "text": f"{PARAGRAPH * 2} Item {i}."}).encode()
                    + b"\n" for i in range(start, start + n))


@pytest.fixture
def crawl(tmp_path):
    """A folder of good and broken files of every kind, with what each must produce."""
    plain = _warc(3, gzipped=False, tag="harbour")
    second_record = plain.index(b"WARC/1.0", 10)
    files = {
        "a_good.warc.gz": _warc(3),
        "b_truncated.warc.gz": _warc(3, tag="sports")[:-200],
        "c_non_chunked.warc.gz": gzip.compress(_warc(3, gzipped=False, tag="arts")),
        "d_bad_header.warc": plain[:second_record] + b"WARC/9.9" + plain[second_record + 8:],
        "e_not_a_warc.warc.gz": b"\x00\x01\x02\x03garbage\xff\xfe" * 20,
        "f_good.jsonl": _jsonl(4),
        "g_truncated.jsonl.gz": gzip.compress(_jsonl(400, start=100))[:1500],
        "h_corrupt.jsonl.gz": b"\x1f\x8b\x08\x00" + b"\xff" * 64,
        "i_broken.parquet": b"PAR1 no footer here",
        "k_tail_cut.warc": plain[:-300],
    }
    good_parquet = io.BytesIO()
    pq.write_table(pa.table({"text": [PARAGRAPH * 2 + f" Row {i}." for i in range(5)]}),
                   good_parquet, row_group_size=2)
    files["j_good.parquet"] = good_parquet.getvalue()
    for name, data in files.items():
        (tmp_path / name).write_bytes(data)
    return tmp_path


def _summary(items):
    return [(type(r).__name__, r.source, r.record_no, getattr(r, "reason", None),
             getattr(r, "location", None)) for r in items]


def test_one_broken_file_never_stops_the_others(crawl):
    items = list(read_records(str(crawl)))
    rejections = [r for r in items if isinstance(r, SourceRejection)]
    by_file = {}
    for r in items:
        by_file.setdefault(r.source, []).append(r)
    # every file is accounted for
    assert sorted(by_file) == sorted(p.name for p in crawl.iterdir())
    kept = {name: sum(isinstance(r, SourceRecord) for r in recs) for name, recs in by_file.items()}
    assert kept == {"a_good.warc.gz": 3, "b_truncated.warc.gz": 2, "c_non_chunked.warc.gz": 3,
                    "d_bad_header.warc": 1, "e_not_a_warc.warc.gz": 0, "f_good.jsonl": 4,
                    "g_truncated.jsonl.gz": kept["g_truncated.jsonl.gz"],
                    "h_corrupt.jsonl.gz": 0, "i_broken.parquet": 0, "j_good.parquet": 5,
                    "k_tail_cut.warc": 2}  # its third record is cut short
    assert 0 < kept["g_truncated.jsonl.gz"] < 400
    assert all("Story number" in r.text for r in by_file["c_non_chunked.warc.gz"])
    reasons = {(r.source, r.reason) for r in rejections}
    assert reasons == {
        ("b_truncated.warc.gz", "broken_archive:truncated"),
        ("d_bad_header.warc", "broken_archive:bad_record_header"),
        ("e_not_a_warc.warc.gz", "broken_archive:bad_record_header"),
        ("g_truncated.jsonl.gz", "broken_gzip:truncated"),
        ("h_corrupt.jsonl.gz", "broken_gzip:corrupt"),
        ("i_broken.parquet", "broken_parquet"),
        ("k_tail_cut.warc", "broken_archive:truncated"),
    }
    # each rejection says where reading stopped, and numbers on from the last record read
    where = {r.source: (r.record_no, r.location) for r in rejections}
    assert where["d_bad_header.warc"][0] == 1
    assert where["d_bad_header.warc"][1].startswith("record 1, byte ")
    assert where["b_truncated.warc.gz"][0] == 2
    assert where["k_tail_cut.warc"][0] == 2
    assert where["g_truncated.jsonl.gz"] == (kept["g_truncated.jsonl.gz"],
                                             f"line {kept['g_truncated.jsonl.gz'] + 1}")
    assert where["i_broken.parquet"] == (0, "file footer")


def test_batch_cleaning_accounts_for_every_record_of_a_broken_crawl(crawl):
    items = list(read_records(str(crawl)))
    kept_jsonl = sum(isinstance(r, SourceRecord) for r in items
                     if r.source == "g_truncated.jsonl.gz")
    batch = clean_batch(items, CleaningConfig(min_chars=100))
    assert batch.kept.num_rows + batch.rejected.num_rows == len(items)
    rejected = batch.rejected.to_pylist()
    # the read rejections reach the table with their location
    assert {r["reason"] for r in rejected if r["location"]} >= {
        "broken_archive:truncated", "broken_gzip:corrupt", "broken_parquet"}
    # the non-chunked archive was read in full: its three pages are kept
    kept_sources = batch.kept.column("source").to_pylist()
    assert kept_sources.count("c_non_chunked.warc.gz") == 3
    # the harbour pages are in two archives: kept once, the copy named as a duplicate
    duplicates = [r for r in rejected if r["reason"].startswith("exact_duplicate_of:")]
    assert [(r["source"], r["record_no"]) for r in duplicates] == [("k_tail_cut.warc", 0)]
    assert batch.kept.num_rows == 3 + 2 + 3 + 1 + 4 + kept_jsonl + 5 + 1


def test_parquet_row_group_reading_projects_columns(tmp_path):
    path = tmp_path / "wide.parquet"
    pq.write_table(pa.table({"text": ["a", "b", "c"], "url": ["x", None, "z"],
                             "blob": [b"\x00" * 10] * 3}), path, row_group_size=1)
    records = list(read_records(str(path)))
    assert [(r.record_no, r.url, r.text) for r in records] == [(0, "x", "a"), (1, None, "b"),
                                                              (2, "z", "c")]


def test_jsonl_lines_polars_cannot_vouch_for_get_exact_reasons(tmp_path):
    path = tmp_path / "mixed.jsonl"
    path.write_bytes(b'{"text": "fine", "url": 7}\n{"text": 12}\n\n{"text": ["a"]}\n'
                     b'{"text": null}\n{"text": "123 starts with digits"}\n{"other": 1}\n')
    items = list(read_records(str(path)))
    assert _summary(items) == [
        ("SourceRecord", "mixed.jsonl", 0, None, None),
        ("SourceRecord", "mixed.jsonl", 1, None, None),
        ("SourceRecord", "mixed.jsonl", 3, None, None),
        ("SourceRecord", "mixed.jsonl", 4, None, None),
        ("SourceRecord", "mixed.jsonl", 5, None, None),
        ("SourceRejection", "mixed.jsonl", 6, "missing_field:text", "line 7"),
    ]
    assert [r.text for r in items[:5]] == ["fine", 12, ["a"], None, "123 starts with digits"]
    assert items[0].url == "7"
    batch = clean_batch(items, CleaningConfig(min_chars=1, languages=()))
    reasons = sorted(batch.rejected.column("reason").to_pylist())
    assert reasons == ["missing_field:text"] + ["text_not_a_string"] * 3


def test_a_huge_line_is_skipped_in_bounded_memory(tmp_path):
    path = tmp_path / "huge.jsonl"
    with path.open("wb") as fh:
        fh.write(_jsonl(2))
        fh.write(b'{"text": "' + b"x" * 40_000_000 + b'"}\n')
        fh.write(_jsonl(2, start=2))
    tracemalloc.start()
    items = list(read_records(str(path), max_record_bytes=1_000_000))
    peak = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    assert _summary(items)[2] == ("SourceRejection", "huge.jsonl", 2, "record_too_large",
                                  "line 3")
    assert [r.record_no for r in items if isinstance(r, SourceRecord)] == [0, 1, 3, 4]
    assert peak < 20_000_000  # the 40 MB line was never held


def test_csv_falls_back_to_rows_for_ragged_lines(tmp_path):
    path = tmp_path / "d.csv"
    path.write_text(f'url,text\nu1,"{PARAGRAPH}"\nu2\nu3,"{PARAGRAPH}",extra\nu4,ok\n',
                    encoding="utf-8")
    items = list(read_records(str(path)))
    assert _summary(items) == [
        ("SourceRecord", "d.csv", 0, None, None),
        ("SourceRejection", "d.csv", 1, "malformed_csv_row", "row 2, line 3"),
        ("SourceRejection", "d.csv", 2, "malformed_csv_row", "row 3, line 4"),
        ("SourceRecord", "d.csv", 3, None, None),
    ]


def _heavy_page(article_chars: int, markup_bytes: int) -> str:
    """A page whose main text is ``article_chars`` long inside ``markup_bytes`` of HTML."""
    words = PARAGRAPH.split()
    article = "".join(
        f"<p>Update {k}: {' '.join(words[k % 7:] + words[:k % 7])} Reported by desk {k * 7}.</p>"
        for k in range(article_chars // (len(PARAGRAPH) + 40)))
    script = "<script>var state = " + json.dumps(["y" * 100] * (markup_bytes // 104)) + ";</script>"
    menu = "".join(f'<li><a href="/s/{k}">Section {k}</a></li>' for k in range(400))
    return (f"<html><head>{script}</head><body><nav><ul>{menu}</ul></nav><main><article>"
            f"<h1>Harbour</h1>{article}</article></main></body></html>")


def test_a_megabyte_news_page_is_kept_and_length_rules_apply_to_its_text():
    page = _heavy_page(6_000, 1_000_000)
    assert len(page) > 1_000_000
    text, reason, language = clean_document(page, CleaningConfig(), is_html=True)
    assert (reason, language) == (None, "en")
    assert 5_000 < len(text) < 7_000 and "var state" not in text
    # the raw guard is generous by default and configurable
    assert clean_document(page, CleaningConfig(max_raw_chars=500_000), is_html=True)[:2] == (
        None, "raw_too_large")
    # the length rule reads the extracted text, not the markup
    assert clean_document(page, CleaningConfig(max_chars=3_000), is_html=True)[:2] == (
        None, "too_long")


def test_batch_and_single_document_cleaning_agree():
    raws = [PARAGRAPH * 3, "short", None, "\x00\x01binary\x00" * 40, PARAGRAPH * 3,
            "Le conseil du port a discuté du nouvel horaire du traversier. " * 6,
            "台北港务委员会周二开会讨论新的渡轮时刻表，"
            "为上班族增加了早班船，为剧院观众增加了晚班船。" * 4]
    records = [SourceRecord("s", i, None, raw) for i, raw in enumerate(raws)]
    config = CleaningConfig(languages=("en", "zh"), min_chars=100)
    batch = clean_batch(records, config)
    decided = {r["record_no"]: r["reason"] for r in batch.rejected.to_pylist()}
    decided |= {no: None for no in batch.kept.column("record_no").to_pylist()}
    assert decided == {0: None, 1: "too_short", 2: "text_not_a_string", 3: "binary_content",
                       4: decided[4], 5: "language:fr", 6: None}
    assert decided[4].startswith("exact_duplicate_of:d")
    for i, raw in enumerate(raws):
        if i != 4:
            assert clean_document(raw, config)[1] == decided[i]
    # Chinese has no spaces between words: the word-length rule must not reject it
    assert batch.kept.column("language").to_pylist() == ["en", "zh"]


def test_slices_of_a_broken_file_account_for_each_record_once(tmp_path):
    """A file cut into batches: each slice reads its own lines, and the break of a truncated
    gzip stream is reported by the one slice it falls in."""
    path = tmp_path / "cut.jsonl.gz"
    path.write_bytes(gzip.compress(_jsonl(400))[:1500])
    whole = list(read_records(str(path)))
    good = sum(isinstance(r, SourceRecord) for r in whole)
    slices = [list(read_records(str(path), start=a, stop=b))
              for a, b in ((0, 10), (10, good + 5), (good + 5, None))]
    assert [r.record_no for part in slices for r in part] == [r.record_no for r in whole]
    assert [sum(isinstance(r, SourceRejection) for r in part) for part in slices] == [0, 1, 0]
    parquet = tmp_path / "groups.parquet"
    pq.write_table(pa.table({"text": [f"row {i}" for i in range(10)]}), parquet,
                   row_group_size=3)
    assert [r.text for r in read_records(str(parquet), start=4, stop=8)] == [
        "row 4", "row 5", "row 6", "row 7"]


def test_two_worker_processes_decide_exactly_as_one():
    records = [SourceRecord("s", i, None, f"{PARAGRAPH} Note {i % 3000}." if i % 7 else "tiny")
               for i in range(4200)]
    config = CleaningConfig(min_chars=100)
    one = clean_batch(records, config)
    two = clean_batch(records, config, workers=2)
    assert one.kept.equals(two.kept) and one.rejected.equals(two.rejected)
    assert one.kept.num_rows == len({i % 3000 for i in range(4200) if i % 7})
    assert one.kept.num_rows + one.rejected.num_rows == 4200


@pytest.mark.slow
def test_web_documents_accounts_for_a_broken_crawl_in_the_warehouse(crawl, tmp_path_factory):
    """The asset on a folder of good and broken files: every batch passes its accounting
    check, and the breaks are rows of rejected_documents with their location."""
    from dagster import instance_for_test, materialize

    from personahub_assets.definitions import ASSETS
    from personahub_assets.resources.embeddings import EmbeddingsResource
    from personahub_assets.resources.llm import LLMResource
    from personahub_assets.resources.warehouse import WarehouseResource
    from personahub_assets_tests.batch_helpers import register

    names = {p.name for p in crawl.iterdir()}
    state = tmp_path_factory.mktemp("state")  # beside the crawl, not in it
    warehouse = WarehouseResource(path=str(state / "w.duckdb"))
    resources = {"warehouse": warehouse, "embeddings": EmbeddingsResource(),
                 "llm": LLMResource(cache_path=str(state / "c.duckdb")),
                 "judge_llm": LLMResource(cache_path=str(state / "c.duckdb"))}
    with instance_for_test() as instance:
        keys = register(warehouse, instance, crawl, max_records=1000)
        for key in keys:
            result = materialize(ASSETS, selection=["web_documents"], partition_key=key,
                                 instance=instance, resources=resources,
                                 run_config={"ops": {"web_documents": {"config": {
                                     "min_chars": 100}}}})
            assert result.success
            assert all(c.passed for c in result.get_asset_check_evaluations())
    breaks = warehouse.rows("SELECT source, reason, location FROM rejected_documents "
                            "WHERE location IS NOT NULL ORDER BY source")
    assert [(r["source"], r["reason"]) for r in breaks] == [
        ("b_truncated.warc.gz", "broken_archive:truncated"),
        ("d_bad_header.warc", "broken_archive:bad_record_header"),
        ("e_not_a_warc.warc.gz", "broken_archive:bad_record_header"),
        ("g_truncated.jsonl.gz", "broken_gzip:truncated"),
        ("h_corrupt.jsonl.gz", "broken_gzip:corrupt"),
        ("i_broken.parquet", "broken_parquet"),
        ("k_tail_cut.warc", "broken_archive:truncated"),
    ]
    sources = {r["source"] for r in warehouse.rows(
        "SELECT source FROM documents UNION SELECT source FROM rejected_documents")}
    assert sources == names
