"""Small DuckDB helpers shared by the warehouse and the hub: rows as dicts, a bulk Arrow
insert, and ending a transaction after an error without hiding that error."""

from __future__ import annotations

import logging
from collections.abc import Sequence
from typing import Any

import duckdb
import pyarrow as pa

logger = logging.getLogger(__name__)


def rollback_if_open(conn: duckdb.DuckDBPyConnection) -> None:
    """Roll back the open transaction, if any, without hiding the error being handled.

    A failed COMMIT (a full disk, a DuckLake conflict) ends the transaction itself; a ROLLBACK
    then fails with "no transaction is active", which must never replace the real cause.
    """
    try:
        conn.execute("ROLLBACK")
    except duckdb.Error as exc:
        logger.debug("no rollback needed: %s", exc)


def insert_arrow(conn: duckdb.DuckDBPyConnection, table: str, rows: pa.Table, name: str) -> None:
    """Bulk-insert an Arrow table into ``table`` by column name (inside the caller's
    transaction), through a view registered as ``name`` for the statement only."""
    conn.register(name, rows)
    conn.execute(f'INSERT INTO "{table}" BY NAME SELECT * FROM {name}')
    conn.unregister(name)


def fetch_dicts(conn: duckdb.DuckDBPyConnection, sql: str, params: Sequence[Any] = ()
                ) -> list[dict[str, Any]]:
    """The rows of a query written in code (never from content), as dicts by column name."""
    cur = conn.execute(sql, list(params))
    names = [d[0] for d in cur.description]
    return [dict(zip(names, row, strict=True)) for row in cur.fetchall()]
