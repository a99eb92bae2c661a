"""WARC records of every type, WET files and per-file accounting.

Text ``response``, ``resource`` and ``conversion`` records become documents; every other
record is counted per file and reason; every file a batch reads gets a ``file_accounting``
row whose counts add up, and a file that gave no document says why. Tested on archives we
generate and on public ones we did not write (warcio's test archives and Common Crawl's
WARC, WET and WAT of one page).
"""

import gzip
import io
import shutil
from collections import Counter
from pathlib import Path

import pytest
from warcio.statusandheaders import StatusAndHeaders
from warcio.warcwriter import WARCWriter

from personahub_assets.lib.ingest.file_accounting import FileTally, accounting_problems, file_rows
from personahub_assets.lib.ingest.sources import SourceRecord, SourceRejection, read_records

PUBLIC = Path(__file__).parent / "data" / "warc"
TEXT = ("The harbour committee met on Tuesday to discuss the new ferry timetable, which adds "
        "an early crossing for workers and a late one for the theatre crowd. ") * 3
PAGE = f"<html><body><article><h1>Ferry news</h1><p>{TEXT}</p></article></body></html>"


def _page(title: str) -> bytes:
    return PAGE.replace("Ferry news", title).replace("Tuesday", title).encode()


def _record(writer, kind, url, body: bytes, ctype=None, http_ctype=None):
    http = (StatusAndHeaders("200 OK", [("Content-Type", http_ctype)], protocol="HTTP/1.1")
            if http_ctype else None)
    writer.write_record(writer.create_warc_record(
        url, kind, payload=io.BytesIO(body), http_headers=http, warc_content_type=ctype or ""))


def _every_kind(path: Path, gzipped: bool = True) -> None:
    """One record of each type a crawler writes, in a known order."""
    with path.open("wb") as fh:
        writer = WARCWriter(fh, gzip=gzipped)
        writer.write_record(writer.create_warcinfo_record("crawl.warc", {"software": "test"}))
        _record(writer, "request", "https://a.example/page", b"GET /page HTTP/1.1\r\n\r\n",
                ctype="application/http; msgtype=request")
        _record(writer, "response", "https://a.example/page", PAGE.encode(),
                http_ctype="text/html; charset=utf-8")
        _record(writer, "response", "https://a.example/notes.txt", TEXT.encode(),
                http_ctype="text/plain")
        _record(writer, "response", "https://a.example/logo.png", b"\x89PNG....",
                http_ctype="image/png")
        _record(writer, "resource", "https://b.example/saved", _page("Saved"), ctype="text/html")
        _record(writer, "resource", "https://b.example/page.xhtml", _page("Strict"),
                ctype="application/xhtml+xml")
        _record(writer, "resource", "https://b.example/photo.jpg", b"\xff\xd8\xff",
                ctype="image/jpeg")
        _record(writer, "conversion", "https://c.example/text", TEXT.encode(),
                ctype="text/plain")
        _record(writer, "metadata", "https://a.example/page", b"outlink: https://x.example/",
                ctype="application/warc-fields")
        writer.write_record(writer.create_revisit_record(
            "https://a.example/page", digest="sha1:AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA",
            refers_to_uri="https://a.example/page", refers_to_date="2024-01-01T00:00:00Z"))


def test_every_record_type_is_a_document_or_a_counted_skip(tmp_path):
    path = tmp_path / "crawl.warc.gz"
    _every_kind(path)
    skipped = Counter()
    items = list(read_records(str(path), skipped=skipped))
    assert all(isinstance(r, SourceRecord) for r in items)
    assert [(r.record_no, r.url, r.is_html) for r in items] == [
        (2, "https://a.example/page", True),
        (3, "https://a.example/notes.txt", False),
        (5, "https://b.example/saved", True),
        (6, "https://b.example/page.xhtml", True),
        (8, "https://c.example/text", False),
    ]
    assert skipped == {"skipped_record:warcinfo": 1, "skipped_record:request": 1,
                       "unsupported_content_type:image/png": 1,
                       "unsupported_content_type:image/jpeg": 1,
                       "skipped_record:metadata": 1, "skipped_record:revisit": 1}
    # 11 records: 5 documents and 6 skips, nothing lost
    assert len(items) + sum(skipped.values()) == 11
    # a conversion record's text is used as it stands: no HTML extraction
    assert items[4].text == TEXT


def test_a_wet_file_is_known_by_its_records_not_its_name(tmp_path):
    """Conversion records read the same from a plain ``.warc`` and a ``.warc.wet.gz``."""
    texts = [f"{TEXT} Page {i}." for i in range(3)]
    plain = io.BytesIO()
    writer = WARCWriter(plain, gzip=False)
    writer.write_record(writer.create_warcinfo_record("x.warc.wet.gz", {"isPartOf": "test"}))
    for i, text in enumerate(texts):
        _record(writer, "conversion", f"https://w.example/{i}", text.encode(),
                ctype="text/plain")
    (tmp_path / "named_plainly.warc").write_bytes(plain.getvalue())
    (tmp_path / "CC-MAIN-0001.warc.wet.gz").write_bytes(gzip.compress(plain.getvalue()))
    for name in ("named_plainly.warc", "CC-MAIN-0001.warc.wet.gz"):
        skipped = Counter()
        items = list(read_records(str(tmp_path / name), skipped=skipped))
        assert [(r.url, r.text, r.is_html) for r in items] == [
            (f"https://w.example/{i}", t, False) for i, t in enumerate(texts)], name
        assert skipped == {"skipped_record:warcinfo": 1}


def test_common_crawl_wet_warc_and_wat_of_one_page():
    """Common Crawl's own WARC, WET and WAT of one page: the page is a document from the
    WARC's response and from the WET's conversion record; the WAT holds none, and says so."""
    counts = {}
    docs = {}
    for name in ("whirlwind.warc.gz", "whirlwind.warc.wet.gz", "whirlwind.warc.wat.gz"):
        skipped = Counter()
        items = list(read_records(str(PUBLIC / name), skipped=skipped))
        assert not [r for r in items if isinstance(r, SourceRejection)], name
        docs[name] = items
        counts[name] = dict(skipped)
    url = "https://an.wikipedia.org/wiki/Escopete"
    assert [(r.url, r.is_html) for r in docs["whirlwind.warc.gz"]] == [(url, True)]
    assert [(r.url, r.is_html) for r in docs["whirlwind.warc.wet.gz"]] == [(url, False)]
    assert docs["whirlwind.warc.wet.gz"][0].text.startswith("Escopete - Biquipedia")
    assert docs["whirlwind.warc.wat.gz"] == []
    assert counts["whirlwind.warc.gz"] == {"skipped_record:warcinfo": 1,
                                           "skipped_record:request": 1,
                                           "skipped_record:metadata": 1}
    assert counts["whirlwind.warc.wet.gz"] == {"skipped_record:warcinfo": 1}
    assert set(counts["whirlwind.warc.wat.gz"]) == {"skipped_record:metadata",
                                                    "skipped_record:warcinfo"}


def test_file_rows_add_up_and_say_why_a_file_gave_nothing(tmp_path):
    (tmp_path / "empty.warc").write_bytes(b"")
    tallies = [FileTally("a.warc", "a.warc", items=3,
                         skipped=Counter({"skipped_record:request": 2})),
               FileTally("b.warc", "b.warc", items=0,
                         skipped=Counter({"unsupported_content_type:image/png": 1})),
               FileTally("empty.warc", str(tmp_path / "empty.warc")),
               FileTally("c.jsonl", "c.jsonl", items=2)]
    kept = [{"source": "a.warc"}, {"source": "a.warc"}]
    rejected = [{"source": "a.warc", "reason": "too_short"},
                {"source": "c.jsonl", "reason": "exact_duplicate_of:b1/d1"},
                {"source": "c.jsonl", "reason": "exact_duplicate_of:b1/d2"}]
    rows = {r["source"]: r for r in file_rows("b", tallies, kept, rejected)}
    assert [(r["records"], r["documents"], r["rejected"], r["skipped"], r["reason"])
            for r in rows.values()] == [
        (5, 2, 1, 2, None),
        (1, 0, 0, 1, "no_documents: unsupported_content_type:image/png=1"),
        (0, 0, 0, 0, "empty_file"),
        (2, 0, 2, 0, "no_documents: exact_duplicate=2"),
    ]
    stored = {"files": list(rows.values()), "documents": {"a.warc": 2},
              "rejected": {"a.warc": 1, "c.jsonl": 2}}
    assert accounting_problems(rows, stored) == []
    # independent evidence: a stored row the accounting does not know of, a missing file,
    # a count that does not match the stored rows
    assert accounting_problems([*rows, "d.warc"], {**stored, "documents": {
        "a.warc": 1, "x.warc": 1}}) == [
        "files without an accounting row: ['d.warc']",
        "stored rows from files without an accounting row: ['x.warc']",
        "a.warc: 2 documents accounted, 1 stored",
    ]


@pytest.fixture(scope="module")
def public_crawl(tmp_path_factory):
    """Every public test archive in one incoming folder, and a generated one of every kind."""
    folder = tmp_path_factory.mktemp("incoming")
    for path in PUBLIC.iterdir():
        shutil.copy(path, folder / path.name)
    _every_kind(folder / "every_kind.warc.gz")
    with (folder / "only_images.warc").open("wb") as fh:
        writer = WARCWriter(fh, gzip=False)
        _record(writer, "resource", "https://i.example/a.png", b"\x89PNG", ctype="image/png")
    return folder


@pytest.mark.slow
def test_every_public_file_is_accounted_for_in_the_warehouse(public_crawl, tmp_path_factory):
    """The asset on warcio's and Common Crawl's archives: every file has a file_accounting
    row whose counts add up to what the warehouse holds, and every batch passes its check."""
    from dagster import instance_for_test, materialize

    from personahub_assets.definitions import ASSETS
    from personahub_assets.resources.embeddings import EmbeddingsResource
    from personahub_assets.resources.llm import LLMResource
    from personahub_assets.resources.warehouse import WarehouseResource
    from personahub_assets_tests.batch_helpers import register

    state = tmp_path_factory.mktemp("state")
    warehouse = WarehouseResource(path=str(state / "w.duckdb"))
    resources = {"warehouse": warehouse, "embeddings": EmbeddingsResource(),
                 "llm": LLMResource(cache_path=str(state / "c.duckdb")),
                 "judge_llm": LLMResource(cache_path=str(state / "c.duckdb"))}
    metadata = {}
    with instance_for_test() as instance:
        keys = register(warehouse, instance, public_crawl, max_records=1000)
        for key in keys:
            result = materialize(ASSETS, selection=["web_documents"], partition_key=key,
                                 instance=instance, resources=resources,
                                 run_config={"ops": {"web_documents": {"config": {
                                     "min_chars": 50, "languages": []}}}})
            assert result.success
            [check] = result.get_asset_check_evaluations()
            assert check.passed, check.metadata
            [mat] = result.asset_materializations_for_node("web_documents")
            metadata[key] = mat.metadata
    files = {r["source"]: r for r in warehouse.rows("SELECT * FROM file_accounting")}
    assert set(files) == {p.name for p in public_crawl.iterdir()}
    for source, f in files.items():
        assert f["records"] == f["documents"] + f["rejected"] + f["skipped"], source
        assert f["documents"] == warehouse.scalar(
            "SELECT count(*) FROM documents WHERE source = ?", [source]), source
        assert f["rejected"] == warehouse.scalar(
            "SELECT count(*) FROM rejected_documents WHERE source = ?", [source]), source
        assert (f["reason"] is None) == (f["documents"] > 0), source
    # the pages stored as resource records are documents now
    resource_urls = {r["url"] for r in warehouse.rows(
        "SELECT url FROM documents WHERE source IN ('example-resource.warc.gz', "
        "'every_kind.warc.gz')")}
    assert {"https://b.example/saved", "https://b.example/page.xhtml"} <= resource_urls
    # warcio's resource archive holds the page its other archives hold as a response: it is
    # read (a duplicate of the earlier batch's copy), not skipped
    resource = files["example-resource.warc.gz"]
    assert (resource["documents"], resource["rejected"], resource["skipped"]) == (0, 1, 2)
    assert resource["reason"] == "no_documents: skipped_record:warcinfo=2, exact_duplicate=1"
    # a file with nothing but an image says so
    assert files["only_images.warc"]["reason"] == (
        "no_documents: unsupported_content_type:image/png=1")
    assert files["only_images.warc"]["records"] == 1
    # Common Crawl's WAT holds metadata only; its WET gives the page's text
    assert files["whirlwind.warc.wat.gz"]["documents"] == 0
    assert files["whirlwind.warc.wat.gz"]["reason"].startswith("no_documents: skipped_record:")
    assert files["whirlwind.warc.wet.gz"]["documents"] == 1
    # the partition's metadata counts the skips per reason
    skipped = sum(m["records_skipped"].value for m in metadata.values())
    assert skipped == sum(f["skipped"] for f in files.values()) > 0
