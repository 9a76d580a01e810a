"""Where public reads go: a streaming replica when it is up and caught up, otherwise the primary.

With ``ZHCHARGE_READ_DATABASE_URL`` set, every app process keeps a :class:`ReplicaMonitor`: a daemon
thread that, every ``ZHCHARGE_READ_CHECK_S`` (1 s), samples the primary's WAL position and asks the
replica how far it has replayed. The lag is the age of the newest primary sample the replica has
replayed past, so it is measured in time on the primary's clock, is zero when an idle primary has
nothing to send, and needs nothing from the replica's side but its replay position (any physical
replica of the primary will do, cascaded or not). The replica serves reads while it is in
recovery, answers, and lags at most ``ZHCHARGE_READ_MAX_LAG_S``; otherwise reads fall back to the
primary. When the primary itself cannot be reached, the replica serves whatever its lag: it is the
freshest copy there is.

:class:`ReadRouter` hands out the database of a public read (``portal_site.routing`` decides which
requests are public reads). A request whose answer is keyed by a data version the primary announced
(the open API's ETags carry the version its rate-limit statement read on the primary) only reads
from a replica that has replayed that version, otherwise it would cache old rows under a new ETag.
That check runs in the handler's thread when the database is first used (:class:`ReadDatabase`),
never on the event loop. The replica's engine falls back by itself too: a connection it cannot
open is opened on the primary instead (and dropped once the replica is back), so a replica that
stops between two checks fails no request.
"""

from __future__ import annotations

import collections
import contextlib
import logging
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

import psycopg2
from sqlalchemy import Engine, create_engine, event, text
from sqlalchemy.engine import URL, make_url
from sqlalchemy.exc import DisconnectionError, SQLAlchemyError
from sqlalchemy.orm import Session

from services.db import Database, configure_engine, connect_args
from services.settings import DatabaseSettings

__all__ = ["ReadDatabase", "ReadRouter", "ReplicaMonitor", "ReplicaState", "dbapi_kwargs", "direct_url", "lsn_int",
           "make_read_engine"]

log = logging.getLogger("zhcharge.db")

# works on a primary too (pg_last_wal_replay_lsn() is NULL there): a read URL that points at a primary is
# "not a standby", not "down"
_REPLICA_CHECK = ("SELECT pg_is_in_recovery(), CASE WHEN pg_is_in_recovery() THEN pg_last_wal_replay_lsn()::text "
                  "END")
_VERSIONS = "SELECT layer, version FROM data_versions"


def lsn_int(lsn: str | None) -> int | None:
    """A ``pg_lsn`` text as an integer.

    >>> lsn_int("16/B374D848"), lsn_int("0/0"), lsn_int(None)
    (97500059720, 0, None)
    """
    if not lsn:
        return None
    hi, _, lo = lsn.partition("/")
    return (int(hi, 16) << 32) | int(lo, 16)


def dbapi_kwargs(url: str | URL) -> dict[str, Any]:
    """``psycopg2.connect()`` arguments of a SQLAlchemy URL (host, port, user, password, dbname, query)."""
    u = make_url(url) if isinstance(url, str) else url
    kw: dict[str, Any] = {k: v for k, v in u.translate_connect_args(username="user", database="dbname").items()
                          if v is not None}
    kw.update({k: v for k, v in u.query.items() if isinstance(v, str)})
    return kw


@dataclass
class ReplicaState:
    """What the last check found (``state``: off, starting, streaming, lagging, down, not_standby)."""

    state: str = "off"
    lag_s: float | None = None
    primary_reachable: bool = True
    checked_at: float = 0.0  # time.monotonic() of the check
    error: str | None = None
    versions: dict[str, int] = field(default_factory=dict)

    def serves_reads(self) -> bool:
        if self.state == "streaming":
            return True
        # a lagging replica still beats an unreachable primary
        return self.state == "lagging" and not self.primary_reachable


class ReplicaMonitor:
    """Checks the replica's state and lag every ``check_s`` in a daemon thread (see the module docstring)."""

    def __init__(self, primary_url: str | URL, replica_url: str | URL, settings: DatabaseSettings) -> None:
        self.settings = settings
        self.max_lag_s = settings.read_max_lag_s
        self.check_s = max(0.05, settings.read_check_s)
        self._primary_kw = {**dbapi_kwargs(primary_url),
                            **connect_args(settings, application_name="zhcharge-monitor", connect_timeout=2)}
        self._replica_kw = {**dbapi_kwargs(replica_url),
                            **connect_args(settings, application_name="zhcharge-monitor", connect_timeout=2)}
        self.state = ReplicaState(state="starting")
        # (monotonic time, primary WAL position) samples, newest last, covering a few lag bounds
        self._samples: collections.deque[tuple[float, int]] = collections.deque(
            maxlen=max(16, int(4 * max(self.max_lag_s, 1.0) / self.check_s) + 4))
        self._conns: dict[str, Any] = {}
        self._stop = threading.Event()
        self._wake = threading.Event()
        self._thread: threading.Thread | None = None
        self._lock = threading.Lock()

    # --- lifecycle -----------------------------------------------------------------------------
    def start(self) -> None:
        self.check()  # route the very first requests right
        for _ in range(5):  # a replica a little behind the first sample is usually past it a moment later
            if self.state.state != "starting":
                break
            time.sleep(0.1)
            self.check()
        if self._thread is None:
            self._thread = threading.Thread(target=self._run, name="replica-monitor", daemon=True)
            self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        self._wake.set()
        if self._thread is not None:
            self._thread.join(timeout=5)
            self._thread = None
        for conn in self._conns.values():
            with contextlib.suppress(Exception):
                conn.close()
        self._conns.clear()

    def _run(self) -> None:
        while not self._stop.is_set():
            self._wake.wait(self.check_s)
            self._wake.clear()
            if self._stop.is_set():
                return
            try:
                self.check()
            except Exception:  # noqa: BLE001 - the monitor must survive anything
                log.exception("replica check failed")

    def mark_down(self, reason: str) -> None:
        """A request could not use the replica: stop routing to it until the next check says otherwise
        (which is brought forward)."""
        with self._lock:
            if self.state.state in ("streaming", "lagging"):
                log.warning("read replica unusable (%s); reads go to the primary", reason)
                self.state = ReplicaState(state="down", primary_reachable=self.state.primary_reachable,
                                          checked_at=time.monotonic(), error=reason, versions=self.state.versions)
        self._wake.set()

    # --- one check -----------------------------------------------------------------------------
    def _query(self, which: str, sql: str) -> list[tuple]:
        conn = self._conns.get(which)
        try:
            if conn is None or conn.closed:
                conn = psycopg2.connect(**(self._primary_kw if which == "primary" else self._replica_kw))
                conn.autocommit = True
                self._conns[which] = conn
            with conn.cursor() as cur:
                cur.execute(sql)
                return cur.fetchall()
        except psycopg2.Error:
            if conn is not None:
                with contextlib.suppress(Exception):
                    conn.close()
            self._conns.pop(which, None)
            raise

    def check(self) -> ReplicaState:
        """Sample the primary, then ask the replica; update and return :attr:`state`."""
        now = time.monotonic()
        primary_ok = True
        try:
            lsn = lsn_int(self._query("primary", "SELECT pg_current_wal_lsn()::text")[0][0])
            if lsn is not None:
                self._samples.append((now, lsn))
        except psycopg2.Error:
            primary_ok = False
        new = ReplicaState(primary_reachable=primary_ok, checked_at=now, versions=dict(self.state.versions))
        try:
            in_recovery, replay = self._query("replica", _REPLICA_CHECK)[0]
            with contextlib.suppress(psycopg2.Error):
                new.versions = {layer: int(v) for layer, v in self._query("replica", _VERSIONS)}
        except psycopg2.Error as exc:
            new.state, new.error = "down", _first_line(exc)
        else:
            if not in_recovery:
                new.state, new.error = "not_standby", "the read URL is not a standby (promoted, or a primary)"
            elif not primary_ok:
                new.state = "streaming"  # how far behind is unknown, and it is the freshest copy there is
            else:
                new.lag_s = self._lag(lsn_int(replay), time.monotonic())
                if new.lag_s is None:  # behind the first samples: not known to be within the bound yet
                    new.state, new.error = "starting", "behind every WAL position sampled so far"
                else:
                    new.state = "lagging" if new.lag_s > self.max_lag_s else "streaming"
        with self._lock:
            old = self.state
            self.state = new
        if new.state != old.state and (old.state, new.state) != ("starting", "streaming"):
            log.warning("read replica: %s%s", new.state, f" ({new.error})" if new.error else
                        (f" (lag {new.lag_s:.1f} s)" if new.lag_s else ""))
        return new

    def _lag(self, replay: int | None, now: float) -> float | None:
        """Seconds since the primary was at a WAL position the replica has replayed (0 when it has
        replayed the latest sample); None when no sample is old enough to tell.

        A replica behind every sample kept is at least ``now - oldest`` behind: lagging once that
        exceeds the bound, unknown before. A monitor that has just started holds one sample taken a
        moment ago, so a replica that is disconnected and far behind (its primary restarted, say) would
        otherwise look "0 s behind"."""
        if replay is None or not self._samples:
            return None
        for t, lsn in reversed(self._samples):
            if lsn <= replay:
                return 0.0 if t == self._samples[-1][0] else now - t
        at_least = now - self._samples[0][0]
        return at_least if at_least > self.max_lag_s else None

    def note_versions(self, versions: dict[str, int]) -> None:
        with self._lock:
            for layer, v in versions.items():
                if v > self.state.versions.get(layer, 0):
                    self.state.versions[layer] = v


def _first_line(exc: BaseException) -> str:
    return (str(exc).strip().splitlines() or [type(exc).__name__])[0][:200]


def direct_url(settings: DatabaseSettings, url: str | URL) -> str | URL | None:
    """Where to LISTEN (a session that must stay ours): ``ZHCHARGE_DIRECT_DATABASE_URL``, else the
    database URL itself unless that goes through PgBouncer (then None: poll instead)."""
    if settings.direct_database_url:
        u = settings.direct_database_url
        return "postgresql+psycopg2://" + u.split("://", 1)[1] if u.startswith(("postgresql://", "postgres://")) else u
    return None if settings.pgbouncer else url


def make_read_engine(settings: DatabaseSettings, url: str | URL, *, fallback_url: str | URL,
                     usable: Callable[[], bool], failed: Callable[[str], None]) -> Engine:
    """The replica's engine, falling back by itself: a connection that cannot be opened on the
    replica is opened on the primary (``fallback_url``, application_name ``zhcharge-read-fallback``)
    after telling the monitor (``failed``), and such connections are replaced at checkout as soon as
    the replica is ``usable()`` again."""
    replica_kw = {**dbapi_kwargs(url), **connect_args(settings, application_name="zhcharge-read")}
    fallback_kw = {**dbapi_kwargs(fallback_url), **connect_args(settings, application_name="zhcharge-read-fallback")}

    def creator() -> Any:
        try:
            return psycopg2.connect(**replica_kw)
        except psycopg2.OperationalError as exc:
            failed(_first_line(exc))
            conn = psycopg2.connect(**fallback_kw)
            return conn

    engine = create_engine(url, creator=creator, pool_size=settings.pool_size, max_overflow=settings.max_overflow,
                           pool_pre_ping=True, pool_recycle=1800)
    configure_engine(engine, settings)
    fallback_app = "zhcharge-read-fallback"

    @event.listens_for(engine, "connect")
    def _mark(dbapi_conn: Any, record: Any) -> None:
        record.info["zh_read_fallback"] = dbapi_conn.get_dsn_parameters().get("application_name") == fallback_app

    @event.listens_for(engine, "checkout")
    def _back_to_replica(dbapi_conn: Any, record: Any, proxy: Any) -> None:
        if record.info.get("zh_read_fallback") and usable():
            raise DisconnectionError("the replica is back: reconnect to it")

    return engine


class ReadDatabase(Database):
    """The database of one public read: resolved to the replica or the primary on first use (in the
    handler's thread), then fixed for the request. ``primary`` is the primary, for the writes a read
    route still makes (API-key and credentials bookkeeping)."""

    def __init__(self, router: ReadRouter, min_version: int | None = None) -> None:  # noqa: D107 - no super()
        self._router = router
        self._min_version = min_version
        self._chosen: Database | None = None

    def resolve(self) -> Database:
        if self._chosen is None:
            self._chosen = self._router.choose(self._min_version)
        return self._chosen

    @property
    def engine(self) -> Engine:  # type: ignore[override]
        return self.resolve().engine

    @property
    def sessionmaker(self) -> Any:  # type: ignore[override]
        return self.resolve().sessionmaker

    @property
    def primary(self) -> Database:
        return self._router.primary

    @property
    def on_replica(self) -> bool:
        return self.resolve() is self._router.replica

    @contextlib.contextmanager
    def session(self) -> Iterator[Session]:
        with self.resolve().session() as s:
            yield s

    def dispose(self) -> None:
        """Owned by the router."""


class ReadRouter:
    """The primary, the replica (or None) and the monitor; :meth:`database` for a public read."""

    def __init__(self, primary: Database, settings: DatabaseSettings, *, replica_url: str | URL | None = None,
                 primary_url: str | URL | None = None) -> None:
        self.primary = primary
        self.settings = settings
        self.replica: Database | None = None
        self.replica_url: str | URL | None = None
        self.monitor: ReplicaMonitor | None = None
        self.counts: collections.Counter[str] = collections.Counter()
        self._counts_lock = threading.Lock()
        replica_url = replica_url or settings.read_database_url
        if replica_url:
            if isinstance(replica_url, str) and replica_url.startswith(("postgresql://", "postgres://")):
                replica_url = "postgresql+psycopg2://" + replica_url.split("://", 1)[1]
            primary_url = primary_url or primary.engine.url
            self.monitor = ReplicaMonitor(primary_url, replica_url, settings)
            engine = make_read_engine(settings, replica_url, fallback_url=primary_url, usable=self.replica_usable,
                                      failed=self.monitor.mark_down)
            self.replica = Database(engine)
            self.replica_url = replica_url

    @property
    def configured(self) -> bool:
        return self.replica is not None

    def start(self) -> None:
        if self.monitor is not None:
            self.monitor.start()

    def stop(self) -> None:
        if self.monitor is not None:
            self.monitor.stop()
        if self.replica is not None:
            self.replica.dispose()

    # --- decisions -----------------------------------------------------------------------------
    def replica_usable(self) -> bool:
        """Whether public reads may go to the replica now (memory only: safe on the event loop)."""
        return self.monitor is not None and self.monitor.state.serves_reads()

    def database(self, min_version: int | None = None) -> Database:
        """The database for a public read; ``min_version``: the stations data version its answer is keyed by."""
        if self.replica is None:
            return self.primary
        return ReadDatabase(self, min_version)

    def choose(self, min_version: int | None = None) -> Database:
        """Resolve a public read now (may ask the replica for its data version: call off the event loop)."""
        if self.replica is None or not self.replica_usable():
            self.count("primary")
            return self.primary
        if min_version and not self.replica_has(min_version):
            self.count("primary_behind")
            return self.primary
        self.count("replica")
        return self.replica

    def replica_has(self, version: int, layer: str = "stations") -> bool:
        """Whether the replica has replayed ``layer``'s data version ``version`` (asks it when the last
        check saw an older one)."""
        assert self.replica is not None
        if self.known_version(layer) >= version:
            return True
        try:
            with self.replica.engine.connect() as conn:
                if conn.connection.info.get("zh_read_fallback"):
                    return True  # the replica is down and this read runs on the primary anyway
                seen = conn.execute(text("SELECT version FROM data_versions WHERE layer = :l"), {"l": layer}).scalar()
        except SQLAlchemyError as exc:
            self.replica_failed(f"version check: {_first_line(exc)}")
            return False
        self.note_versions({layer: int(seen) if seen is not None else 1})
        return self.known_version(layer) >= version

    def known_version(self, layer: str) -> int:
        """The newest data version of ``layer`` the replica was last seen to have (0: unknown)."""
        return 0 if self.monitor is None else self.monitor.state.versions.get(layer, 0)

    def note_versions(self, versions: dict[str, int]) -> None:
        if self.monitor is not None:
            self.monitor.note_versions(versions)

    def replica_failed(self, reason: str) -> None:
        if self.monitor is not None:
            self.monitor.mark_down(reason)

    def count(self, what: str) -> None:
        with self._counts_lock:
            self.counts[what] += 1

    # --- reporting -----------------------------------------------------------------------------
    def describe(self) -> dict[str, Any]:
        """The replica's state for ``GET /healthz``."""
        if self.monitor is None:
            return {"configured": False, "serving_reads": False}
        st = self.monitor.state
        out: dict[str, Any] = {
            "configured": True, "state": st.state, "serving_reads": self.replica_usable(),
            "lag_s": None if st.lag_s is None else round(st.lag_s, 3), "max_lag_s": self.settings.read_max_lag_s,
            "checked_s_ago": round(time.monotonic() - st.checked_at, 3) if st.checked_at else None,
            "primary_reachable": st.primary_reachable,
            "reads": dict(self.counts),
        }
        if st.error:
            out["error"] = st.error
        return out
