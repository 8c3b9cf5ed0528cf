"""Throwaway PostgreSQL clusters from the Debian ``postgresql`` package, for tests and benchmarks.

The cluster lives in a temporary folder, listens on a free loopback port (and a Unix socket in the
same folder), trusts local connections, and is removed by :meth:`ThrowawayPostgres.stop`. For fault
injection the server alone can be shut down and started again on the same port and data
(:meth:`ThrowawayPostgres.shut_down`, :meth:`ThrowawayPostgres.start_again`,
:meth:`ThrowawayPostgres.restart`): clients see their connections dropped and refused meanwhile.
PostgreSQL refuses to run as root, so under root the server runs as the ``postgres`` system user
that the Debian package creates.
"""

from __future__ import annotations

import glob
import os
import pwd
import shutil
import subprocess
import tempfile
import time
from pathlib import Path
from typing import Literal

from sync.devtools.kafka import free_loopback_port


class PostgresLauncherError(RuntimeError):
    """The cluster could not be created, started or stopped."""


def find_postgres_bin() -> Path:
    """The folder with ``initdb`` and ``pg_ctl``: the newest Debian version, else PATH."""
    candidates = sorted(glob.glob("/usr/lib/postgresql/*/bin/initdb"),
                        key=lambda path: int(Path(path).parent.parent.name), reverse=True)
    if candidates:
        return Path(candidates[0]).parent
    initdb = shutil.which("initdb")
    if initdb:
        return Path(initdb).resolve().parent
    raise PostgresLauncherError(
        "PostgreSQL server binaries not found: install Debian's 'postgresql' package "
        "or set C2M_SYNC_TEST_POSTGRES_URL"
    )


class ThrowawayPostgres:
    """A PostgreSQL cluster in a temporary folder; ``url`` is a SQLAlchemy URL to it."""

    def __init__(self, database: str = "c2m_sync", user: str = "c2m_sync", *,
                 synchronous_commit: bool = False) -> None:
        """Fast and forgetful by default (``fsync``, ``synchronous_commit`` and full page
        writes off: a crash of the server loses its last confirmed transactions);
        ``synchronous_commit=True`` keeps every confirmed transaction through a crash of the
        server process, as a production setting does."""
        self.database = database
        self.user = user
        self.bin_dir = find_postgres_bin()
        self.root = Path(tempfile.mkdtemp(prefix="c2m-sync-pg-"))
        self.data_dir = self.root / "data"
        self.port = free_loopback_port()
        self._run_as: str | None = "postgres" if os.geteuid() == 0 else None
        self._options = (f"-p {self.port} -k {self.root} -c listen_addresses=127.0.0.1 "
                         "-c fsync=off -c full_page_writes=off "
                         f"-c synchronous_commit={'on' if synchronous_commit else 'off'} "
                         "-c max_connections=200")

    def _command(self, *args: str) -> list[str]:
        if self._run_as is None:
            return list(args)
        return ["runuser", "-u", self._run_as, "--", *args]

    def _run(self, *args: str) -> None:
        result = subprocess.run(self._command(*args), capture_output=True, text=True,
                                check=False, cwd=self.root)
        if result.returncode != 0:
            raise PostgresLauncherError(
                f"{Path(args[0]).name} failed ({result.returncode}):\n"
                f"{result.stdout[-1500:]}{result.stderr[-1500:]}"
            )

    @property
    def url(self) -> str:
        return f"postgresql+psycopg://{self.user}@127.0.0.1:{self.port}/{self.database}"

    def start(self) -> str:
        if self._run_as is not None:
            try:
                account = pwd.getpwnam(self._run_as)
            except KeyError:
                raise PostgresLauncherError(
                    "running as root needs the 'postgres' system user (Debian's postgresql "
                    "package creates it)"
                ) from None
            os.chown(self.root, account.pw_uid, account.pw_gid)
        self._run(str(self.bin_dir / "initdb"), "-D", str(self.data_dir), "-U", self.user,
                  "-A", "trust", "-E", "UTF8", "--no-sync", "--locale=C")
        self._start_server()
        self._run(str(self.bin_dir / "createdb"), "-h", "127.0.0.1", "-p", str(self.port),
                  "-U", self.user, self.database)
        return self.url

    def _start_server(self) -> None:
        self._run(str(self.bin_dir / "pg_ctl"), "-D", str(self.data_dir), "-o", self._options,
                  "-l", str(self.root / "postgres.log"), "-w", "-t", "60", "start")

    @property
    def running(self) -> bool:
        return (self.data_dir / "postmaster.pid").exists()

    def shut_down(self, mode: Literal["smart", "fast", "immediate"] = "fast") -> None:
        """Stop the server, keeping its data: ``fast`` ends every session (what a restart by an
        administrator does), ``immediate`` is a crash (recovery runs on the next start)."""
        if not self.running:
            raise PostgresLauncherError(f"the server at port {self.port} is not running")
        self._run(str(self.bin_dir / "pg_ctl"), "-D", str(self.data_dir), "-m", mode,
                  "-w", "-t", "60", "stop")

    def start_again(self, timeout_s: float = 60.0) -> str:
        """Start the server shut down by :meth:`shut_down`: same port, same data; returns once
        it accepts connections."""
        if self.running:
            raise PostgresLauncherError(f"the server at port {self.port} is already running")
        self._start_server()
        self.wait_ready(timeout_s)
        return self.url

    def restart(self, *, down_s: float = 0.0,
                mode: Literal["smart", "fast", "immediate"] = "fast") -> str:
        """Shut the server down, leave it down for ``down_s`` seconds, start it again."""
        self.shut_down(mode)
        time.sleep(down_s)
        return self.start_again()

    def wait_ready(self, timeout_s: float = 60.0) -> None:
        """Wait until the database accepts a connection and answers a query."""
        deadline = time.monotonic() + timeout_s
        while True:
            result = subprocess.run(
                [str(self.bin_dir / "psql"), "-h", "127.0.0.1", "-p", str(self.port),
                 "-U", self.user, "-d", self.database, "-Atc", "SELECT 1"],
                capture_output=True, text=True, check=False)
            if result.returncode == 0 and result.stdout.strip() == "1":
                return
            if time.monotonic() > deadline:
                raise PostgresLauncherError(
                    f"PostgreSQL at port {self.port} not ready after {timeout_s:.0f} s: "
                    f"{result.stderr.strip()[-500:]}")
            time.sleep(0.2)

    def stop(self) -> None:
        """Stop the server and delete the cluster folder."""
        try:
            if self.running:
                self._run(str(self.bin_dir / "pg_ctl"), "-D", str(self.data_dir), "-m",
                          "immediate", "-w", "-t", "60", "stop")
        finally:
            shutil.rmtree(self.root, ignore_errors=True)

