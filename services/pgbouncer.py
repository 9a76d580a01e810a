"""A PgBouncer of our own in transaction mode, in front of one PostgreSQL server.

For the private cluster (``zhcharge db pgbouncer start``: ``.data/pgbouncer``, port
``ZHCHARGE_PG_PORT`` + 2), for the tests and for the benchmarks. Everything lives in its own
directory (config, userlist, log, pid file) and listens on loopback only. PgBouncer refuses to run
as root, so as root it runs as the ``postgres`` system user, as the private cluster does.

What the app needs from a transaction pooler is set by ``ZHCHARGE_DB_PGBOUNCER=true``
(``services.db``); the pool's statement timeout is set here, per server connection
(``connect_query``), because a client's ``SET`` would stay on a server connection other clients
then get.
"""

from __future__ import annotations

import os
import pwd
import shutil
import signal
import socket
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import quote

from services.errors import AppError

__all__ = ["PgBouncer", "PgBouncerError", "find_pgbouncer"]


class PgBouncerError(AppError):
    """PgBouncer is missing or did not start; the message says what to do."""


def find_pgbouncer() -> str:
    for path in (shutil.which("pgbouncer"), "/usr/sbin/pgbouncer", "/usr/bin/pgbouncer"):
        if path and os.access(path, os.X_OK):
            return path
    raise PgBouncerError("PgBouncer is not installed: apt-get install pgbouncer "
                         "(scripts/setup-system.sh --test installs it)")


@dataclass
class PgBouncerStatus:
    running: bool
    pid: int | None
    port: int
    directory: Path

    def describe(self) -> str:
        if self.running:
            return f"running (pid {self.pid}) on 127.0.0.1:{self.port}, transaction pooling, files in {self.directory}"
        return f"not running (files in {self.directory})"


class PgBouncer:
    """PgBouncer on 127.0.0.1:``port`` pooling every database of ``server_host:server_port`` for ``user``."""

    def __init__(self, directory: Path, *, port: int, server_port: int, user: str, password: str,
                 server_host: str = "127.0.0.1", pool_size: int = 20, max_client_conn: int = 500,
                 statement_timeout_ms: int = 30_000, aliases: dict[str, tuple[int, str]] | None = None) -> None:
        self.directory = Path(directory).resolve()
        self.port = port
        self.server_host, self.server_port = server_host, server_port
        self.user, self.password = user, password
        self.pool_size, self.max_client_conn = pool_size, max_client_conn
        self.statement_timeout_ms = statement_timeout_ms
        self.aliases = dict(aliases or {})  # name -> (port on server_host, database): e.g. a replica

    # --- files ---------------------------------------------------------------------------------
    @property
    def config_file(self) -> Path:
        return self.directory / "pgbouncer.ini"

    @property
    def pid_file(self) -> Path:
        return self.directory / "pgbouncer.pid"

    @property
    def log_file(self) -> Path:
        return self.directory / "pgbouncer.log"

    def config(self) -> str:
        d = self.directory
        timeout = f"connect_query='SET statement_timeout = {int(self.statement_timeout_ms)}'"
        aliases = "".join(f"{name} = host={self.server_host} port={port} dbname={db} {timeout}\n"
                          for name, (port, db) in sorted(self.aliases.items()))
        return (
            "; written by zhcharge (services/pgbouncer.py); rewritten at every start\n"
            "[databases]\n"
            f"{aliases}"
            f"* = host={self.server_host} port={self.server_port} {timeout}\n"
            "\n[pgbouncer]\n"
            "listen_addr = 127.0.0.1\n"
            f"listen_port = {self.port}\n"
            "unix_socket_dir =\n"
            "pool_mode = transaction\n"
            f"default_pool_size = {self.pool_size}\n"
            f"max_client_conn = {self.max_client_conn}\n"
            "auth_type = scram-sha-256\n"
            f"auth_file = {d / 'userlist.txt'}\n"
            f"admin_users = {self.user}\n"
            f"logfile = {d / 'pgbouncer.log'}\n"
            f"pidfile = {self.pid_file}\n"
            "log_connections = 0\n"
            "log_disconnections = 0\n"
            "server_login_retry = 1\n"
        )

    def _write(self) -> None:
        self.directory.mkdir(parents=True, exist_ok=True)
        os.chmod(self.directory, 0o700)
        self.config_file.write_text(self.config())
        userlist = self.directory / "userlist.txt"
        userlist.write_text(f'"{self.user}" "{self.password.replace(chr(34), chr(34) * 2)}"\n')
        os.chmod(userlist, 0o600)
        if os.geteuid() == 0:
            try:
                pw = pwd.getpwnam("postgres")
            except KeyError as exc:
                raise PgBouncerError("as root PgBouncer runs as the `postgres` system user, which is missing: "
                                     "install the postgresql package") from exc
            for path in (self.directory, self.config_file, userlist):
                os.chown(path, pw.pw_uid, pw.pw_gid)
            if self.log_file.exists():
                os.chown(self.log_file, pw.pw_uid, pw.pw_gid)
            for parent in self.directory.parents:  # postgres must reach the directory
                mode = parent.stat().st_mode
                if not mode & 0o001:
                    os.chmod(parent, mode | 0o001)

    # --- lifecycle -----------------------------------------------------------------------------
    def _pid(self) -> int | None:
        try:
            pid = int(self.pid_file.read_text().strip())
        except (OSError, ValueError):
            return None
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            return None
        except PermissionError:
            pass
        return pid

    def status(self) -> PgBouncerStatus:
        pid = self._pid()
        return PgBouncerStatus(pid is not None, pid, self.port, self.directory)

    def start(self, timeout: float = 20.0) -> bool:
        """Start it (daemonised) unless it runs; returns False when it already ran."""
        if self._pid() is not None:
            return False
        binary = find_pgbouncer()
        self._write()
        args = [binary, "-d", str(self.config_file)]
        if os.geteuid() == 0:
            args = ["runuser", "-u", "postgres", "--", *args]
        proc = subprocess.run(args, capture_output=True, text=True, timeout=30, cwd="/")
        if proc.returncode != 0:
            raise PgBouncerError(f"pgbouncer did not start: {(proc.stderr or proc.stdout).strip()[-300:]} "
                                 f"(log: {self.log_file})")
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self._pid() is not None:
                try:
                    with socket.create_connection(("127.0.0.1", self.port), timeout=1):
                        return True
                except OSError:
                    pass
            time.sleep(0.1)
        raise PgBouncerError(f"pgbouncer did not listen on 127.0.0.1:{self.port} within {timeout:.0f} s "
                             f"(log: {self.log_file})")

    def stop(self, timeout: float = 10.0) -> bool:
        pid = self._pid()
        if pid is None:
            return False
        os.kill(pid, signal.SIGTERM)  # immediate shutdown: in-flight transactions are cut
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline and self._pid() is not None:
            time.sleep(0.1)
        self.pid_file.unlink(missing_ok=True)
        return True

    def url(self, database: str) -> str:
        """The SQLAlchemy URL of ``database`` through this PgBouncer."""
        return (f"postgresql+psycopg2://{quote(self.user, safe='')}:{quote(self.password, safe='')}"
                f"@127.0.0.1:{self.port}/{database}")

    def __enter__(self) -> PgBouncer:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()
