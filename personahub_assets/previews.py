"""Previews for asset metadata as Dagster tables (``MetadataValue.table`` with a schema).

The UI draws them as tables with typed columns, and they stay structured in the
event log for anything that reads metadata back.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from dagster import MetadataValue, TableColumn, TableRecord, TableSchema

_TYPES = ((bool, "bool"), (int, "int"), (float, "float"))


def _cell(value: Any, max_chars: int) -> str | int | float | bool | None:
    if value is None or isinstance(value, bool | int | float):
        return value
    text = str(value).replace("\n", " ")
    return text if len(text) <= max_chars else text[: max_chars - 1] + "…"


def _type(rows: Sequence[Mapping[str, Any]], column: str) -> str:
    values = [r.get(column) for r in rows if r.get(column) is not None]
    for kind, name in _TYPES:
        if values and all(isinstance(v, kind) for v in values):
            if name != "bool" and any(isinstance(v, bool) for v in values):
                break
            return name
    return "string"


def table(rows: Sequence[Mapping[str, Any]], columns: Sequence[str], max_chars: int = 120):
    """The given columns of ``rows`` as a typed metadata table; long text is cut with an
    ellipsis, anything that is not a number or a boolean is shown as text."""
    types = {c: _type(rows, c) for c in columns}

    def cell(value: Any, kind: str):
        return _cell(str(value) if kind == "string" and value is not None else value, max_chars)

    records = [TableRecord({c: cell(r.get(c), types[c]) for c in columns}) for r in rows]
    schema = TableSchema(columns=[TableColumn(c, types[c]) for c in columns])
    return MetadataValue.table(records=records, schema=schema)


def counts(values: Mapping[str, int], label: str = "reason"):
    """A two-column table of counts, largest first."""
    rows = [{label: str(k), "count": int(v)}
            for k, v in sorted(values.items(), key=lambda kv: -kv[1])]
    return table(rows, [label, "count"])


def language_table(languages, kept):
    """Personas in, kept and the drop rate per language."""
    from personahub_assets.lib.ingest.language import drop_rates_by_language

    rows = [{"language": lang, **figures}
            for lang, figures in drop_rates_by_language(list(languages), list(kept)).items()]
    return table(rows, ["language", "in", "kept", "drop_rate"])
