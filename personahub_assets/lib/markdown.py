"""Small markdown renderers for previews shown in the Dagster UI."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any


def _cell(value: Any, max_chars: int) -> str:
    text = "" if value is None else str(value)
    text = text.replace("\n", " ").replace("|", "\\|")
    return text if len(text) <= max_chars else text[: max_chars - 1] + "…"


def table(rows: Sequence[Mapping[str, Any]], columns: Sequence[str], max_chars: int = 120) -> str:
    """A markdown table of the given columns; long cells are cut with an ellipsis."""
    if not rows:
        return "_no rows_"
    head = "| " + " | ".join(columns) + " |\n|" + "---|" * len(columns) + "\n"
    body = "\n".join("| " + " | ".join(_cell(r.get(c), max_chars) for c in columns) + " |"
                     for r in rows)
    return head + body


def counts(values: Mapping[str, int]) -> str:
    """A two-column markdown table of counts, largest first."""
    if not values:
        return "_none_"
    rows = [{"reason": k, "count": v} for k, v in sorted(values.items(), key=lambda kv: -kv[1])]
    return table(rows, ["reason", "count"])


def language_table(languages, kept) -> str:
    """Personas in, kept and the drop rate per language, as a markdown table."""
    from personahub_assets.lib.language import drop_rates_by_language

    rows = [{"language": lang, **figures}
            for lang, figures in drop_rates_by_language(list(languages), list(kept)).items()]
    return table(rows, ["language", "in", "kept", "drop_rate"]) if rows else "(none)"
