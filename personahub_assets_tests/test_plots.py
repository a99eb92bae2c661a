"""Hand-written SVG charts: they parse, show the right bars and numbers, and embed in metadata."""

import base64
import os
import re
import shutil
import subprocess
import xml.etree.ElementTree as ET
from html.parser import HTMLParser

import numpy as np
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

from personahub_assets.lib import plots

NS = "{http://www.w3.org/2000/svg}"
NASTY = 'code <cpp> & "py" \'q\''

FUNNEL = [("personas in", 12000), ("after filters", 10890), ("after exact dedup", 10102),
          ("after MinHash", 9876), ("after embedding dedup", 9120)]
DOMAINS = [("math", 950, 50), (NASTY, 400, 120), ("tools", 10, 990)]


def parse(svg: str) -> ET.Element:
    root = ET.fromstring(svg)
    assert root.tag == NS + "svg"
    assert root.get("width") == "640"
    return root


def bars(root: ET.Element, kind: str = "bar") -> list[ET.Element]:
    return [r for r in root.iter(NS + "rect") if kind in (r.get("class") or "").split()]


def texts(root: ET.Element) -> list[str]:
    return [t.text or "" for t in root.iter(NS + "text")]


def tooltips(elements) -> list[str]:
    return [e.find(NS + "title").text for e in elements]


def tooltip_count(tip: str) -> int:
    return int(tip.rsplit(":", 1)[1].replace(",", "").split()[0])


# ----------------------------------------------------------------------------- histogram


def test_histogram_float_data_has_one_bar_per_bin_with_numpy_counts():
    rng = np.random.default_rng(7)
    values = rng.normal(0.5, 0.2, 1000)
    root = parse(plots.histogram_svg(values.tolist(), bins=12, title="Scores", x_label="score"))
    found = bars(root)
    assert len(found) == 12
    expected, _ = np.histogram(values, bins=12)
    assert [tooltip_count(t) for t in tooltips(found)] == expected.tolist()
    # Taller bars for bigger counts, and each non-empty bin's count is printed.
    heights = [float(r.get("height")) for r in found]
    assert heights.index(max(heights)) == int(np.argmax(expected))
    shown = texts(root)
    for c in expected:
        if c:
            assert f"{c:,}" in shown
    assert "score" in shown and "Scores" in shown
    assert any(t.startswith("n = 1,000") for t in shown)


def test_histogram_word_counts_get_whole_number_bins():
    values = list(range(3, 119))  # 116 distinct lengths
    root = parse(plots.histogram_svg(values, bins=20, title="Persona length", x_label="words"))
    found = bars(root)
    assert len(found) == 20  # ceil(116 / 6) bins of 6 whole values each
    tips = tooltips(found)
    assert tips[0] == "3\u20138: 6"
    assert sum(tooltip_count(t) for t in tips) == len(values)
    assert all(float(r.get("width")) == float(found[0].get("width")) for r in found)


def test_histogram_small_integer_range_gets_one_bar_per_value():
    root = parse(plots.histogram_svg([3, 4, 4, 5, 5, 5, 7], bins=20, title="t", x_label="w"))
    assert tooltips(bars(root)) == ["3: 1", "4: 2", "5: 3", "6: 0", "7: 1"]
    ticks = [t.text for t in root.iter(NS + "text") if t.get("class") == "tick"]
    assert ticks == ["3", "4", "5", "6", "7"]


@pytest.mark.parametrize("values", [[42], [0.37, 0.37, 0.37]])
def test_histogram_single_distinct_value_is_one_labelled_bar(values):
    root = parse(plots.histogram_svg(values, title="one", x_label="x"))
    found = bars(root)
    assert len(found) == 1 and float(found[0].get("height")) > 0
    assert tooltip_count(tooltips(found)[0]) == len(values)
    ticks = [t.text for t in root.iter(NS + "text") if t.get("class") == "tick"]
    assert ticks == [str(values[0])]


@pytest.mark.parametrize("values", [[], [float("nan"), float("inf")]])
def test_histogram_without_data_says_so(values):
    root = parse(plots.histogram_svg(values, title="Persona length", x_label="words"))
    assert not bars(root)
    assert any(t.startswith("no data") for t in texts(root))
    assert "Persona length" in texts(root)


def test_histogram_ignores_non_finite_values_and_says_how_many():
    root = parse(plots.histogram_svg([1.5, 2.5, float("nan"), 3.5], bins=3, title="t",
                                     x_label="x"))
    assert sum(tooltip_count(t) for t in tooltips(bars(root))) == 3
    assert any("1 non-finite ignored" in t for t in texts(root))


def test_histogram_rejects_zero_bins():
    with pytest.raises(ValueError):
        plots.histogram_svg([1, 2], bins=0, title="t", x_label="x")


# ----------------------------------------------------------------------------- funnel


def test_funnel_has_a_bar_per_stage_with_count_and_share_of_first():
    root = parse(plots.funnel_svg(FUNNEL, title="Dedup funnel"))
    found = bars(root)
    assert len(found) == len(FUNNEL)
    widths = [float(r.get("width")) for r in found]
    assert widths == sorted(widths, reverse=True)
    assert widths[-1] / widths[0] == pytest.approx(9120 / 12000, abs=0.01)
    shown = texts(root)
    assert "12,000 (100%)" in shown
    assert "9,120 (76.0%)" in shown
    assert "\u2212756 vs previous" in shown  # 9,876 -> 9,120
    assert [t.text for t in root.iter(NS + "text") if t.get("class") == "label"] == [
        label for label, _ in FUNNEL]


def test_funnel_handles_zero_counts_and_empty_input():
    root = parse(plots.funnel_svg([("in", 0), ("out", 0)], title="f"))
    assert [float(r.get("width")) for r in bars(root)] == [0.0, 0.0]
    assert "0 (n/a)" in texts(root)
    root = parse(plots.funnel_svg([("in", 10), ("kept", 0)], title="f"))
    assert "0 (0.0%)" in texts(root)
    empty = parse(plots.funnel_svg([], title="f"))
    assert not bars(empty) and "no data" in texts(empty)


def test_funnel_rejects_negative_or_fractional_counts():
    with pytest.raises(ValueError):
        plots.funnel_svg([("in", -1)], title="f")
    with pytest.raises(ValueError):
        plots.funnel_svg([("in", 1.5)], title="f")


# ----------------------------------------------------------------------------- stacked bars


def test_stacked_bars_have_valid_and_invalid_segment_per_row_and_a_legend():
    root = parse(plots.stacked_bars_svg(DOMAINS, title="Validity per domain"))
    valid, invalid = bars(root, "valid"), bars(root, "invalid")
    assert len(valid) == len(invalid) == len(DOMAINS)
    legend = [r for r in root.iter(NS + "rect") if r.get("class") == "legend"]
    assert len(legend) == 2
    assert {"valid", "invalid"} <= set(texts(root))
    # Segment widths are proportional to the counts; invalid starts where valid ends.
    unit = float(valid[0].get("width")) / 950
    for (_, v, x), rv, ri in zip(DOMAINS, valid, invalid, strict=True):
        assert float(rv.get("width")) == pytest.approx(v * unit, abs=0.02)
        assert float(ri.get("width")) == pytest.approx(x * unit, abs=0.02)
        assert float(ri.get("x")) == pytest.approx(float(rv.get("x")) + float(rv.get("width")),
                                                   abs=0.02)
    shown = texts(root)
    assert "95.0% valid" in shown and "50 invalid of 1,000" in shown
    assert "950" in shown and "990" in shown  # counts inside wide segments
    assert "1.0% valid" in shown


def test_stacked_bars_with_zero_counts_and_empty_input():
    root = parse(plots.stacked_bars_svg([("empty", 0, 0), ("all bad", 0, 4)], title="v"))
    assert len(bars(root, "valid")) == len(bars(root, "invalid")) == 2
    assert "no items" in texts(root)
    assert "0.0% valid" in texts(root)
    empty = parse(plots.stacked_bars_svg([], title="v"))
    assert not bars(empty) and "no data" in texts(empty)


# ----------------------------------------------------------------------------- labels, determinism


def test_labels_are_escaped_and_survive_parsing():
    svgs = [plots.funnel_svg([(NASTY, 3)], title=NASTY),
            plots.stacked_bars_svg([(NASTY, 1, 2)], title=NASTY),
            plots.histogram_svg([1, 2], title=NASTY, x_label=NASTY)]
    for svg in svgs:
        assert "<cpp>" not in svg and "&amp;" in svg
        root = parse(svg)
        assert root.find(NS + "title").text == NASTY
        assert NASTY in texts(root)


def test_long_labels_are_cut_with_an_ellipsis_but_kept_in_the_tooltip():
    long = "after MinHash near-duplicate removal of very similar personas " * 3
    root = parse(plots.funnel_svg([(long, 5), ("short", 2)], title="f"))
    label = next(t.text for t in root.iter(NS + "text") if t.get("class") == "label")
    assert label.endswith("\u2026") and len(label) < 40
    assert long.strip() in tooltips(bars(root))[0]


def test_characters_xml_cannot_carry_are_dropped():
    root = parse(plots.funnel_svg([("bell\x07 and\nnewline \ufffe", 1)], title="t\x00"))
    assert "bell and newline " in texts(root)


def test_output_is_deterministic_ascii():
    rng = np.random.default_rng(1)
    values = rng.integers(3, 120, 500).tolist()
    for make in (lambda: plots.histogram_svg(values, title="L \u00e9t\u00e9", x_label="w"),
                 lambda: plots.funnel_svg(FUNNEL, title="f"),
                 lambda: plots.stacked_bars_svg(DOMAINS, title="d")):
        first = make()
        assert make().encode() == first.encode()
        assert first.isascii()


# ----------------------------------------------------------------------------- embedding


def test_svg_markdown_embeds_a_decodable_base64_svg():
    svg = plots.funnel_svg(FUNNEL, title="Dedup funnel")
    md = plots.svg_markdown(svg, alt="Dedup [funnel] *all* stages")
    m = re.fullmatch(r"!\[(.*)\]\(data:image/svg\+xml;base64,([A-Za-z0-9+/=]+)\)", md)
    assert m
    assert base64.b64decode(m.group(2), validate=True).decode("utf-8") == svg
    parse(base64.b64decode(m.group(2)).decode())
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
    assert "http://" not in html.replace('xmlns="http://www.w3.org/2000/svg"', "")
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


def test_write_svg_writes_a_standalone_file(tmp_path):
    svg = plots.funnel_svg(FUNNEL, title="f")
    path = plots.write_svg(tmp_path / "funnel.svg", svg)
    assert path.read_text(encoding="utf-8") == svg
    parse(path.read_text(encoding="utf-8"))


@pytest.mark.skipif(shutil.which("rsvg-convert") is None, reason="rsvg-convert not installed")
def test_charts_render_with_an_svg_renderer(tmp_path):
    charts = {"hist": plots.histogram_svg(list(range(3, 80)) * 3, title="L", x_label="w"),
              "funnel": plots.funnel_svg(FUNNEL, title="f"),
              "stacked": plots.stacked_bars_svg(DOMAINS, title="v"),
              "empty": plots.histogram_svg([], title="L", x_label="w")}
    for name, svg in charts.items():
        png = tmp_path / f"{name}.png"
        subprocess.run(["rsvg-convert", "-f", "png", "-o", str(png)], input=svg.encode(),
                       check=True, timeout=60)
        assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
