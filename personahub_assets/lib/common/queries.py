"""What the query modules of every stage take: a read callable, ``rows(sql, params)``.

A warehouse's ``rows`` method, or the callable that ``warehouse.reader()`` yields for several
reads in one session, both fit. SQL is written in code, never built from content, and every
value travels as a parameter.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

#: ``rows(sql, params)``: the rows of a read query, as dicts by column name.
Rows = Callable[[str, Sequence[Any]], list[dict[str, Any]]]


def first_value(rows: Rows, sql: str, params: Sequence[Any] = ()) -> Any:
    """The first column of the first row of a read query (None when there is no row)."""
    got = rows(sql, params)
    return next(iter(got[0].values())) if got else None
