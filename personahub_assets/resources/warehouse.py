"""The warehouse resource: short sessions and atomic partition replacement, on a local DuckDB
file (the default) or on a DuckLake shared by many machines (cluster mode), with one SQL."""

from __future__ import annotations

import dataclasses
import logging
import os
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager, nullcontext
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Any

import duckdb
import pyarrow as pa
from dagster import ConfigurableResource
from pydantic import Field

from personahub_assets.lib.common.faults import fault_point
from personahub_assets.lib.common.retry import RetryPolicy
from personahub_assets.lib.common.tables import TABLES, ddl
from personahub_assets.lib.common.transactions import fetch_dicts, insert_arrow, rollback_if_open
from personahub_assets.lib.ingest.batching import BatchSpec
from personahub_assets.resources.duckdb_session import (
    LEDGER_LOCK_KEY,
    LakeTarget,
    catalog_lock,
    lake_connection,
    locked_connection,
)

logger = logging.getLogger(__name__)


def _where(table: str, where: Mapping[str, Any]) -> tuple[str, list[Any]]:
    """A parameterized WHERE clause over known column names only (never built from content)."""
    columns = set(TABLES[table].names)
    unknown = set(where) - columns
    if unknown:
        raise KeyError(f"{table} has no columns {sorted(unknown)}")
    if not where:
        return "TRUE", []
    return " AND ".join(f'"{col}" = ?' for col in where), list(where.values())


@dataclass(frozen=True)
class QueryRows:
    """New rows for a partition, produced inside the write transaction by a SELECT written in
    code over the warehouse's tables and the registered Arrow ``inputs``.

    Large rows then never pass through Python: the caller sends only its decisions (for
    example the IDs to keep) and DuckDB copies the rows.
    """

    sql: str
    inputs: Mapping[str, pa.Table] = dataclasses.field(default_factory=dict)


class ConcurrentChangeError(RuntimeError):
    """A table the write depended on changed between reading it and writing the result."""


class CommitConflictError(RuntimeError):
    """Concurrent writers kept conflicting on a DuckLake table after every retry."""


def is_commit_conflict(exc: BaseException) -> bool:
    """True for a DuckLake commit that lost a race with another writer (worth a retry)."""
    return isinstance(exc, duckdb.TransactionException) and "conflict" in str(exc).lower()


# (pid, lake) pairs whose tables this process has already created or brought up to date.
_LAKES_READY: set[tuple[int, LakeTarget]] = set()


class WarehouseVersionError(RuntimeError):
    """The warehouse file was written by an older version whose tables this one cannot use."""


REBUILD_COMMAND = "make rebuild"


@dataclass(frozen=True)
class RegisteredBatch:
    """A batch in the ledger: its key, sequence number, and whether this call added it."""

    key: str
    seq: int
    kind: str
    is_new: bool


class WarehouseResource(ConfigurableResource):
    """Every intermediate table of the pipeline: a local DuckDB file (the default), or a
    DuckLake whose catalog is in Postgres and whose Parquet files are on a shared path.

    Set ``catalog`` (a libpq connection string, no password: libpq reads ``PGPASSWORD``) and
    ``data_path`` for cluster mode; the SQL is the same in both modes.
    """

    path: str = Field(default="data/warehouse.duckdb", description="DuckDB database file.")
    lock_timeout_s: float = Field(default=600.0, description="Seconds to wait for the file lock.")
    catalog: str = Field(default="", description="DuckLake catalog in Postgres, as a libpq "
                                                 "connection string without the password; "
                                                 "empty = the local file.")
    data_path: str = Field(default="", description="Where the DuckLake's Parquet files go: a "
                                                   "folder every worker mounts, or s3://...")
    commit_retries: int = Field(default=8, description="Retries of a partition write whose "
                                                       "DuckLake commit conflicted.")

    @property
    def is_lake(self) -> bool:
        """Whether this warehouse is a DuckLake (cluster mode)."""
        return bool(self.catalog)

    @property
    def lake(self) -> LakeTarget:
        return LakeTarget(self.catalog, self.data_path)

    @contextmanager
    def session(self) -> Iterator[duckdb.DuckDBPyConnection]:
        """A short session with every table created; do not call a model inside it."""
        if self.is_lake:
            target = self.lake
            with lake_connection(target) as conn:
                if (os.getpid(), target) not in _LAKES_READY:
                    # Tables are created once per process, under the catalog's lock, so two
                    # first writers never race to create the same table.
                    with catalog_lock(target.catalog):
                        _create_tables(conn, self.data_path)
                    _LAKES_READY.add((os.getpid(), target))
                yield conn
            return
        with locked_connection(self.path, self.lock_timeout_s) as conn:
            _create_tables(conn, self.path)
            yield conn

    def replace_partitions(
        self, writes: Sequence[tuple[str, Mapping[str, Any], pa.Table | QueryRows]],
        guards: Sequence[tuple[str, Mapping[str, Any], str]] = (),
    ) -> None:
        """Replace several partitions in ONE transaction: all new rows land, or none do.

        Each write is ``(table, where, rows)``: rows matching ``where`` are deleted, then
        ``rows`` are inserted in bulk, from Arrow or from a ``QueryRows`` SELECT.

        Each guard is ``(sql, expected_first_row, message)``: inside the transaction, before
        anything is deleted, the query must still return ``expected_first_row`` (read earlier
        by the caller), or nothing is written and ``ConcurrentChangeError(message)`` raised.
        """
        checked = []
        for table, where, rows in writes:
            if table not in TABLES:
                raise KeyError(f"unknown table {table!r}")
            if isinstance(rows, pa.Table) and rows.schema != TABLES[table]:
                rows = rows.select(TABLES[table].names).cast(TABLES[table])
            checked.append((table, where, rows))
        self._retrying(lambda: self._write_once(checked, guards),
                       ", ".join(sorted({t for t, _, _ in checked})))

    def _retrying(self, attempt_once, label: str):
        """Run ``attempt_once``; a DuckLake commit conflict is retried by the project's one
        retry policy, and any other error (and the last conflict) reaches the caller."""
        policy = RetryPolicy(max_retries=self.commit_retries, backoff_base_s=0.05,
                             backoff_max_s=2.0)
        for attempt in range(policy.max_retries + 1):
            try:
                return attempt_once()
            except duckdb.TransactionException as exc:
                if not (self.is_lake and is_commit_conflict(exc)):
                    raise
                if attempt == policy.max_retries:
                    raise CommitConflictError(
                        f"{label}: still conflicting after {attempt + 1} attempts: {exc}"
                    ) from exc
                delay = policy.delay(attempt, None)
                logger.info("commit conflict on %s; retry %d in %.2fs", label, attempt + 1, delay)
                time.sleep(delay)
        raise AssertionError("unreachable")

    def _write_once(self, checked, guards) -> None:
        with self.session() as conn:
            conn.execute("BEGIN TRANSACTION")
            try:
                for sql, expected, message in guards:
                    cur = conn.execute(sql)
                    names = [d[0] for d in cur.description]
                    if dict(zip(names, cur.fetchone(), strict=True)) != dict(expected):
                        raise ConcurrentChangeError(message)
                for i, (table, where, rows) in enumerate(checked):
                    clause, params = _where(table, where)
                    conn.execute(f'DELETE FROM "{table}" WHERE {clause}', params)
                    if isinstance(rows, QueryRows):
                        for name, data in rows.inputs.items():
                            conn.register(name, data)
                        conn.execute(f'INSERT INTO "{table}" BY NAME {rows.sql}')
                        for name in rows.inputs:
                            conn.unregister(name)
                        continue
                    insert_arrow(conn, table, rows, f"incoming_{i}")
                fault_point("warehouse_before_commit")
                conn.execute("COMMIT")
            except BaseException:
                rollback_if_open(conn)
                raise

    def compact(self, retain_snapshots_s: float = 86400.0) -> dict[str, int]:
        """Maintenance: merge the small files that many partition writes leave behind.

        On a DuckLake: inlined rows are flushed to Parquet, adjacent small files merged, files
        with many deleted rows rewritten, snapshots older than ``retain_snapshots_s`` expired
        and the files no snapshot needs any more deleted (DuckLake's own functions). On the
        local file: a CHECKPOINT folds the write-ahead log into the database.
        """
        if not self.is_lake:
            with self.session() as conn:
                conn.execute("CHECKPOINT")
            return {"checkpoints": 1}
        lake = self.lake.alias
        files = ("SELECT count(*) AS data_files, count(delete_file) AS delete_files "
                 f"FROM ducklake_list_files('{lake}', ?)")

        def file_counts(conn) -> tuple[int, int]:
            totals = [0, 0]
            for table in TABLES:
                (data, deletes), = conn.execute(files, [table]).fetchall()
                totals[0] += data
                totals[1] += deletes
            return totals[0], totals[1]

        def run(conn, sql: str, *params) -> int:
            # fetchall, not fetchone: a DuckLake maintenance call commits only once its
            # result is consumed; a result left open is rolled back by the next statement.
            return self._retrying(lambda: conn.execute(sql, list(params)).fetchall()[0][0], sql)

        with self.session() as conn:
            before = file_counts(conn)
            run(conn, f"SELECT count(*) FROM ducklake_flush_inlined_data('{lake}')")
            run(conn, f"SELECT count(*) FROM ducklake_merge_adjacent_files('{lake}')")
            run(conn, f"SELECT count(*) FROM ducklake_rewrite_data_files('{lake}')")
            expired = run(conn, "SELECT count(*) FROM ducklake_expire_snapshots("
                                f"'{lake}', older_than => now() - to_seconds(?::DOUBLE))",
                          retain_snapshots_s)
            removed = run(conn, "SELECT count(*) FROM ducklake_cleanup_old_files("
                                f"'{lake}', older_than => now() - to_seconds(?::DOUBLE))",
                          retain_snapshots_s)
            after = file_counts(conn)
        return {"data_files_before": before[0], "delete_files_before": before[1],
                "data_files_after": after[0], "delete_files_after": after[1],
                "snapshots_expired": expired, "files_removed": removed}

    def replace_partition(self, table: str, where: Mapping[str, Any], rows: pa.Table) -> None:
        """Replace one partition of one table atomically (see :meth:`replace_partitions`)."""
        self.replace_partitions([(table, where, rows)])

    def rows(self, sql: str, params: Sequence[Any] = ()) -> list[dict[str, Any]]:
        """Run a read query written in code (never from content) and return its rows."""
        with self.session() as conn:
            return fetch_dicts(conn, sql, params)

    @contextmanager
    def reader(self) -> Iterator[Callable[..., list[dict[str, Any]]]]:
        """Several read queries in one session (a session costs a file lock and a
        connection): ``with warehouse.reader() as rows: rows(sql, params)``."""
        with self.session() as conn:
            yield lambda sql, params=(): fetch_dicts(conn, sql, params)

    def arrow(self, sql: str, params: Sequence[Any] = ()) -> pa.Table:
        """Run a read query written in code and return its result as one Arrow table."""
        with self.session() as conn:
            return conn.sql(sql, params=list(params) or None).to_arrow_table()

    def scalar(self, sql: str, params: Sequence[Any] = ()) -> Any:
        """First column of the first row of a read query."""
        with self.session() as conn:
            row = conn.execute(sql, list(params)).fetchone()
            return row[0] if row else None

    def register_batches(self, specs: Sequence[BatchSpec]) -> list[RegisteredBatch]:
        """Add batches to the ledger in one transaction, each with the next sequence number.

        A batch whose key is already there is left as it is (same content, same key), so
        registering again is a no-op; the file lock serializes writers, so two processes
        can never take the same sequence number (on a DuckLake, where appends never conflict,
        a Postgres advisory lock on the catalog does that).
        """
        registered: list[RegisteredBatch] = []
        now = datetime.now(timezone.utc).isoformat(timespec="seconds")
        ledger = catalog_lock(self.catalog, LEDGER_LOCK_KEY) if self.is_lake else nullcontext()
        with ledger, self.session() as conn:
            conn.execute("BEGIN TRANSACTION")
            try:
                for spec in specs:
                    row = conn.execute("SELECT seq, kind FROM batches WHERE batch = ?",
                                       [spec.key]).fetchone()
                    if row is not None:
                        registered.append(RegisteredBatch(spec.key, row[0], row[1], False))
                        continue
                    seq = conn.execute("SELECT coalesce(max(seq), 0) + 1 FROM batches"
                                       ).fetchone()[0]
                    conn.execute("INSERT INTO batches VALUES (?, ?, ?, ?, ?, ?, ?)",
                                 [spec.key, spec.kind, spec.to_json(), spec.fingerprint, seq,
                                  spec.records, now])
                    conn.executemany("INSERT INTO batch_files VALUES (?, ?, ?, ?, ?)",
                                     [[spec.key, p.path, p.content_hash, p.start, p.stop]
                                      for p in spec.parts])
                    registered.append(RegisteredBatch(spec.key, seq, spec.kind, True))
                conn.execute("COMMIT")
            except BaseException:
                rollback_if_open(conn)
                raise
        return registered

    def batch(self, key: str) -> tuple[BatchSpec, int]:
        """The spec and sequence number of a registered batch; a clear error otherwise."""
        rows = self.rows("SELECT spec, seq FROM batches WHERE batch = ?", [key])
        if not rows:
            raise KeyError(
                f"batch {key!r} is not in the warehouse's batches table: register data by "
                f"putting files in the incoming folder and running `make update` (or the "
                f"incoming_files_sensor), or with the register_batches job")
        return BatchSpec.from_json(rows[0]["spec"]), rows[0]["seq"]

    def table_counts(self) -> dict[str, int]:
        """Row count of every warehouse table."""
        with self.session() as conn:
            return {t: conn.execute(f'SELECT count(*) FROM "{t}"').fetchone()[0] for t in TABLES}


def _create_tables(conn: duckdb.DuckDBPyConnection, where: str) -> None:
    """Create what is missing and add the columns a table made by an older version lacks.

    Every session runs this, so it reads the catalog once (one query) and writes only when
    something is missing: the per-table statements it replaces cost about 0.14 s a session.
    """
    columns: dict[str, set[str]] = {}
    for table, column in conn.execute(
            "SELECT table_name, column_name FROM information_schema.columns "
            "WHERE table_catalog = current_database()").fetchall():
        columns.setdefault(table, set()).add(column)
    _refuse_old_layout(columns, where)
    for table in TABLES:
        if table not in columns:
            conn.execute(ddl(table))
        elif any(field.name not in columns[table] for field in TABLES[table]):
            _add_missing_columns(conn, table, columns[table])


def _refuse_old_layout(columns: dict[str, set[str]], path: str) -> None:
    """Stop with the command that rebuilds a warehouse written with static shards."""
    if any("shard" in columns.get(t, ()) for t in ("documents", "personas", "persona_hub",
                                                   "synthetic_samples")):
        raise WarehouseVersionError(
            f"{path} was written by an older version of personahub-assets (static shard "
            f"partitions); this version keeps data in batches. Rebuild it with "
            f"`{REBUILD_COMMAND}`: it sets the old warehouse aside and re-ingests "
            f"data/incoming/ and the sample data (the response cache is kept, so no finished "
            f"model call is repeated).")


def _add_missing_columns(conn: duckdb.DuckDBPyConnection, table: str,
                         existing: set[str]) -> None:
    """Bring a table made by an older version up to the current schema by adding columns."""
    for field in TABLES[table]:
        if field.name not in existing:
            sql_type = ddl(table).split(f'"{field.name}" ', 1)[1].split(",")[0].rstrip(")")
            conn.execute(f'ALTER TABLE "{table}" ADD COLUMN "{field.name}" {sql_type}')
