"""Real cluster services on 127.0.0.1 for the tests: a PostgreSQL server (initdb in a temporary
folder, run by a non-root user, password authentication) and a Redis server.

Each helper skips the calling test, with the reason, where the server binaries are missing;
`.ci/run` installs them with apt so that CI always runs these tests.
"""

from __future__ import annotations

import contextlib
import glob
import os
import pwd
import secrets
import shutil
import subprocess
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from personahub_assets_tests.servers import free_port

PG_USER = "personahub"


def postgres_bindir() -> Path | None:
    """The newest PostgreSQL server bin folder (Debian keeps them under /usr/lib/postgresql)."""
    found = []
    for bindir in glob.glob("/usr/lib/postgresql/*/bin"):
        if all(os.access(os.path.join(bindir, b), os.X_OK) for b in ("initdb", "pg_ctl",
                                                                      "postgres")):
            with contextlib.suppress(ValueError):
                found.append((int(Path(bindir).parent.name), Path(bindir)))
    if found:
        return max(found)[1]
    initdb = shutil.which("initdb")
    return Path(initdb).parent if initdb and shutil.which("pg_ctl") else None


def _service_user() -> str | None:
    """Postgres refuses to run as root: run it as the distribution's postgres user (or nobody)."""
    if os.geteuid() != 0:
        return None
    for name in ("postgres", "nobody"):
        with contextlib.suppress(KeyError):
            pwd.getpwnam(name)
            return name
    pytest.skip("running as root and neither a postgres nor a nobody user exists")


@dataclass
class Postgres:
    """A running server: connection strings carry no password (it travels in PGPASSWORD)."""

    port: int
    password: str
    folder: Path

    def conninfo(self, dbname: str) -> str:
        return f"host=127.0.0.1 port={self.port} user={PG_USER} dbname={dbname}"

    def create_database(self, name: str) -> str:
        import psycopg2

        conn = psycopg2.connect(self.conninfo("postgres"), password=self.password)
        try:
            conn.autocommit = True
            with conn.cursor() as cur:
                cur.execute(f'CREATE DATABASE "{name}"')
        finally:
            conn.close()
        return self.conninfo(name)


@contextlib.contextmanager
def postgres_server() -> Iterator[Postgres]:
    """initdb in a fresh temporary folder, start on a free loopback port, stop and delete."""
    bindir = postgres_bindir()
    if bindir is None:
        pytest.skip("PostgreSQL server binaries not found (apt-get install postgresql)")
    user = _service_user()
    folder = Path(tempfile.mkdtemp(prefix="personahub-pg-"))
    password = secrets.token_hex(16)
    (folder / "pwfile").write_text(password + "\n")
    if user:
        shutil.chown(folder, user)
        shutil.chown(folder / "pwfile", user)
    data, port = folder / "data", free_port()

    def run(*args: str) -> None:
        subprocess.run([str(bindir / args[0]), *args[1:]], check=True, user=user,
                       stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, timeout=120)

    try:
        run("initdb", "-D", str(data), "-U", PG_USER, "--auth=scram-sha-256",
            f"--pwfile={folder / 'pwfile'}", "-E", "UTF8", "--no-sync")
        options = (f"-h 127.0.0.1 -p {port} -k {folder} -c fsync=off -c full_page_writes=off "
                   "-c max_connections=200 -c synchronous_commit=off")
        run("pg_ctl", "-D", str(data), "-o", options, "-l", str(folder / "server.log"),
            "-w", "-t", "60", "start")
    except subprocess.CalledProcessError as exc:
        shutil.rmtree(folder, ignore_errors=True)
        pytest.skip(f"could not start PostgreSQL: {exc.stderr.decode(errors='replace')[-300:]}")
    try:
        yield Postgres(port, password, folder)
    finally:
        with contextlib.suppress(Exception):
            run("pg_ctl", "-D", str(data), "-m", "immediate", "-w", "stop")
        shutil.rmtree(folder, ignore_errors=True)


@contextlib.contextmanager
def redis_server() -> Iterator[str]:
    """A throwaway Redis on a free loopback port, no persistence; yields its URL."""
    binary = shutil.which("redis-server")
    if binary is None:
        pytest.skip("redis-server not found (apt-get install redis-server)")
    port = free_port()
    folder = tempfile.mkdtemp(prefix="personahub-redis-")
    proc = subprocess.Popen(
        [binary, "--bind", "127.0.0.1", "--port", str(port), "--save", "", "--appendonly", "no",
         "--dir", folder], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + 30
        while True:
            with contextlib.suppress(OSError):
                import socket

                with socket.create_connection(("127.0.0.1", port), timeout=1) as sock:
                    sock.sendall(b"PING\r\n")
                    if sock.recv(16).startswith(b"+PONG"):
                        break
            if proc.poll() is not None or time.monotonic() > deadline:
                pytest.skip("redis-server did not start")
            time.sleep(0.1)
        yield f"redis://127.0.0.1:{port}"
    finally:
        proc.terminate()
        with contextlib.suppress(subprocess.TimeoutExpired):
            proc.wait(10)
        if proc.poll() is None:
            proc.kill()
        shutil.rmtree(folder, ignore_errors=True)
