"""Where finished model calls are kept: a local DuckDB file (the default) or one Postgres table
that every worker of a cluster shares. Both are keyed by ``GenerationRequest.cache_key``."""

from __future__ import annotations

import os
from typing import Protocol

from personahub_assets.resources.duckdb_session import catalog_lock, locked_connection

_LOCAL_DDL = (
    "CREATE TABLE IF NOT EXISTS llm_cache (key VARCHAR PRIMARY KEY, backend VARCHAR, "
    "model VARCHAR, result_json VARCHAR, created_at TIMESTAMP DEFAULT current_timestamp)"
)
_POSTGRES_DDL = (
    "CREATE TABLE IF NOT EXISTS llm_cache (key TEXT PRIMARY KEY, backend TEXT, model TEXT, "
    "result_json TEXT NOT NULL, created_at TIMESTAMPTZ NOT NULL DEFAULT now())"
)


class ResponseCache(Protocol):
    def lookup(self, keys: list[str]) -> dict[str, str]:
        """The stored result JSON of each key that has one."""

    def store(self, rows: list[tuple[str, str, str, str]]) -> None:
        """Keep ``(key, backend, model, result_json)`` rows."""


class LocalResponseCache:
    """A DuckDB file behind the same inter-process lock as the warehouse."""

    def __init__(self, path: str) -> None:
        self.path = path

    def lookup(self, keys: list[str]) -> dict[str, str]:
        with locked_connection(self.path) as conn:
            conn.execute(_LOCAL_DDL)
            return dict(conn.execute(
                "SELECT key, result_json FROM llm_cache WHERE key IN (SELECT unnest(?))", [keys]
            ).fetchall())

    def store(self, rows: list[tuple[str, str, str, str]]) -> None:
        with locked_connection(self.path) as conn:
            conn.execute(_LOCAL_DDL)
            conn.executemany("INSERT OR REPLACE INTO llm_cache (key, backend, model, "
                             "result_json) VALUES (?, ?, ?, ?)", rows)


_PG_READY: set[tuple[int, str]] = set()


class PostgresResponseCache:
    """One table in Postgres shared by every worker: the first result stored for a key wins,
    so two workers that raced on a call keep one answer. The password comes from
    ``PGPASSWORD``, never from the connection string."""

    def __init__(self, conninfo: str) -> None:
        self.conninfo = conninfo

    def _connect(self):
        import psycopg2

        conn = psycopg2.connect(self.conninfo)
        if (os.getpid(), self.conninfo) not in _PG_READY:
            # Two first writers could race on CREATE TABLE; the catalog lock orders them.
            with catalog_lock(self.conninfo), conn, conn.cursor() as cur:
                cur.execute(_POSTGRES_DDL)
            _PG_READY.add((os.getpid(), self.conninfo))
        return conn

    def lookup(self, keys: list[str]) -> dict[str, str]:
        conn = self._connect()
        try:
            with conn, conn.cursor() as cur:
                cur.execute("SELECT key, result_json FROM llm_cache WHERE key = ANY(%s)",
                            [keys])
                return dict(cur.fetchall())
        finally:
            conn.close()

    def store(self, rows: list[tuple[str, str, str, str]]) -> None:
        from psycopg2.extras import execute_values

        conn = self._connect()
        try:
            with conn, conn.cursor() as cur:
                execute_values(cur, "INSERT INTO llm_cache (key, backend, model, result_json) "
                                    "VALUES %s ON CONFLICT (key) DO NOTHING", rows)
        finally:
            conn.close()
