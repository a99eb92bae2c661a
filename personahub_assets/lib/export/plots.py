"""Charts for asset metadata and the standalone report, drawn with matplotlib (Agg, SVG out).

* ``histogram_svg``: a distribution, e.g. persona lengths in words;
* ``funnel_svg``: how many items survive each stage, each bar labelled with its count and its
  share of the first stage;
* ``stacked_bars_svg``: valid vs invalid counts per label (e.g. per domain), with a legend.

Each chart is a standalone SVG document on a white background (readable in the UI's dark
theme). The same input gives the same bytes: no date in the file and a fixed id salt.
``svg_markdown`` wraps a chart as ``![alt](data:image/svg+xml;base64,...)`` for
``MetadataValue.md`` (the Dagster UI allows ``data:`` images in metadata markdown);
``write_html_report`` writes the page that ``report.py`` builds.
"""

from __future__ import annotations

import base64
import contextlib
import html
import io
import os
import string
import tempfile
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import matplotlib
import numpy as np
from matplotlib.figure import Figure

matplotlib.use("Agg")

VALID, INVALID, BAR = "#4c78a8", "#f58518", "#4c78a8"
_STYLE = {"svg.hashsalt": "personahub-assets", "svg.fonttype": "none", "font.size": 9,
          "axes.spines.top": False, "axes.spines.right": False}
_MAX_LABEL = 28


def _label(text: Any) -> str:
    """One line, cut with an ellipsis when long (matplotlib escapes it for SVG)."""
    s = " ".join(str(text).split())
    return s if len(s) <= _MAX_LABEL else s[: _MAX_LABEL - 1].rstrip() + "\u2026"


def _pct(part: int, whole: int) -> str:
    return f"{100.0 * part / whole:.1f}%" if whole > 0 else "n/a"


def _count(value: Any, what: str) -> int:
    n = int(value)
    if n != value or n < 0:
        raise ValueError(f"{what} must be a non-negative integer, got {value!r}")
    return n


def _render(figure: Figure) -> str:
    with matplotlib.rc_context(_STYLE):
        buffer = io.StringIO()
        figure.savefig(buffer, format="svg", facecolor="white",
                       metadata={"Date": None, "Creator": None, "Format": None, "Type": None})
    return buffer.getvalue()


def _figure(rows: int = 0) -> tuple[Figure, Any]:
    with matplotlib.rc_context(_STYLE):
        figure = Figure(figsize=(6.4, 3.6 if not rows else 0.9 + 0.4 * rows), dpi=100,
                        layout="constrained")
        return figure, figure.add_subplot()


def _no_data(axes: Any, message: str) -> None:
    axes.text(0.5, 0.5, message, ha="center", va="center", transform=axes.transAxes,
              color="#666666")
    axes.set_xticks([])
    axes.set_yticks([])


def histogram_svg(values: Sequence[float], bins: int = 20, title: str = "Histogram",
                  x_label: str = "value") -> str:
    """A histogram of ``values``; whole-number data (word counts) gets whole-number bins.

    Non-finite values are left out and counted in the subtitle.
    """
    if bins < 1:
        raise ValueError(f"bins must be at least 1, got {bins}")
    data = np.asarray([float(v) for v in values], dtype=float)
    finite = data[np.isfinite(data)]
    skipped = len(data) - len(finite)
    figure, axes = _figure()
    with matplotlib.rc_context(_STYLE):
        if not len(finite):
            _no_data(axes, "no data" + (f" ({skipped:,} non-finite values ignored)"
                                        if skipped else ""))
        else:
            if np.all(finite == np.round(finite)):  # whole numbers: bins of whole width
                lo, hi = int(finite.min()), int(finite.max())
                width = -(-(hi - lo + 1) // bins)
                edges = np.arange(lo, hi + width + 1, width) - 0.5
            else:
                edges = bins
            counts, _, bars = axes.hist(finite, bins=edges, color=BAR, edgecolor="white")
            axes.bar_label(bars, labels=[f"{int(c):,}" if c else "" for c in counts],
                           fontsize=7)
            axes.set_xlabel(x_label)
            axes.set_ylabel("count")
            subtitle = (f"n = {len(finite):,} \u00b7 min {finite.min():g} \u00b7 median "
                        f"{np.median(finite):g} \u00b7 mean {finite.mean():,.1f} \u00b7 max "
                        f"{finite.max():g}")
            if skipped:
                subtitle += f" \u00b7 {skipped:,} non-finite ignored"
            axes.set_title(subtitle, fontsize=8, color="#666666")
        figure.suptitle(title, fontweight="bold", x=0.02, ha="left")
        return _render(figure)


def funnel_svg(stages: Sequence[tuple[str, int]], title: str = "Funnel") -> str:
    """Horizontal bars, one per stage in order, with count and share of the first stage."""
    rows = [(_label(label), _count(count, f"count of stage {label!r}"))
            for label, count in stages]
    figure, axes = _figure(len(rows))
    with matplotlib.rc_context(_STYLE):
        if not rows:
            _no_data(axes, "no data")
        else:
            first = rows[0][1]
            labels, counts = zip(*rows, strict=True)
            bars = axes.barh(range(len(rows)), counts, color=BAR)
            axes.set_yticks(range(len(rows)), labels)
            axes.invert_yaxis()
            axes.bar_label(bars, labels=[f"{c:,} ({_pct(c, first)})" for c in counts],
                           padding=4, fontweight="bold")
            axes.set_xlim(0, max(max(counts), 1) * 1.35)
            axes.set_title(f"share of the first stage ({first:,})", fontsize=8,
                           color="#666666")
        figure.suptitle(title, fontweight="bold", x=0.02, ha="left")
        return _render(figure)


def stacked_bars_svg(rows: Sequence[tuple[str, int, int]], title: str = "Valid vs invalid") -> str:
    """One horizontal bar per ``(label, valid, invalid)`` row: valid then invalid, stacked,
    with the validity rate beside each bar and a legend."""
    data = [(_label(label), _count(valid, f"valid count of {label!r}"),
             _count(invalid, f"invalid count of {label!r}")) for label, valid, invalid in rows]
    figure, axes = _figure(len(data))
    with matplotlib.rc_context(_STYLE):
        if not data:
            _no_data(axes, "no data")
        else:
            labels, valid, invalid = zip(*data, strict=True)
            y = range(len(data))
            axes.barh(y, valid, color=VALID, label="valid")
            stacked = axes.barh(y, invalid, left=valid, color=INVALID, label="invalid")
            axes.set_yticks(y, labels)
            axes.invert_yaxis()
            axes.bar_label(stacked, padding=4, labels=[
                f"{_pct(v, v + x)} valid ({x:,} invalid of {v + x:,})" if v + x else "no items"
                for v, x in zip(valid, invalid, strict=True)])
            axes.set_xlim(0, max(max(v + x for v, x in zip(valid, invalid, strict=True)), 1)
                          * 1.6)
            axes.legend(loc="lower right", frameon=False)
            total_valid, total = sum(valid), sum(valid) + sum(invalid)
            axes.set_title(f"{total_valid:,} of {total:,} valid ({_pct(total_valid, total)})",
                           fontsize=8, color="#666666")
        figure.suptitle(title, fontweight="bold", x=0.02, ha="left")
        return _render(figure)


def svg_data_uri(svg: str) -> str:
    """``data:image/svg+xml;base64,...`` for an SVG document."""
    return "data:image/svg+xml;base64," + base64.b64encode(svg.encode("utf-8")).decode("ascii")


def svg_markdown(svg: str, alt: str) -> str:
    """Markdown showing ``svg`` as an image, for ``MetadataValue.md``; the alt text is
    backslash-escaped so that brackets and emphasis markers in it stay literal."""
    escaped = "".join("\\" + c if c in string.punctuation else c for c in " ".join(
        str(alt).split()))
    return f"![{escaped}]({svg_data_uri(svg)})"


def _atomic_write_text(path: str | os.PathLike[str], text: str) -> Path:
    target = Path(path)
    target.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{target.name}.", suffix=".tmp", dir=target.parent)
    try:
        with os.fdopen(fd, "w", encoding="utf-8", newline="\n") as fh:
            fh.write(text)
        os.chmod(tmp, 0o644)
        os.replace(tmp, target)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        raise
    return target


def html_table(rows: Sequence[Mapping[str, Any]], columns: Sequence[str],
               max_chars: int = 200) -> str:
    """An escaped HTML table of the given columns, for a report section."""
    if not rows:
        return '<p class="empty">no rows</p>'

    def cell(value: Any) -> str:
        if isinstance(value, int) and not isinstance(value, bool):
            return f'<td class="num">{value:,}</td>'
        text = "" if value is None else " ".join(str(value).split())
        if len(text) > max_chars:
            text = text[: max_chars - 1] + "\u2026"
        return f"<td>{html.escape(text)}</td>"

    head = "".join(f"<th>{html.escape(c)}</th>" for c in columns)
    body = "\n".join("<tr>" + "".join(cell(r.get(c)) for c in columns) + "</tr>" for r in rows)
    return f"<table>\n<thead><tr>{head}</tr></thead>\n<tbody>\n{body}\n</tbody>\n</table>"


_CSS = """body{font-family:Helvetica,Arial,sans-serif;color:#222;max-width:720px;margin:24px auto;
padding:0 16px;line-height:1.4}h1{font-size:22px}h2{font-size:17px;margin-top:32px}
svg{max-width:100%;height:auto}table{border-collapse:collapse;font-size:13px}
th,td{border:1px solid #ddd;padding:4px 8px;text-align:left;vertical-align:top}
td.num{text-align:right;font-variant-numeric:tabular-nums}th{background:#f6f6f6}"""


def write_html_report(path: str | os.PathLike[str], sections: Sequence[tuple[str, str]],
                      title: str = "Report") -> Path:
    """Write one self-contained HTML page, atomically: ``title``, then one ``<section>`` per
    ``(heading, body)``; headings are escaped, bodies (charts, tables) are trusted markup."""
    out = ["<!DOCTYPE html>", '<html lang="en">', "<head>", '<meta charset="utf-8">',
           f"<title>{html.escape(title)}</title>", f"<style>{_CSS}</style>", "</head>",
           "<body>", f"<h1>{html.escape(title)}</h1>"]
    for heading, body in sections:
        body = body.strip()
        if body.startswith("<?xml"):  # a chart: inline SVG needs no XML prolog in HTML
            body = body[body.find("<svg"):]
        out += ["<section>", f"<h2>{html.escape(heading)}</h2>", body, "</section>"]
    out += ["</body>", "</html>", ""]
    return _atomic_write_text(path, "\n".join(out))
