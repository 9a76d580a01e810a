"""The private PostGIS cluster under ``.data/pg``: the embedded default database.

``initdb`` refuses to run as root, so when we are root every server command runs as the
``postgres`` system user (created by Debian's postgresql package). The cluster listens on
loopback only, is UTF-8 with the ``C.UTF-8`` locale (pg_trgm extracts no trigrams from
Chinese under ``C``) and keeps its log inside the data directory.

:class:`Replica` is a streaming read replica of it (``zhcharge db replica``): a ``pg_basebackup -R``
copy under ``.data/pg-replica`` on the next port, fed through a physical replication slot by the
role ``zhcharge_replication`` (REPLICATION LOGIN, nothing else; its password in
``.data/pg-replication-password``).

Why one file of 500 lines: the cluster and its replica share the server commands run as
``postgres``, the paths under ``.data/`` and the error texts a first-time user sees.
"""

from __future__ import annotations

import contextlib
import os
import pwd
import re
import secrets
import shutil
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path

from services.errors import AppError
from services.settings import DatabaseSettings

__all__ = ["Cluster", "ClusterError", "Replica", "database_url", "ensure_database", "libpq_url"]

_SEARCH_DIRS = ("/usr/lib/postgresql",)


class ClusterError(AppError):
    """A cluster command failed; the message says what to do."""


def _find_bindir() -> Path:
    """The newest PostgreSQL ``bin`` directory that has initdb and pg_ctl."""
    for root in _SEARCH_DIRS:
        base = Path(root)
        if base.is_dir():
            versions = sorted((p for p in base.iterdir() if (p / "bin" / "initdb").exists()),
                              key=lambda p: int(p.name) if p.name.isdigit() else 0, reverse=True)
            if versions:
                return versions[0] / "bin"
    found = shutil.which("initdb") or shutil.which("pg_ctl")
    if found:
        return Path(found).resolve().parent
    raise ClusterError(
        "PostgreSQL server binaries (initdb, pg_ctl) are not installed: run `make setup` as root, "
        "or `apt-get install postgresql postgresql-15-postgis-3`, or set ZHCHARGE_DATABASE_URL "
        "to an existing PostGIS database."
    )


def _is_root() -> bool:
    return os.geteuid() == 0


@dataclass
class Status:
    running: bool
    initialised: bool
    pid: int | None
    port: int
    data_dir: Path

    def describe(self) -> str:
        if not self.initialised:
            return f"no cluster at {self.data_dir} (run `zhcharge db start`)"
        if self.running:
            return f"running (pid {self.pid}) on 127.0.0.1:{self.port}, data in {self.data_dir}"
        return f"stopped, data in {self.data_dir}"


class Cluster:
    """Start, stop and inspect the private cluster described by ``DatabaseSettings``."""

    START_TIMEOUT_S = 120  # how long `start` waits for the server to accept connections

    def __init__(self, settings: DatabaseSettings) -> None:
        self.settings = settings
        self.data_dir = settings.cluster_dir.resolve()
        self.port = settings.pg_port

    # --- paths -------------------------------------------------------------------------
    @property
    def password_file(self) -> Path:
        return self.settings.data_dir.resolve() / "pg-password"

    @property
    def log_file(self) -> Path:
        return self.data_dir / "log" / "postgresql.log"

    def password(self) -> str:
        return self.password_file.read_text().strip()

    def url(self, database: str | None = None) -> str:
        """The SQLAlchemy URL of ``database`` on this cluster."""
        s = self.settings
        return (f"postgresql+psycopg2://{s.pg_user}:{self.password()}@127.0.0.1:{self.port}/"
                f"{database or s.pg_database}")

    # --- running commands --------------------------------------------------------------
    def _run(self, args: list[str], *, check: bool = True, timeout: float = 120,
             env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
        name = Path(args[0]).name
        if _is_root():
            args = ["runuser", "-u", "postgres", "--", *args]
        try:
            proc = subprocess.run(args, capture_output=True, text=True, timeout=timeout, cwd="/",
                                  env={**os.environ, **env} if env else None)
        except FileNotFoundError as exc:  # runuser or the binary itself
            raise ClusterError(f"cannot run {args[0]}: {exc.strerror}; install PostgreSQL (`make setup`).") from exc
        if check and proc.returncode != 0:
            tail = (proc.stderr or proc.stdout).strip().splitlines()[-5:]
            raise ClusterError(f"{name} failed: " + " | ".join(tail))
        return proc

    def _pg_ctl(self, *args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
        return self._run([str(_find_bindir() / "pg_ctl"), "-D", str(self.data_dir), *args], check=check)

    def _owner_setup(self, path: Path) -> None:
        if _is_root():
            try:
                pw = pwd.getpwnam("postgres")
            except KeyError as exc:
                raise ClusterError("the `postgres` system user is missing: install the postgresql package "
                                   "(`make setup`).") from exc
            os.chown(path, pw.pw_uid, pw.pw_gid)

    # --- lifecycle ---------------------------------------------------------------------
    def status(self) -> Status:
        initialised = (self.data_dir / "PG_VERSION").exists()
        pid = None
        running = False
        if initialised:
            proc = self._pg_ctl("status", check=False)
            running = proc.returncode == 0
            if running:
                for token in proc.stdout.replace(")", " ").split():
                    if token.isdigit():
                        pid = int(token)
                        break
        return Status(running=running, initialised=initialised, pid=pid, port=self.port, data_dir=self.data_dir)

    def init(self) -> bool:
        """Create the cluster if it does not exist. Returns True when it was created."""
        if (self.data_dir / "PG_VERSION").exists():
            return False
        bindir = _find_bindir()
        self.settings.data_dir.mkdir(parents=True, exist_ok=True)
        self.data_dir.mkdir(parents=True, exist_ok=True)
        self._make_traversable(self.data_dir.parent)
        self._owner_setup(self.data_dir)
        os.chmod(self.data_dir, 0o700)
        if not self.password_file.exists():
            self.password_file.write_text(secrets.token_urlsafe(24) + "\n")
            os.chmod(self.password_file, 0o600)
        pwfile = self.data_dir.parent / ".initdb-pw"
        pwfile.write_text(self.password() + "\n")
        self._owner_setup(pwfile)
        os.chmod(pwfile, 0o600)
        try:
            self._run([str(bindir / "initdb"), "-D", str(self.data_dir), "--encoding=UTF8", "--locale=C.UTF-8",
                       f"--username={self.settings.pg_user}", f"--pwfile={pwfile}",
                       "--auth-local=scram-sha-256", "--auth-host=scram-sha-256"], timeout=300)
        finally:
            pwfile.unlink(missing_ok=True)
        conf = self.data_dir / "postgresql.conf"
        with conf.open("a") as fh:
            fh.write(
                "\n# zhcharge private cluster\n"
                "listen_addresses = '127.0.0.1'\n"
                f"port = {self.port}\n"
                "unix_socket_directories = ''\n"
                "logging_collector = on\n"
                "log_directory = 'log'\n"
                "log_filename = 'postgresql.log'\n"
                "max_connections = 200\n"
                "shared_buffers = 256MB\n"
                "work_mem = 16MB\n"
                "maintenance_work_mem = 128MB\n"
                "effective_cache_size = 2GB\n"
                "random_page_cost = 1.1\n"
                "jit = off\n"
                "timezone = 'UTC'\n"
                "# streaming replicas (zhcharge db replica); a standby copies these lines\n"
                "wal_level = replica\n"
                "max_wal_senders = 10\n"
                "max_replication_slots = 10\n"
                f"max_slot_wal_keep_size = '{REPLICA_WAL_KEEP}'\n"
                "hot_standby = on\n"
                "hot_standby_feedback = on\n"
            )
        return True

    def _make_traversable(self, path: Path) -> None:
        """The postgres user must be able to reach the data directory through its parents."""
        if not _is_root():
            return
        for parent in [path, *path.parents]:
            try:
                mode = parent.stat().st_mode
            except FileNotFoundError:
                continue
            if not mode & 0o001:
                os.chmod(parent, mode | 0o001)

    def start(self) -> bool:
        """Start the cluster (creating it first if needed). Returns False when it was already running."""
        self.init()
        if self.status().running:
            return False
        (self.data_dir / "log").mkdir(exist_ok=True)
        self._owner_setup(self.data_dir / "log")
        startup_log = self.data_dir / "log" / "startup.log"
        try:
            self._run([str(_find_bindir() / "pg_ctl"), "-D", str(self.data_dir), "start", "-w", "-t",
                       str(self.START_TIMEOUT_S), "-l", str(startup_log)], timeout=self.START_TIMEOUT_S + 30)
        except ClusterError as exc:
            reasons = [ln.split("  ", 1)[-1] for ln in self._tail(startup_log) if "FATAL" in ln or "could not" in ln]
            raise ClusterError(f"the private cluster did not start on 127.0.0.1:{self.port}: "
                               + ("; ".join(reasons) or exc.message)
                               + f" (log: {startup_log}; another port: ZHCHARGE_PG_PORT)") from exc
        self._wait_ready()
        self._ensure_database()
        return True

    @staticmethod
    def _tail(path: Path, lines: int = 20) -> list[str]:
        try:
            return path.read_text(errors="replace").splitlines()[-lines:]
        except OSError:
            return []

    def stop(self) -> bool:
        if not self.status().running:
            return False
        self._pg_ctl("stop", "-w", "-t", "120", "-m", "fast")
        return True

    def reset(self) -> None:
        """Stop the cluster and delete its data; the next start creates an empty one."""
        self.stop()
        if self.data_dir.exists():
            shutil.rmtree(self.data_dir)

    def _wait_ready(self, timeout: float = 60) -> None:
        import psycopg2

        deadline = time.monotonic() + timeout
        last: Exception | None = None
        while time.monotonic() < deadline:
            try:
                psycopg2.connect(host="127.0.0.1", port=self.port, user=self.settings.pg_user,
                                 password=self.password(), dbname="postgres", connect_timeout=3).close()
                return
            except psycopg2.OperationalError as exc:
                last = exc
                time.sleep(0.2)
        raise ClusterError(f"the cluster did not accept connections within {timeout:.0f} s ({last}); "
                           f"see {self.log_file}")

    def _ensure_database(self) -> None:
        ensure_database(self.url("postgres"), self.settings.pg_database)


    # --- replication -------------------------------------------------------------------------
    @property
    def replication_password_file(self) -> Path:
        return self.settings.data_dir.resolve() / "pg-replication-password"

    def ensure_replication(self) -> str:
        """Make this (running) cluster ready to feed streaming replicas; returns the replication
        role's password. Idempotent: the role ``zhcharge_replication`` (REPLICATION LOGIN), a
        ``host replication`` line for loopback in ``pg_hba.conf`` (initdb writes one), a bound on
        the WAL a forgotten slot may keep. ``wal_level`` and ``max_wal_senders`` need a restart to
        change: a cluster without them is told so."""
        from sqlalchemy import create_engine, text
        from sqlalchemy.pool import NullPool

        if not self.replication_password_file.exists():
            self.replication_password_file.write_text(secrets.token_urlsafe(24) + "\n")
            os.chmod(self.replication_password_file, 0o600)
        password = self.replication_password_file.read_text().strip()
        hba = self.data_dir / "pg_hba.conf"
        lines = [ln.split() for ln in hba.read_text().splitlines() if ln.strip() and not ln.lstrip().startswith("#")]
        reload = False
        if not any(len(f) >= 4 and f[0] == "host" and f[1] == "replication" and f[2] in ("all", REPLICATION_ROLE)
                   and f[3] in ("127.0.0.1/32", "all", "0.0.0.0/0") for f in lines):
            with hba.open("a") as fh:
                fh.write(f"host    replication     {REPLICATION_ROLE}    127.0.0.1/32    scram-sha-256\n")
            reload = True
        admin = create_engine(self.url("postgres"), isolation_level="AUTOCOMMIT", poolclass=NullPool)
        try:
            with admin.connect() as conn:
                wal_level = conn.execute(text("SHOW wal_level")).scalar()
                senders = int(conn.execute(text("SHOW max_wal_senders")).scalar())
                if wal_level == "minimal" or senders < 2:
                    conn.execute(text("ALTER SYSTEM SET wal_level = 'replica'"))
                    conn.execute(text("ALTER SYSTEM SET max_wal_senders = 10"))
                    raise ClusterError("the private cluster was started without replication (wal_level "
                                       f"{wal_level}, max_wal_senders {senders}); it is now configured for it: "
                                       "restart it (zhcharge db stop && zhcharge db start), then start the replica")
                exists = conn.execute(text("SELECT 1 FROM pg_roles WHERE rolname = :r"), {"r": REPLICATION_ROLE}).scalar()
                verb = "ALTER" if exists else "CREATE"
                pw = password.replace("'", "''")
                conn.execute(text(f"{verb} ROLE {REPLICATION_ROLE} WITH REPLICATION LOGIN PASSWORD '{pw}'"))
                if conn.execute(text("SHOW max_slot_wal_keep_size")).scalar() == "-1":
                    conn.execute(text(f"ALTER SYSTEM SET max_slot_wal_keep_size = '{REPLICA_WAL_KEEP}'"))
                    reload = True
                if reload:
                    conn.execute(text("SELECT pg_reload_conf()"))
        finally:
            admin.dispose()
        return password

    def drop_slot(self, slot: str) -> bool:
        """Drop a replication slot nobody uses (a replica that was deleted); True when dropped."""
        from sqlalchemy import create_engine, text
        from sqlalchemy.pool import NullPool

        admin = create_engine(self.url("postgres"), isolation_level="AUTOCOMMIT", poolclass=NullPool)
        try:
            with admin.connect() as conn:
                return bool(conn.execute(text("SELECT pg_drop_replication_slot(slot_name) FROM pg_replication_slots "
                                              "WHERE slot_name = :s AND NOT active"), {"s": slot}).rowcount)
        finally:
            admin.dispose()


REPLICATION_ROLE = "zhcharge_replication"
REPLICA_WAL_KEEP = "4GB"  # WAL a stopped replica's slot may hold on the primary before it is given up


@dataclass
class ReplicaStatus(Status):
    in_recovery: bool | None = None
    replay_lag_bytes: int | None = None
    replay_delay_s: float | None = None
    upstream: str = ""
    receiver: str | None = None  # its WAL receiver's status (pg_stat_wal_receiver), None when it has none

    def describe(self) -> str:
        if not self.initialised:
            return f"no replica at {self.data_dir} (run `zhcharge db replica start`)"
        if not self.running:
            return f"stopped, data in {self.data_dir}"
        if self.in_recovery is None:  # no answer: e.g. replaying WAL up to a consistent state after the copy
            state = "not answering yet (still recovering? see its log/)"
        elif not self.in_recovery:
            state = "NOT in recovery (promoted?)"
        elif self.receiver == "streaming":
            state = "streaming"
        else:  # e.g. its primary restarted: the WAL receiver retries every 5 s (wal_retrieve_retry_interval)
            state = f"in recovery but not streaming (WAL receiver {self.receiver or 'not running'})"
        lag = "" if self.replay_lag_bytes is None else f", {self.replay_lag_bytes} bytes of WAL behind the primary"
        return (f"running (pid {self.pid}) on 127.0.0.1:{self.port}, {state} from {self.upstream}{lag}, "
                f"data in {self.data_dir}")


class Replica(Cluster):
    """A streaming read replica of the private cluster: ``pg_basebackup -R`` into ``.data/pg-replica``,
    listening on ``ZHCHARGE_PG_REPLICA_PORT`` (default the primary's port + 1), fed through the
    physical replication slot ``zhcharge_replica``. Same roles, passwords and databases as the
    primary (it is a copy); read-only."""

    SLOT = "zhcharge_replica"
    # a fresh copy of a busy primary replays the WAL written during the copy before it answers
    START_TIMEOUT_S = 3600

    def __init__(self, settings: DatabaseSettings) -> None:
        super().__init__(settings)
        self.primary = Cluster(settings)
        self.data_dir = settings.replica_dir.resolve()
        self.port = settings.pg_replica_port or settings.pg_port + 1

    def init(self) -> bool:
        """Copy the running primary with ``pg_basebackup -R`` unless the copy exists."""
        if (self.data_dir / "PG_VERSION").exists():
            return False
        if not self.primary.status().running:
            raise ClusterError("the private cluster is not running: start it first (zhcharge db start)")
        password = self.primary.ensure_replication()
        self.primary.drop_slot(self.SLOT)  # left by a replica deleted by hand
        shutil.rmtree(self.data_dir, ignore_errors=True)
        self.data_dir.mkdir(parents=True)
        self._make_traversable(self.data_dir.parent)
        self._owner_setup(self.data_dir)
        os.chmod(self.data_dir, 0o700)
        try:
            self._run([str(_find_bindir() / "pg_basebackup"), "-D", str(self.data_dir), "-h", "127.0.0.1",
                       "-p", str(self.primary.port), "-U", REPLICATION_ROLE, "--no-password", "-X", "stream",
                       "-R", "-C", "-S", self.SLOT, "--checkpoint=fast"],
                      env={"PGPASSWORD": password, "PGAPPNAME": "zhcharge-replica"}, timeout=3600)
        except ClusterError:
            shutil.rmtree(self.data_dir, ignore_errors=True)
            raise
        with (self.data_dir / "postgresql.conf").open("a") as fh:
            fh.write("\n# zhcharge read replica (zhcharge db replica)\n"
                     f"port = {self.port}\n"
                     "hot_standby = on\n"
                     "hot_standby_feedback = on\n"
                     "max_standby_streaming_delay = 30s\n"
                     "cluster_name = 'zhcharge-replica'\n")
        return True

    def _ensure_database(self) -> None:
        """A standby has the primary's databases and cannot create any."""

    def reset(self) -> None:
        """Stop the replica, delete its copy and its slot on the primary (when that runs)."""
        self.stop()
        if self.data_dir.exists():
            shutil.rmtree(self.data_dir)
        if self.primary.status().running:
            self.primary.drop_slot(self.SLOT)

    def status(self) -> ReplicaStatus:
        base = super().status()
        out = ReplicaStatus(**vars(base), upstream=f"127.0.0.1:{self.primary.port}")
        if not base.running:
            return out
        import psycopg2

        try:
            with contextlib.closing(psycopg2.connect(host="127.0.0.1", port=self.port, user=self.settings.pg_user,
                                                     password=self.password(), dbname="postgres",
                                                     connect_timeout=3)) as conn, conn.cursor() as cur:
                cur.execute("SELECT pg_is_in_recovery(), pg_last_wal_replay_lsn()::text, "
                            "extract(epoch FROM now() - pg_last_xact_replay_timestamp()), "
                            "(SELECT status FROM pg_stat_wal_receiver)")
                out.in_recovery, replay, delay, out.receiver = cur.fetchone()
                out.replay_delay_s = float(delay) if delay is not None else None
            if replay and self.primary.status().running:
                with contextlib.closing(psycopg2.connect(
                        host="127.0.0.1", port=self.primary.port, user=self.settings.pg_user,
                        password=self.password(), dbname="postgres", connect_timeout=3)) as conn, conn.cursor() as cur:
                    cur.execute("SELECT pg_wal_lsn_diff(pg_current_wal_lsn(), %s::pg_lsn)::bigint", (replay,))
                    out.replay_lag_bytes = max(0, int(cur.fetchone()[0]))
        except psycopg2.Error:
            pass
        return out


_DB_NAME = re.compile(r"^[A-Za-z0-9_]{1,63}$")


def ensure_database(server_url: str, name: str, *, exist_ok: bool = True) -> str:
    """Create database ``name`` on the server of ``server_url`` (UTF-8, ``C.UTF-8`` so pg_trgm
    indexes Chinese) unless it exists; returns its SQLAlchemy URL. ``exist_ok=False`` insists on
    a new, empty database (the CREATE fails otherwise)."""
    from sqlalchemy import create_engine, make_url, text
    from sqlalchemy.pool import NullPool

    if not _DB_NAME.match(name):
        raise ClusterError(f"database names are letters, digits and underscores, got {name!r}")
    url = make_url(server_url)
    admin = create_engine(url.set(database="postgres"), isolation_level="AUTOCOMMIT", poolclass=NullPool)
    try:
        with admin.connect() as conn:
            exists = exist_ok and conn.execute(text("SELECT 1 FROM pg_database WHERE datname = :n"),
                                               {"n": name}).scalar()
            if not exists:
                conn.execute(text(f'CREATE DATABASE "{name}" TEMPLATE template0 ENCODING \'UTF8\' '
                                  "LC_COLLATE 'C.UTF-8' LC_CTYPE 'C.UTF-8'"))
    finally:
        admin.dispose()
    return url.set(database=name).render_as_string(hide_password=False)


def database_url(settings: DatabaseSettings, *, start: bool = False) -> str:
    """The SQLAlchemy URL to use: the external one when set, else the private cluster's."""
    if settings.database_url:
        url = settings.database_url
        if url.startswith("postgresql://") or url.startswith("postgres://"):
            url = "postgresql+psycopg2://" + url.split("://", 1)[1]
        return url
    cluster = Cluster(settings)
    if start:
        cluster.start()
    if not cluster.password_file.exists():
        raise ClusterError("the private database has not been created yet: run `zhcharge db start` "
                           "(or set ZHCHARGE_DATABASE_URL).")
    return cluster.url()


def libpq_url(url: str) -> str:
    """The libpq form of a SQLAlchemy URL (what ``psql``, ``pg_dump`` and other libpq programs take).

    >>> libpq_url("postgresql+psycopg2://u:p%40ss@127.0.0.1:54329/zhcharge")
    'postgresql://u:p%40ss@127.0.0.1:54329/zhcharge'
    >>> libpq_url("postgresql://h/db")
    'postgresql://h/db'
    """
    scheme, sep, rest = url.partition("://")
    return ("postgresql" + sep + rest) if sep and scheme.startswith("postgres") else url
