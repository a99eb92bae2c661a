"""Ending a DuckDB transaction after an error without hiding that error."""

from __future__ import annotations

import logging

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
