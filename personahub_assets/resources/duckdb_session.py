"""Short, locked DuckDB sessions shared by every process that touches a database file.

DuckDB lets one process open a file for writing at a time, and Dagster runs steps in separate
processes, so every session first takes an inter-process file lock beside the database.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Iterator
from contextlib import contextmanager
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
