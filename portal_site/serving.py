"""Running the app scaled out on one machine: for ``zhcharge serve --replica --pgbouncer``, the tests and
the benchmarks.

* :func:`private_pgbouncer`: the PgBouncer of the private cluster (``zhcharge db pgbouncer``:
  ``.data/pgbouncer``, port ``ZHCHARGE_PG_PORT`` + 2), which also pools the private replica under the
  database name ``<database>_read``.
* :func:`scale_env`: the environment that points the app at the private replica and/or through that
  PgBouncer (what ``zhcharge serve --replica --pgbouncer`` sets before starting its workers).
* :class:`AppProcess`: ``zhcharge serve --workers N`` in a subprocess with a given environment, ready
  once every worker answers ``/healthz``, stopped on exit. For example, a benchmark against two
  workers reading from the replica through PgBouncer::

      from portal_site.serving import AppProcess, scale_env
      with AppProcess(workers=2, env=scale_env(replica=True, pgbouncer=True)) as app:
          run_load(app.url)
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import httpx

from services.dbcluster import Cluster, ClusterError, Replica
from services.pgbouncer import PgBouncer
from services.settings import DatabaseSettings

__all__ = ["AppProcess", "private_pgbouncer", "scale_env"]


def private_pgbouncer(settings: DatabaseSettings | None = None) -> PgBouncer:
    """The private cluster's PgBouncer (transaction mode), with the replica as ``<database>_read``."""
    s = settings or DatabaseSettings()
    cluster, replica = Cluster(s), Replica(s)
    return PgBouncer(s.data_dir.resolve() / "pgbouncer", port=s.pgbouncer_port or s.pg_port + 2,
                     server_port=cluster.port, user=s.pg_user, password=cluster.password(),
                     statement_timeout_ms=s.statement_timeout_ms,
                     aliases={f"{s.pg_database}_read": (replica.port, s.pg_database)})


def scale_env(settings: DatabaseSettings | None = None, *, replica: bool = False,
              pgbouncer: bool = False) -> dict[str, str]:
    """Environment variables that run the app against the private replica and/or through the private
    PgBouncer (both must be running: ``zhcharge db replica start``, ``zhcharge db pgbouncer start``)."""
    s = settings or DatabaseSettings()
    if not s.embedded:
        raise ClusterError("--replica and --pgbouncer set up the private cluster's; with ZHCHARGE_DATABASE_URL "
                           "set ZHCHARGE_READ_DATABASE_URL, ZHCHARGE_DB_PGBOUNCER and ZHCHARGE_DIRECT_DATABASE_URL "
                           "yourself (README, Running at scale)")
    cluster = Cluster(s)
    env: dict[str, str] = {}
    if replica:
        rep = Replica(s)
        if not rep.status().running:
            raise ClusterError("the read replica is not running: zhcharge db replica start")
        env["ZHCHARGE_READ_DATABASE_URL"] = rep.url()
    if pgbouncer:
        bouncer = private_pgbouncer(s)
        if not bouncer.status().running:
            raise ClusterError("the private PgBouncer is not running: zhcharge db pgbouncer start")
        env.update({"ZHCHARGE_DATABASE_URL": bouncer.url(s.pg_database), "ZHCHARGE_DB_PGBOUNCER": "true",
                    "ZHCHARGE_DIRECT_DATABASE_URL": cluster.url()})
        if replica:
            env["ZHCHARGE_READ_DATABASE_URL"] = bouncer.url(f"{s.pg_database}_read")
    return env


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


class AppProcess:
    """``zhcharge serve --workers N [args]`` in a subprocess (its own process group), with ``env`` added
    to ours (a value of None removes the variable); ``url`` once started. ``args``: more ``serve``
    options, e.g. ``["--replica", "--pgbouncer"]``. ``log``: where its output goes (default: discarded)."""

    def __init__(self, *, workers: int = 2, env: dict[str, str | None] | None = None, port: int | None = None,
                 args: list[str] | None = None, log: Path | None = None, keep_alive_s: int = 5,
                 ready_s: float = 90.0) -> None:
        self.workers = workers
        self.env = dict(env or {})
        self.args = list(args or [])
        self.port = port or _free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.log = log
        self.keep_alive_s = keep_alive_s
        self.ready_s = ready_s
        self.proc: subprocess.Popen[bytes] | None = None
        self.pids: set[int] = set()

    def command(self) -> list[str]:
        return [sys.executable, "-c", "from portal_site.cli import main; main()", "serve", "--host", "127.0.0.1",
                "--port", str(self.port), "--workers", str(self.workers), "--keep-alive", str(self.keep_alive_s),
                *self.args]

    def start(self) -> AppProcess:
        out: Any = open(self.log, "wb") if self.log else subprocess.DEVNULL  # noqa: SIM115 - closed in stop()
        self._out = out
        env = {k: v for k, v in {**os.environ, **self.env}.items() if v is not None}
        self.proc = subprocess.Popen(self.command(), env=env, stdout=out,
                                     stderr=subprocess.STDOUT, start_new_session=True)
        try:
            self.pids = self.wait_ready()
        except BaseException:
            self.stop()
            raise
        return self

    def wait_ready(self) -> set[int]:
        """Wait until every worker has answered ``/healthz`` (each on a connection of its own)."""
        deadline = time.monotonic() + self.ready_s
        seen: set[int] = set()
        while len(seen) < self.workers:
            assert self.proc is not None
            if self.proc.poll() is not None:
                raise RuntimeError(f"zhcharge serve exited with {self.proc.returncode}"
                                   + (f"; see {self.log}" if self.log else ""))
            try:
                r = httpx.get(f"{self.url}/healthz", timeout=5)
                if r.status_code == 200:
                    seen.add(int(r.json()["worker"]))
                    continue
            except (httpx.HTTPError, ValueError, KeyError):
                pass
            if time.monotonic() > deadline:
                raise RuntimeError(f"zhcharge serve: {len(seen)} of {self.workers} workers ready after "
                                   f"{self.ready_s:.0f} s" + (f"; see {self.log}" if self.log else ""))
            time.sleep(0.1)
        return seen

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            try:
                os.killpg(self.proc.pid, signal.SIGTERM)
                self.proc.wait(20)
            except subprocess.TimeoutExpired:
                os.killpg(self.proc.pid, signal.SIGKILL)
                self.proc.wait(5)
            except ProcessLookupError:
                pass
        if self.log and getattr(self, "_out", None) is not None:
            self._out.close()
            self._out = None

    def __enter__(self) -> AppProcess:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

