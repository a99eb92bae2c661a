"""Small hand-written SVG charts for asset metadata and standalone reports (no plotting library).

Charts:

* ``histogram_svg``: a distribution, e.g. persona lengths in words;
* ``funnel_svg``: how many items survive each stage (personas in -> after filters -> after exact
  dedup -> after MinHash -> after embedding dedup), each bar labelled with its count, its share
  of the first stage and the drop from the previous stage;
* ``stacked_bars_svg``: valid vs invalid counts per label (e.g. per domain), with a legend.

Every chart is a complete, standalone SVG document (640 px wide, white background so it stays
readable in the UI's dark theme) that parses as XML. Text is XML-escaped and emitted as pure
ASCII (other characters become numeric character references), characters XML cannot carry are
dropped, and long labels are cut with an ellipsis (the full text stays in a ``<title>`` tooltip).
Empty input gives a valid chart that says "no data". Output is deterministic: the same input
gives the same bytes (no timestamps, no random ids, fixed number formatting).

Getting a chart in front of a person:

* ``svg_markdown`` wraps a chart as ``![alt](data:image/svg+xml;base64,...)`` for
  ``MetadataValue.md``. The Dagster 1.13 UI renders metadata markdown with react-markdown and
  rehype-sanitize configured to allow the ``data:`` protocol on ``img[src]`` (since dagster PR
  #13443), so the image shows in the "[Show Markdown]" dialog (inline when the markdown is under
  1,000 characters, which a chart never is).
* ``write_svg`` and ``write_html_report`` write standalone files (atomically), for
  ``MetadataValue.path`` or for opening in a browser.

Bars carry ``class="bar"`` (and ``valid``/``invalid`` in the stacked chart) so tests and tools can
find them; legend swatches carry ``class="legend"``.
"""

from __future__ import annotations

import base64
import contextlib
import math
import os
import re
import string
import tempfile
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

WIDTH = 640
FONT = "Helvetica, Arial, 'DejaVu Sans', 'Liberation Sans', sans-serif"
BAR = "#4c78a8"
VALID = "#4c78a8"
INVALID = "#f58518"
INK = "#222222"
MUTED = "#666666"
GRID = "#e3e3e3"
AXIS = "#888888"
CHAR_W = 0.6  # average glyph width as a fraction of the font size (sans-serif, a safe estimate)

# Characters XML 1.0 cannot carry at all (C0 controls other than tab/newline/CR, surrogates,
# U+FFFE/U+FFFF); they are dropped from every label.
_NOT_XML = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\ud800-\udfff\ufffe\uffff]")


# ----------------------------------------------------------------------------- text helpers


def _clean(text: Any) -> str:
    """A one-line string XML can carry: controls dropped, line breaks and tabs become spaces."""
    s = "" if text is None else str(text)
    s = s.replace("\r\n", " ").replace("\n", " ").replace("\r", " ").replace("\t", " ")
    return _NOT_XML.sub("", s)


def _esc(text: Any) -> str:
    """Escape for XML/HTML text and attribute values; non-ASCII becomes &#N; references."""
    s = _clean(text)
    s = (s.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")
         .replace('"', "&quot;").replace("'", "&#39;"))
    return s.encode("ascii", "xmlcharrefreplace").decode("ascii")


def _truncate(text: Any, max_chars: int) -> str:
    """Cut to at most ``max_chars`` characters, ending with an ellipsis when cut."""
    s = _clean(text)
    max_chars = max(1, max_chars)
    return s if len(s) <= max_chars else s[: max_chars - 1].rstrip() + "\u2026"


def _fits(width_px: float, font_size: float) -> int:
    """How many characters of a ``font_size`` label fit in ``width_px``."""
    return max(1, int(width_px / (CHAR_W * font_size)))


def _text_w(text: str, font_size: float) -> float:
    return len(text) * CHAR_W * font_size


def _n(x: float) -> str:
    """A coordinate: at most two decimals, no trailing zeros, never '-0'."""
    s = f"{x:.2f}".rstrip("0").rstrip(".")
    return "0" if s in ("-0", "") else s


def _int(n: int) -> str:
    return f"{n:,}"


def _num(x: float, step: float | None = None) -> str:
    """A data value for a label; ``step`` (the spacing between neighbours) sets the decimals."""
    if math.isfinite(x) and abs(x - round(x)) <= 1e-9 * max(1.0, abs(x)) and (
            step is None or step >= 1):
        return _int(int(round(x)))
    if step is not None and step > 0:
        decimals = min(6, max(0, 1 - math.floor(math.log10(step))))
    else:
        decimals = min(6, max(1, 3 - math.floor(math.log10(abs(x))))) if x else 0
    s = f"{x:,.{decimals}f}"
    if "." in s:
        s = s.rstrip("0").rstrip(".")
    return "0" if s == "-0" else s


def _pct(part: int, whole: int) -> str:
    if whole <= 0:
        return "n/a"
    share = 100.0 * part / whole
    if part == whole:
        return "100%"
    if 0 < share < 0.1:
        return "<0.1%"
    if 99.9 < share < 100:
        return ">99.9%"
    return f"{share:.1f}%"


def _nice_step(span: float, target: int) -> float:
    """A 1-2-5 step that splits ``span`` into about ``target`` intervals."""
    if span <= 0:
        return 1.0
    raw = span / max(1, target)
    mag = 10.0 ** math.floor(math.log10(raw))
    for m in (1, 2, 2.5, 5, 10):
        if raw <= m * mag + 1e-12:
            return m * mag
    return 10 * mag


def _count_ticks(max_count: int, target: int = 5) -> list[int]:
    """Integer ticks from 0 up to the first tick at or above ``max_count``."""
    step = max(1, int(math.ceil(_nice_step(float(max(max_count, 1)), target))))
    top = max(step, int(math.ceil(max(max_count, 1) / step)) * step)
    return list(range(0, top + 1, step))


# ----------------------------------------------------------------------------- svg frame


def _open(height: int, title: str) -> list[str]:
    t = _esc(_truncate(title, _fits(WIDTH - 32, 15)))
    return [
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{WIDTH}" height="{height}" '
        f'viewBox="0 0 {WIDTH} {height}" role="img" aria-label="{_esc(title)}" '
        f'font-family="{FONT}">',
        f"<title>{_esc(title)}</title>",
        f'<rect x="0" y="0" width="{WIDTH}" height="{height}" fill="#ffffff"/>',
        f'<text x="16" y="24" font-size="15" font-weight="bold" fill="{INK}">{t}</text>',
    ]


def _text(x: float, y: float, text: str, size: float = 11, anchor: str = "start",
          fill: str = INK, bold: bool = False, extra: str = "") -> str:
    weight = ' font-weight="bold"' if bold else ""
    anchor_attr = "" if anchor == "start" else f' text-anchor="{anchor}"'
    return (f'<text x="{_n(x)}" y="{_n(y)}" font-size="{_n(size)}"{anchor_attr} fill="{fill}"'
            f"{weight}{extra}>{_esc(text)}</text>")


def _subtitle(text: str) -> str:
    return _text(16, 44, _truncate(text, _fits(WIDTH - 32, 11)), 11, fill=MUTED)


def no_data_svg(title: str, message: str = "no data") -> str:
    """A valid chart with the title and a centred message, for empty input."""
    height = 160
    parts = _open(height, title)
    parts.append(f'<rect x="16" y="40" width="{WIDTH - 32}" height="{height - 56}" fill="none" '
                 f'stroke="{GRID}" stroke-dasharray="4 4"/>')
    parts.append(_text(WIDTH / 2, 40 + (height - 56) / 2 + 5, message, 14, "middle", MUTED,
                       extra=' class="no-data"'))
    parts.append("</svg>")
    return "\n".join(parts) + "\n"


# ----------------------------------------------------------------------------- histogram


def _bins(values: list[float], bins: int) -> tuple[list[float], list[int], bool]:
    """Bin edges (len = bars + 1), counts per bar, and whether the bins are whole numbers.

    Whole-number data gets whole-number bins of equal width (so no bar covers more distinct
    values than another): width ``ceil(span / bins)``, hence at most ``bins`` bars, one per value
    when the values span fewer than ``bins`` integers. Other data gets exactly ``bins`` equal bins
    over [min, max], the last one closed (numpy.histogram's rule).
    """
    lo, hi = min(values), max(values)
    if all(v == int(v) for v in values) and hi - lo < 1e15:
        ilo, ihi = int(lo), int(hi)
        span = ihi - ilo + 1
        width = -(-span // bins)
        n = -(-span // width)
        counts = [0] * n
        for v in values:
            counts[(int(v) - ilo) // width] += 1
        return [float(ilo + i * width) for i in range(n + 1)], counts, True
    if hi == lo:  # a single distinct non-integer value: one bin around it
        lo, hi, bins = lo - 0.5, hi + 0.5, 1
    edges = [lo + (hi - lo) * i / bins for i in range(bins + 1)]
    counts = [0] * bins
    scale = bins / (hi - lo)
    for v in values:
        i = min(bins - 1, int((v - lo) * scale))
        # Guard the float rounding of (v - lo) * scale at the edges.
        if i > 0 and v < edges[i]:
            i -= 1
        elif i < bins - 1 and v >= edges[i + 1]:
            i += 1
        counts[i] += 1
    return edges, counts, False


def _median(sorted_values: list[float]) -> float:
    n = len(sorted_values)
    mid = n // 2
    return sorted_values[mid] if n % 2 else (sorted_values[mid - 1] + sorted_values[mid]) / 2


def histogram_svg(values: Sequence[float], bins: int = 20, title: str = "Histogram",
                  x_label: str = "value") -> str:
    """A histogram of ``values`` as an SVG document.

    Non-finite values (NaN, +-inf) are left out and counted in the subtitle. Whole-number data
    (word counts) gets whole-number bins, at most ``bins`` of them; other data exactly ``bins``.
    Each bar has a ``<title>`` tooltip with its range and count; counts are printed above the
    bars when they fit.
    """
    if bins < 1:
        raise ValueError(f"bins must be at least 1, got {bins}")
    finite: list[float] = []
    skipped = 0
    for v in values:
        f = float(v)
        if math.isfinite(f):
            finite.append(f)
        else:
            skipped += 1
    if not finite:
        return no_data_svg(title, "no data" if not skipped
                           else f"no data ({_int(skipped)} non-finite values ignored)")

    edges, counts, whole = _bins(finite, bins)
    ordered = sorted(finite)
    n = len(finite)
    mean = math.fsum(finite) / n
    bin_w = edges[1] - edges[0]
    stat_step = 1.0 if whole else bin_w / 10
    mean_text = f"{mean:,.1f}" if whole else _num(mean, stat_step)
    sub = (f"n = {_int(n)} \u00b7 min {_num(ordered[0], stat_step)} \u00b7 median "
           f"{_num(_median(ordered), stat_step / 2 if whole else stat_step)} \u00b7 mean "
           f"{mean_text} \u00b7 max {_num(ordered[-1], stat_step)}")
    if whole and bin_w > 1:
        sub += f" \u00b7 bins of {_int(int(bin_w))}"
    if skipped:
        sub += f" \u00b7 {_int(skipped)} non-finite ignored"

    height, left, right, top, bottom = 360, 64, 20, 62, 62
    pw, ph = WIDTH - left - right, height - top - bottom
    base = top + ph
    ticks = _count_ticks(math.ceil(max(counts) * 1.06))  # headroom for the count labels
    y_top = ticks[-1]
    nb = len(counts)
    bw = min(pw / nb, 56.0)  # a few bins stay bar-shaped, centred in the plot
    x0 = left + (pw - nb * bw) / 2

    parts = _open(height, title)
    parts.append(_subtitle(sub))
    for t in ticks:  # horizontal grid + y tick labels
        y = base - ph * t / y_top
        parts.append(f'<line x1="{left}" y1="{_n(y)}" x2="{left + pw}" y2="{_n(y)}" '
                     f'stroke="{GRID if t else AXIS}" stroke-width="1"/>')
        parts.append(_text(left - 6, y + 4, _int(t), 10, "end", MUTED))
    parts.append(_text(14, top + ph / 2, "count", 11, "middle", MUTED,
                       extra=f' transform="rotate(-90 14 {_n(top + ph / 2)})"'))

    widest = max(len(_int(c)) for c in counts)
    label_size = min(10.0, bw / (CHAR_W * widest + 0.5))
    gap = 1.0 if bw > 3 else 0.0
    single = ordered[0] == ordered[-1]
    for i, c in enumerate(counts):
        x = x0 + i * bw
        h = ph * c / y_top
        if single:
            rng = _num(ordered[0])
        elif whole:
            a, b = int(edges[i]), int(edges[i + 1]) - 1
            rng = _int(a) if a == b else f"{_int(a)}\u2013{_int(b)}"
        else:
            closing = "]" if i == nb - 1 else ")"
            rng = f"[{_num(edges[i], bin_w)}, {_num(edges[i + 1], bin_w)}{closing}"
        parts.append(f'<rect class="bar" x="{_n(x + gap / 2)}" y="{_n(base - h)}" '
                     f'width="{_n(max(0.0, bw - gap))}" height="{_n(h)}" fill="{BAR}">'
                     f"<title>{_esc(rng)}: {_int(c)}</title></rect>")
        if c and label_size >= 7:
            parts.append(_text(x + bw / 2, base - h - 3, _int(c), label_size, "middle", INK,
                               extra=' class="count"'))

    # x ticks: bar centres for one-value bins, bin edges otherwise; thinned so labels never touch.
    if single:
        positions = [(x0 + bw / 2, _num(ordered[0]))]
    elif whole and bin_w == 1:
        positions = [(x0 + (i + 0.5) * bw, _int(int(edges[i]))) for i in range(nb)]
    else:
        positions = [(x0 + i * bw, _num(edges[i], 1.0 if whole else bin_w))
                     for i in range(nb + 1)]
    label_w = max(_text_w(lbl, 10) for _, lbl in positions) + 8
    every = max(1, math.ceil(label_w / bw))
    for k, (x, lbl) in enumerate(positions):
        if k % every:
            continue
        parts.append(f'<line x1="{_n(x)}" y1="{base}" x2="{_n(x)}" y2="{base + 4}" '
                     f'stroke="{AXIS}"/>')
        parts.append(_text(x, base + 16, lbl, 10, "middle", MUTED, extra=' class="tick"'))
    parts.append(_text(left + pw / 2, height - 16, _truncate(x_label, _fits(pw, 11)), 11,
                       "middle", INK))
    parts.append("</svg>")
    return "\n".join(parts) + "\n"


# ----------------------------------------------------------------------------- funnel


def _check_count(value: Any, what: str) -> int:
    n = int(value)
    if n != value or n < 0:
        raise ValueError(f"{what} must be a non-negative integer, got {value!r}")
    return n


def funnel_svg(stages: Sequence[tuple[str, int]], title: str = "Funnel") -> str:
    """Horizontal bars, one per stage, in order.

    Each bar is labelled with its count and its share of the first stage; from the second stage
    on, a grey line gives the change from the previous stage. Bar lengths are relative to the
    largest stage (normally the first).
    """
    rows = [(_clean(label), _check_count(count, f"count of stage {label!r}"))
            for label, count in stages]
    if not rows:
        return no_data_svg(title)
    label_w, right_w, row_h, bar_h, top = 180, 150, 36, 22, 58
    bar_x = label_w
    bar_area = WIDTH - label_w - right_w
    height = top + row_h * len(rows) + 14
    first = rows[0][1]
    scale = max(c for _, c in rows) or 1

    parts = _open(height, title)
    parts.append(_subtitle(f"share of the first stage ({_int(first)})"))
    for i, (label, count) in enumerate(rows):
        y = top + i * row_h
        mid = y + bar_h / 2
        w = bar_area * count / scale
        parts.append(_text(label_w - 10, mid + 4, _truncate(label, _fits(label_w - 18, 12)), 12,
                           "end", INK, extra=' class="label"'))
        parts.append(f'<rect class="bar" x="{bar_x}" y="{y}" width="{_n(w)}" height="{bar_h}" '
                     f'fill="{BAR}"><title>{_esc(label)}: {_int(count)} '
                     f"({_esc(_pct(count, first))} of first)</title></rect>")
        tx = bar_x + w + 8
        parts.append(_text(tx, mid - 1 if i else mid + 4,
                           f"{_int(count)} ({_pct(count, first)})", 12, bold=True,
                           extra=' class="count"'))
        if i:
            delta = count - rows[i - 1][1]
            sign = "\u2212" if delta < 0 else "+"
            change = f"{sign}{_int(abs(delta))} vs previous" if delta else "no change"
            parts.append(_text(tx, mid + 12, change, 10, fill=MUTED))
    parts.append("</svg>")
    return "\n".join(parts) + "\n"


# ----------------------------------------------------------------------------- stacked bars


def stacked_bars_svg(rows: Sequence[tuple[str, int, int]], title: str = "Valid vs invalid") -> str:
    """One horizontal bar per ``(label, valid, invalid)`` row: valid then invalid, stacked.

    Segment counts are printed inside segments wide enough to hold them; the right column
    always gives the validity rate and the invalid and total counts. A legend names the colours
    and an axis with ticks runs along the bottom.
    """
    data = [(_clean(label), _check_count(valid, f"valid count of {label!r}"),
             _check_count(invalid, f"invalid count of {label!r}"))
            for label, valid, invalid in rows]
    if not data:
        return no_data_svg(title)
    label_w, right_w, row_h, bar_h, top = 150, 160, 36, 22, 62
    bar_x = label_w
    bar_area = WIDTH - label_w - right_w
    ticks = _count_ticks(max(v + x for _, v, x in data), 4)
    scale = ticks[-1]
    rows_h = row_h * len(data)
    height = top + rows_h + 30
    axis_y = top + rows_h - (row_h - bar_h) + 6

    tot_valid = sum(v for _, v, _ in data)
    tot = tot_valid + sum(x for _, _, x in data)
    parts = _open(height, title)
    parts.append(_subtitle(f"{_int(tot_valid)} of {_int(tot)} valid ({_pct(tot_valid, tot)})"))
    # legend, top right
    lx = WIDTH - 16 - 150
    for k, (name, colour) in enumerate((("valid", VALID), ("invalid", INVALID))):
        x = lx + k * 75
        parts.append(f'<rect class="legend" x="{x}" y="35" width="11" height="11" '
                     f'fill="{colour}"/>')
        parts.append(_text(x + 16, 45, name, 11, fill=INK))
    for t in ticks:
        x = bar_x + bar_area * t / scale
        parts.append(f'<line x1="{_n(x)}" y1="{top - 4}" x2="{_n(x)}" y2="{_n(axis_y)}" '
                     f'stroke="{GRID if t else AXIS}"/>')
        parts.append(_text(x, axis_y + 14, _int(t), 10, "middle", MUTED, extra=' class="tick"'))
    for i, (label, valid, invalid) in enumerate(data):
        y = top + i * row_h
        mid = y + bar_h / 2
        total = valid + invalid
        parts.append(_text(label_w - 10, mid + 4, _truncate(label, _fits(label_w - 18, 12)), 12,
                           "end", INK, extra=' class="label"'))
        x = float(bar_x)
        for kind, n, colour in (("valid", valid, VALID), ("invalid", invalid, INVALID)):
            w = bar_area * n / scale
            parts.append(f'<rect class="bar {kind}" x="{_n(x)}" y="{y}" width="{_n(w)}" '
                         f'height="{bar_h}" fill="{colour}"><title>{_esc(label)}: {_int(n)} '
                         f"{kind}</title></rect>")
            if n and _text_w(_int(n), 10) + 6 <= w:
                parts.append(_text(x + w / 2, mid + 3.5, _int(n), 10, "middle", "#ffffff",
                                   extra=' class="count"'))
            x += w
        rate = f"{_pct(valid, total)} valid" if total else "\u2014"
        detail = f"{_int(invalid)} invalid of {_int(total)}" if total else "no items"
        parts.append(_text(WIDTH - right_w + 8, mid - 1, rate, 12, bold=True))
        parts.append(_text(WIDTH - right_w + 8, mid + 12, detail, 10, fill=MUTED,
                           extra=' class="count"'))
    parts.append("</svg>")
    return "\n".join(parts) + "\n"


# ----------------------------------------------------------------------------- embedding, files


def svg_data_uri(svg: str) -> str:
    """``data:image/svg+xml;base64,...`` for an SVG document."""
    return "data:image/svg+xml;base64," + base64.b64encode(svg.encode("utf-8")).decode("ascii")


_MD_PUNCT = set(string.punctuation)


def _md_escape(text: str) -> str:
    return "".join("\\" + ch if ch in _MD_PUNCT else ch for ch in _clean(text))


def svg_markdown(svg: str, alt: str) -> str:
    """Markdown showing ``svg`` as an image: ``![alt](data:image/svg+xml;base64,...)``.

    Pass the result to ``MetadataValue.md``. The alt text is backslash-escaped so brackets,
    emphasis markers and entities in it stay literal.
    """
    return f"![{_md_escape(alt)}]({svg_data_uri(svg)})"


def _atomic_write_text(path: str | os.PathLike[str], text: str) -> Path:
    target = Path(path)
    target.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{target.name}.", suffix=".tmp", dir=target.parent)
    try:
        with os.fdopen(fd, "w", encoding="utf-8", newline="\n") as fh:
            fh.write(text)
            fh.flush()
            os.fsync(fh.fileno())
        os.chmod(tmp, 0o644)
        os.replace(tmp, target)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        raise
    return target


def write_svg(path: str | os.PathLike[str], svg: str) -> Path:
    """Write one chart as a standalone ``.svg`` file, atomically; returns the path."""
    return _atomic_write_text(path, svg)


def html_table(rows: Sequence[Mapping[str, Any]], columns: Sequence[str],
               max_chars: int = 200) -> str:
    """An escaped HTML table of the given columns, for a report section."""
    if not rows:
        return '<p class="empty">no rows</p>'
    head = "".join(f"<th>{_esc(c)}</th>" for c in columns)
    body = []
    for r in rows:
        cells = []
        for c in columns:
            v = r.get(c)
            num = isinstance(v, (int, float)) and not isinstance(v, bool)
            text = _int(v) if isinstance(v, int) and num else ("" if v is None else v)
            cls = ' class="num"' if num else ""
            cells.append(f"<td{cls}>{_esc(_truncate(text, max_chars))}</td>")
        body.append("<tr>" + "".join(cells) + "</tr>")
    return (f"<table>\n<thead><tr>{head}</tr></thead>\n<tbody>\n" + "\n".join(body)
            + "\n</tbody>\n</table>")


_CSS = """body{font-family:Helvetica,Arial,sans-serif;color:#222;max-width:720px;margin:24px auto;
padding:0 16px;line-height:1.4}h1{font-size:22px}h2{font-size:17px;margin-top:32px}
svg{max-width:100%;height:auto;border:1px solid #eee}table{border-collapse:collapse;font-size:13px}
th,td{border:1px solid #ddd;padding:4px 8px;text-align:left;vertical-align:top}
td.num{text-align:right;font-variant-numeric:tabular-nums}th{background:#f6f6f6}"""


def write_html_report(path: str | os.PathLike[str], sections: Sequence[tuple[str, str]],
                      title: str = "Report") -> Path:
    """Write one self-contained HTML page: ``title``, then one ``<section>`` per section.

    Each section is ``(heading, body)``; the heading is escaped, the body is inserted as markup
    (an SVG from this module, an ``html_table``, or other trusted HTML). No external resources.
    The file is written to a temporary file beside ``path`` and moved into place with
    ``os.replace``, so readers never see a partial page. Returns the path.
    """
    out = ["<!DOCTYPE html>", '<html lang="en">', "<head>", '<meta charset="utf-8">',
           f"<title>{_esc(title)}</title>", f"<style>{_CSS}</style>", "</head>", "<body>",
           f"<h1>{_esc(title)}</h1>"]
    for heading, body in sections:
        out += ["<section>", f"<h2>{_esc(heading)}</h2>", body.strip(), "</section>"]
    out += ["</body>", "</html>", ""]
    return _atomic_write_text(path, "\n".join(out))
