"""DuckDB sessions: a locked local file (the default), or a DuckLake shared by many machines.

DuckDB lets one process open a file for writing at a time, and Dagster runs steps in separate
processes, so every local session first takes an inter-process file lock beside the database.
In cluster mode the tables live in a DuckLake (catalog in Postgres, Parquet on a shared path),
where many processes commit at once and no file lock is needed.
"""

from __future__ import annotations

import importlib.util
import logging
import os
import re
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import duckdb
from filelock import FileLock, Timeout

logger = logging.getLogger(__name__)


class WarehouseLockTimeout(RuntimeError):
    """Raised when another process held the database lock longer than the timeout."""


@contextmanager
def locked_connection(
    path: str | Path, timeout_s: float = 600.0
) -> Iterator[duckdb.DuckDBPyConnection]:
    """Open ``path`` under its file lock and close it on exit; never hold it across model work."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    lock = FileLock(str(path) + ".lock", timeout=timeout_s)
    waited = time.monotonic()
    try:
        lock.acquire()
    except Timeout as exc:
        raise WarehouseLockTimeout(
            f"could not lock {path.name} within {timeout_s:.0f}s; another run holds it"
        ) from exc
    waited = time.monotonic() - waited
    if waited > 5:
        logger.info("waited %.1fs for the lock on %s", waited, path.name)
    try:
        conn = duckdb.connect(str(path))
        try:
            yield conn
        finally:
            conn.close()
    finally:
        lock.release()


# --- Cluster mode: DuckLake with its catalog in Postgres ------------------------------------

#: No extension is ever downloaded or loaded implicitly: each comes from its PyPI package.
OFFLINE_CONFIG = {"autoinstall_known_extensions": False, "autoload_known_extensions": False}

#: DuckDB extension -> the PyPI package (import name) that ships its binary.
EXTENSION_PACKAGES = {
    "ducklake": "duckdb_extension_ducklake",
    "postgres_scanner": "duckdb_extension_postgres_scanner",
}


class ExtensionUnavailable(RuntimeError):
    """A DuckDB extension package is missing or was built for another DuckDB version."""


def extension_file(name: str) -> Path:
    """The extension binary shipped by its PyPI package for the DuckDB version in use."""
    module = EXTENSION_PACKAGES[name]
    package = module.replace("_", "-")
    wanted = f"pip install '{package}=={duckdb.__version__}'"
    spec = importlib.util.find_spec(module)
    if spec is None or not spec.submodule_search_locations:
        raise ExtensionUnavailable(f"the DuckDB extension {name} is not installed: {wanted} "
                                   "(or the project's 'cluster' extra)")
    root = Path(next(iter(spec.submodule_search_locations))) / "extensions"
    path = root / f"v{duckdb.__version__}" / f"{name}.duckdb_extension"
    if not path.is_file():
        built = sorted(p.name for p in root.glob("v*")) if root.is_dir() else []
        raise ExtensionUnavailable(
            f"{package} holds {name} for DuckDB {', '.join(built) or 'no version'}, but DuckDB "
            f"{duckdb.__version__} is installed; extensions load only into the exact version "
            f"they were built for: {wanted}")
    return path


def load_extensions(conn: duckdb.DuckDBPyConnection, *names: str) -> None:
    """LOAD each extension from its package file (never from the network)."""
    for name in names:
        conn.execute(f"LOAD {_literal(str(extension_file(name)))}")


def _literal(text: str) -> str:
    """A SQL string literal (ATTACH and LOAD take no parameters)."""
    return "'" + text.replace("'", "''") + "'"


@dataclass(frozen=True)
class LakeTarget:
    """A DuckLake: a libpq connection string for its Postgres catalog, and where Parquet goes.

    The password never appears here: libpq reads it from ``PGPASSWORD`` (or ``PGPASSFILE``).
    """

    catalog: str
    data_path: str
    alias: str = "wh"

    def __post_init__(self) -> None:
        if re.search(r"(^|\s)password\s*=", self.catalog, re.IGNORECASE):
            raise ValueError("the catalog connection string must not hold a password; set "
                             "PGPASSWORD in the environment instead")
        if not self.data_path:
            raise ValueError("a DuckLake needs a data path (shared folder or object store URL)")

    def attach_sql(self) -> str:
        data_path = self.data_path if "://" in self.data_path else str(Path(self.data_path))
        data_path = data_path.rstrip("/") + "/"
        return (f"ATTACH {_literal('ducklake:postgres:' + self.catalog)} AS {self.alias} "
                f"(DATA_PATH {_literal(data_path)})")


# One attached DuckLake per process and target. A DuckDB instance must not cross a fork (a
# Celery prefork worker, say), so the process id is part of the key.
_LAKES: dict[tuple[int, LakeTarget], duckdb.DuckDBPyConnection] = {}
_LAKES_GUARD = threading.Lock()


def _lake_instance(target: LakeTarget) -> duckdb.DuckDBPyConnection:
    key = (os.getpid(), target)
    with _LAKES_GUARD:
        conn = _LAKES.get(key)
        if conn is None:
            if not target.data_path.startswith(("s3://", "gs://", "az://", "abfss://")):
                Path(target.data_path).mkdir(parents=True, exist_ok=True)
            conn = duckdb.connect(config=OFFLINE_CONFIG)
            load_extensions(conn, "postgres_scanner", "ducklake")
            with catalog_lock(target.catalog):
                # The first ATTACH creates the catalog tables; the lock keeps two first
                # writers from both trying.
                conn.execute(target.attach_sql())
            conn.execute(f"USE {target.alias}")
            _LAKES[key] = conn
        return conn


@contextmanager
def lake_connection(target: LakeTarget) -> Iterator[duckdb.DuckDBPyConnection]:
    """A fresh connection (its own transactions) to this process's attached DuckLake."""
    conn = _lake_instance(target).cursor()
    try:
        conn.execute(f"USE {target.alias}")
        # No progress bars: on a worker they would only fill the step's log.
        conn.execute("SET enable_progress_bar = false")
        yield conn
    finally:
        conn.close()


#: Arbitrary but fixed Postgres advisory lock keys: catalog set-up, and the batch ledger.
CATALOG_LOCK_KEY = 0x50485542  # "PHUB"
LEDGER_LOCK_KEY = CATALOG_LOCK_KEY + 1


@contextmanager
def catalog_lock(catalog: str, key: int = CATALOG_LOCK_KEY) -> Iterator[None]:
    """Hold a Postgres advisory lock on the catalog database (one-time set-up, the ledger)."""
    import psycopg2

    pg = psycopg2.connect(catalog)
    try:
        pg.autocommit = True
        with pg.cursor() as cur:
            cur.execute("SELECT pg_advisory_lock(%s)", [key])
        try:
            yield
        finally:
            with pg.cursor() as cur:
                cur.execute("SELECT pg_advisory_unlock(%s)", [key])
    finally:
        pg.close()
