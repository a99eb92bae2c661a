"""Charts (matplotlib, SVG out): what the product relies on. They parse as SVG, carry the
numbers a reader looks for, say when there is no data, are the same bytes for the same input,
and travel through Dagster metadata markdown and the HTML report."""

import base64
import os
import re
import xml.etree.ElementTree as ET
from html.parser import HTMLParser

import pytest
from dagster import (
    AssetKey,
    MaterializeResult,
    MetadataValue,
    asset,
    instance_for_test,
    materialize,
)
from markdown_it import MarkdownIt

from personahub_assets.lib.export import plots

NS = "{http://www.w3.org/2000/svg}"
NASTY = 'code <cpp> & "py" \'q\''

FUNNEL = [("personas in", 12000), ("after filters", 10890), ("after exact dedup", 10102),
          ("after MinHash", 9876), ("after embedding dedup", 9120)]
DOMAINS = [("math", 950, 50), (NASTY, 400, 120), ("tools", 10, 990)]


def text_of(svg: str) -> str:
    """Every text of a chart (matplotlib writes text as <text>, fonttype none)."""
    root = ET.fromstring(svg)
    assert root.tag == NS + "svg"
    return " ".join("".join(t.itertext()) for t in root.iter(NS + "text"))


def test_charts_show_their_numbers():
    funnel = text_of(plots.funnel_svg(FUNNEL, title="Persona dedup funnel"))
    assert "Persona dedup funnel" in funnel and "9,120 (76.0%)" in funnel
    stacked = text_of(plots.stacked_bars_svg(DOMAINS, title="Valid samples per domain"))
    assert NASTY in stacked and "95.0% valid (50 invalid of 1,000)" in stacked
    assert "1,360 of 2,520 valid" in stacked
    histogram = text_of(plots.histogram_svg([3, 4, 4, 5, 9, float("nan")],
                                            title="Hub persona length", x_label="words"))
    assert "n = 5" in histogram and "1 non-finite ignored" in histogram and "words" in histogram


@pytest.mark.parametrize("chart", [
    lambda: plots.funnel_svg([], title="f"),
    lambda: plots.stacked_bars_svg([], title="v"),
    lambda: plots.histogram_svg([], title="h"),
])
def test_empty_input_says_no_data(chart):
    assert "no data" in text_of(chart())


def test_bad_counts_are_refused_with_a_reason():
    with pytest.raises(ValueError, match="non-negative integer"):
        plots.funnel_svg([("in", -1)])
    with pytest.raises(ValueError, match="non-negative integer"):
        plots.stacked_bars_svg([("math", 1.5, 0)])
    with pytest.raises(ValueError, match="bins"):
        plots.histogram_svg([1, 2], bins=0)


def test_same_input_same_bytes():
    assert plots.stacked_bars_svg(DOMAINS) == plots.stacked_bars_svg(DOMAINS)
    assert plots.histogram_svg(range(50)) == plots.histogram_svg(range(50))


# ----------------------------------------------------------------------------- embedding


def test_svg_markdown_embeds_a_decodable_base64_svg():
    svg = plots.funnel_svg(FUNNEL, title="Dedup funnel")
    md = plots.svg_markdown(svg, alt="Dedup [funnel] *all* stages")
    m = re.fullmatch(r"!\[(.*)\]\(data:image/svg\+xml;base64,([A-Za-z0-9+/=]+)\)", md)
    assert m
    assert base64.b64decode(m.group(2), validate=True).decode("utf-8") == svg
    text_of(base64.b64decode(m.group(2)).decode())
    assert m.group(1) == r"Dedup \[funnel\] \*all\* stages"


def test_svg_markdown_parses_as_one_image_with_the_literal_alt_text():
    md = MarkdownIt("commonmark")
    # markdown-it's own link policy blocks svg data URIs; Dagster's renderer (remark +
    # rehype-sanitize with "data" allowed on img src) does not. Only the syntax is checked here.
    md.validateLink = lambda url: True
    svg = plots.histogram_svg([1, 2, 3], title="t", x_label="x")
    alt = "lengths <words> & [brackets] _under_"
    text = plots.svg_markdown(svg, alt)
    tokens = md.parseInline(text)[0].children
    assert [t.type for t in tokens] == ["image"]
    assert tokens[0].attrs["src"] == plots.svg_data_uri(svg)

    images: list[dict] = []

    class Images(HTMLParser):
        def handle_starttag(self, tag, attrs):
            if tag == "img":
                images.append(dict(attrs))

    Images().feed(md.renderInline(text))
    assert images == [{"src": plots.svg_data_uri(svg), "alt": alt}]


def test_markdown_metadata_round_trips_through_dagster_storage():
    md = plots.svg_markdown(plots.stacked_bars_svg(DOMAINS, title="v"), "validity")

    @asset
    def plotted() -> MaterializeResult:
        return MaterializeResult(metadata={"validity": MetadataValue.md(md)})

    with instance_for_test() as instance:
        assert materialize([plotted], instance=instance).success
        event = instance.get_latest_materialization_event(AssetKey("plotted"))
        stored = event.asset_materialization.metadata["validity"]
        assert stored.md_str == md


# ----------------------------------------------------------------------------- files


class _Outline(HTMLParser):
    def __init__(self):
        super().__init__()
        self.tags: list[str] = []
        self.headings: list[str] = []
        self._in: str | None = None

    def handle_starttag(self, tag, attrs):
        self.tags.append(tag)
        self._in = tag if tag in ("h1", "h2", "title") else None

    def handle_endtag(self, tag):
        self._in = None

    def handle_data(self, data):
        if self._in in ("h1", "h2"):
            self.headings.append(data)


def test_html_report_is_written_with_every_section(tmp_path):
    sections = [("Persona length", plots.histogram_svg([5, 9, 12], title="L", x_label="w")),
                ("Dedup funnel", plots.funnel_svg(FUNNEL, title="f")),
                ("Validity per domain", plots.stacked_bars_svg(DOMAINS, title="v")),
                ("Rejections <top>", plots.html_table([{"reason": "a<b", "count": 1200}],
                                                      ["reason", "count"]))]
    path = plots.write_html_report(tmp_path / "out" / "report.html", sections, title="Run & co")
    assert path == tmp_path / "out" / "report.html" and path.is_file()
    html = path.read_text(encoding="utf-8")
    outline = _Outline()
    outline.feed(html)
    assert outline.headings == ["Run & co"] + [h for h, _ in sections]
    assert outline.tags.count("svg") == 3 and outline.tags.count("section") == 4
    assert "a&lt;b" in html and "1,200" in html
    assert not re.search(r'(src|href)="https?:', html)  # no external resources
    assert os.listdir(path.parent) == ["report.html"]  # no temp file left behind
    # Same input, same bytes.
    again = plots.write_html_report(tmp_path / "again.html", sections, title="Run & co")
    assert again.read_bytes() == path.read_bytes()


def test_report_write_is_atomic(tmp_path, monkeypatch):
    path = tmp_path / "report.html"
    plots.write_html_report(path, [("old", "<p>old</p>")])

    def broken_replace(src, dst):
        raise OSError("disk full")

    monkeypatch.setattr(plots.os, "replace", broken_replace)
    with pytest.raises(OSError):
        plots.write_html_report(path, [("new", "<p>new</p>")])
    assert "<p>old</p>" in path.read_text()
    assert os.listdir(tmp_path) == ["report.html"]
