"""Settings, one class per concern, all read from ``ZHCHARGE_*`` environment variables.

Nothing here is built at import time: :func:`load_settings` (called by ``create_app`` and the
CLI) reads the environment when it is called, so tests can set variables first.
"""

from __future__ import annotations

import re
from pathlib import Path

from pydantic import AliasChoices, Field
from pydantic_settings import BaseSettings, SettingsConfigDict

__all__ = [
    "AppSettings",
    "DatabaseSettings",
    "FeedSettings",
    "MailSettings",
    "SearchSettings",
    "Settings",
    "TileSettings",
    "AccountSettings",
    "SubsidySettings",
    "SupervisionSettings",
    "ExportSettings",
    "OcpiSettings",
    "UpstreamSettings",
    "load_settings",
    "check_production",
    "ConfigurationError",
    "DEV_SECRET_KEY",
    "DEV_OPERATOR_ID",
    "upward_operator_id",
]

DEV_SECRET_KEY = "dev-only-change-me-zhcharge-secret"
MIN_SECRET_KEY_CHARS = 32
#: our OperatorID outside production (``ZHCHARGE_OPERATOR_ID``): plainly not a real organisation code
DEV_OPERATOR_ID = "ZHCHARGE0"

PROJECT_ROOT = Path(__file__).resolve().parent.parent


def _config(prefix: str = "ZHCHARGE_") -> SettingsConfigDict:
    return SettingsConfigDict(env_prefix=prefix, extra="ignore", populate_by_name=True)


class DatabaseSettings(BaseSettings):
    """Where the database is. Without ``ZHCHARGE_DATABASE_URL`` the private cluster is used."""

    model_config = _config()

    database_url: str | None = Field(default=None, description="SQLAlchemy URL of an external PostGIS")
    data_dir: Path = Field(default=PROJECT_ROOT / ".data", description="where the private cluster lives")
    pg_port: int = Field(default=54329, description="loopback port of the private cluster")
    pg_database: str = "zhcharge"
    pg_user: str = "zhcharge"
    pool_size: int = 10
    max_overflow: int = 10
    statement_timeout_ms: int = 30_000

    # --- scaling out (README "Running at scale") ---------------------------------------------
    read_database_url: str | None = Field(default=None, description="a streaming replica of the database: "
                                          "public read-only traffic goes there (ZHCHARGE_READ_DATABASE_URL)")
    read_max_lag_s: float = Field(default=5.0, description="a replica further behind than this serves no reads "
                                  "(they go to the primary) until it catches up")
    read_check_s: float = Field(default=1.0, description="how often each process checks the replica's state and lag")
    direct_database_url: str | None = Field(default=None, description="the primary without a pooler in between, "
                                            "for LISTEN (tile data versions); default: the database URL, or the "
                                            "private cluster itself when that sits behind PgBouncer")
    pgbouncer: bool = Field(default=False, validation_alias=AliasChoices("ZHCHARGE_DB_PGBOUNCER", "pgbouncer"),
                            description="the database URLs go through PgBouncer in transaction mode: "
                            "no startup options, no session settings, no server-side prepared statements")
    prepared: bool | None = Field(default=None, validation_alias=AliasChoices("ZHCHARGE_DB_PREPARED", "prepared"),
                                  description="PREPARE the hot fixed statements (station detail, "
                                  "tiles) once per connection; default on, off behind PgBouncer")
    pg_replica_port: int | None = Field(default=None, description="port of the private cluster's read replica "
                                     "(zhcharge db replica); default ZHCHARGE_PG_PORT + 1")
    pgbouncer_port: int | None = Field(default=None, description="port of the private PgBouncer "
                                       "(zhcharge db pgbouncer); default ZHCHARGE_PG_PORT + 2")

    @property
    def cluster_dir(self) -> Path:
        return self.data_dir / "pg"

    @property
    def replica_dir(self) -> Path:
        return self.data_dir / "pg-replica"

    @property
    def embedded(self) -> bool:
        return not self.database_url

    @property
    def use_prepared(self) -> bool:
        """Whether to PREPARE statements on our connections (never through a transaction pooler)."""
        return (not self.pgbouncer) if self.prepared is None else bool(self.prepared)


class AppSettings(BaseSettings):
    model_config = _config()

    env: str = Field(default="dev", description="dev | test | prod")
    secret_key: str = Field(default=DEV_SECRET_KEY, description="signs cookies; in prod at least 32 characters")
    host: str = "127.0.0.1"
    port: int = 8000
    public_url: str = Field(default="http://127.0.0.1:8000", description="how the outside reaches us")
    upload_dir: Path = Field(default=PROJECT_ROOT / ".data" / "uploads")
    run_scheduler: bool = Field(default=True, description="run background jobs in this process")
    city_adcode: int = 440400
    cors_origins: list[str] = ["*"]
    trusted_proxies: str = Field(default="", description="comma-separated addresses/CIDRs of our own proxies "
                                 "(load balancers) whose X-Forwarded-For is believed; default none")
    operator_id: str = Field(default=DEV_OPERATOR_ID, description="our own T/CEC 102 OperatorID (9 characters, "
                             "the organisation code): what we sign our pushes to higher platforms with "
                             "(ZHCHARGE_OPERATOR_ID); in prod without it nothing is pushed upward")

    @property
    def trusted_proxy_list(self) -> list[str]:
        return [p.strip() for p in self.trusted_proxies.split(",") if p.strip()]


class FeedSettings(BaseSettings):
    """T/CEC 102 interconnection feed."""

    model_config = _config("ZHCHARGE_FEED_")

    sync_interval_s: int = 300
    status_interval_s: int = 60
    timeout_s: float = 10.0
    retries: int = 3
    backoff_s: float = 0.5
    circuit_failures: int = 3
    circuit_open_s: int = 300
    page_size: int = 50
    timestamp_window_s: int = 600
    max_body_bytes: int = 2 * 1024 * 1024
    """Largest request body the receiver reads; larger ones get Ret 4003 with HTTP 413."""
    check_max_body_bytes: int = 32 * 1024 * 1024
    """The same for check_charge_orders, whose list of a busy day is larger (50,000 orders: ~5 MB)."""

    token_ttl_s: int = 7200
    api_version: str = "v20160701"
    overlap_s: int = 60
    """LastQueryTime is the start of the previous successful pull minus this overlap."""
    operator_budget_s: float = 300.0
    """One operator's pull gives up after this long, so it never stalls the others."""
    max_workers: int = 8
    """Operators pulled at the same time."""
    status_batch: int = 50
    """StationIDs per query_station_status request (the protocol allows at most 50)."""
    token_margin_s: int = 60
    """Renew a cached AccessToken this long before it expires."""
    db_retry_s: float = 30.0
    """How long a sync keeps retrying a write while the database is unreachable."""
    write_chunk: int = 1000
    """Stations written per transaction during a pull."""
    policy_concurrency: int = 8
    """query_equip_business_policy requests in flight at once per operator (one per connector)."""
    policy_interval_s: int = 86400
    """Business policies are pulled again this long after the last pull (and after each full sync)."""
    policy_budget_s: float = 900.0
    """One operator's policy pull gives up after this long."""


class TileSettings(BaseSettings):
    model_config = _config("ZHCHARGE_TILES_")

    max_zoom: int = 22
    cluster_below_zoom: int = 12
    cluster_cell_px: int = 64
    cache_bytes: int = 64 * 1024 * 1024
    max_age_s: int = 30
    max_features: int = 20_000
    basemap_style_url: str | None = None
    cdn_max_age_s: int = 60
    stale_while_revalidate_s: int = 30
    version_poll_s: float = Field(default=1.0, description="data-version poll interval when LISTEN is down")
    tilejson_maxzoom: int = Field(default=16, description="maxzoom advertised to clients; they overzoom beyond")
    sse_min_interval_s: float = Field(default=2.0, description="at most one live-map version event this often")
    basemap_crs: str = Field(default="wgs84", description="datum of basemap_style_url: wgs84, or gcj02 (Amap, Tencent)")
    pmtiles_url: str | None = Field(default=None, description="a PMTiles archive of the station layer "
                                    "(`zhcharge tiles export`) the map draws from, live status on top; a URL the "
                                    "browser can fetch with Range requests (a CDN, or /map/pmtiles/NAME.pmtiles)")


class SearchSettings(BaseSettings):
    model_config = _config("ZHCHARGE_SEARCH_")

    scale_bands: list[int] = [1, 10, 30, 100]
    default_limit: int = 20
    max_limit: int = 500
    max_radius_m: float = 200_000
    max_corridor_m: float = 50_000
    anonymous_rate_per_min: int = 120
    key_rate_per_min: int = 1200
    geojson_max_limit: int = Field(default=10_000, description="largest page of /api/v1/stations.geojson")
    cluster_hour: int = Field(default=4, ge=-1, le=23, description=(
        "hour (China time) of the daily re-ordering of the search table in space (services.search.maintenance); "
        "-1: never"))


class MailSettings(BaseSettings):
    """Outgoing mail and SMS. Without an SMTP host, messages go to the database outbox."""

    model_config = _config("ZHCHARGE_MAIL_")

    smtp_host: str | None = None
    smtp_port: int = 25
    smtp_tls: bool = False
    smtp_starttls: bool = False
    smtp_user: str | None = None
    smtp_password: str | None = None
    sender: str = "noreply@zhcharge.local"
    sms_gateway: str = Field(default="outbox", description="outbox | http")
    sms_url: str | None = None


class AccountSettings(BaseSettings):
    model_config = _config("ZHCHARGE_ACCOUNTS_")

    session_days: int = 7
    code_ttl_s: int = 600
    code_attempts: int = 5
    code_resend_s: int = 60
    slow_after: int = Field(default=3, description="failures of one account from one address before each try waits")
    lockout_failures: int = Field(default=5, description="failures from one address that lock the account there")
    lockout_s: int = 900
    account_failures_per_hour: int = Field(default=100, description="failures from all addresses that lock "
                                           "the account everywhere (the owner unlocks with a code)")


class SubsidySettings(BaseSettings):
    model_config = _config("ZHCHARGE_SUBSIDY_")


class SupervisionSettings(BaseSettings):
    model_config = _config("ZHCHARGE_SUPERVISION_")

    fault_threshold_min: int = 60
    fee_cap_yuan_per_kwh: float = 2.0
    fee_cap_basis: str = Field(default="total", description="what the cap limits: total (electricity + service) or service")
    snapshot_interval_s: int = Field(default=300, description="connector-state snapshots for the online-rate chart")
    snapshot_keep_days: int = 31
    feedback_per_ip_per_hour: int = 5
    feedback_max_chars: int = 2000
    feedback_max_photos: int = 3
    feedback_photo_max_bytes: int = 3 * 1024 * 1024
    proof_max_bytes: int = 10 * 1024 * 1024
    proof_max_files: int = 10
    archive_max_distance_m: float = 200.0


class ExportSettings(BaseSettings):
    """Open dumps of the public dataset and their daily snapshots (``services.exports``)."""

    model_config = _config("ZHCHARGE_EXPORTS_")

    snapshot_dir: Path | None = Field(default=None, description="where daily snapshots are written; default "
                                      "<ZHCHARGE_DATA_DIR>/exports (storage every worker sees)")
    keep_days: int = Field(default=30, description="snapshots older than this many days are deleted")
    check_interval_s: float = Field(default=600.0, description="how often the daily job looks for a missing "
                                    "snapshot of the day (China time)")


class OcpiSettings(BaseSettings):
    """OCPI 2.2.1 Sender of Locations and Tariffs (``services.ocpi``)."""

    model_config = _config("ZHCHARGE_OCPI_")

    default_limit: int = Field(default=100, description="objects per page when a client gives no limit")
    max_limit: int = Field(default=500, description="largest page (X-Limit); larger limits are lowered to it")
    city: str = Field(default="珠海市", description="Location.city of the platform's stations")


class UpstreamSettings(BaseSettings):
    """zhcharge as the data provider of higher platforms through T/CEC 102 (``ingest.upstream``)."""

    model_config = _config("ZHCHARGE_UPSTREAM_")

    token_ttl_s: int = Field(default=7200, description="how long an AccessToken we issue to a platform is valid "
                             "(at most 7 days)")
    max_page_size: int = Field(default=500, description="largest query_stations_info page; a larger PageSize is "
                               "lowered to it (PageCount follows)")
    max_stats_days: int = Field(default=366, description="longest StartTime..EndTime of query_station_stats")
    push_interval_s: float = Field(default=2.0, description="the status push job runs this often: the changes "
                                   "of each interval go out together")
    push_batch: int = Field(default=500, description="notifications read from the queue at a time per platform")
    push_concurrency: int = Field(default=8, description="notifications in flight at once per platform")
    push_timeout_s: float = 10.0
    push_retries: int = Field(default=3, description="retries of one notification (Ret -1/500, HTTP 5xx, "
                              "network), with exponential backoff from push_backoff_s")
    push_backoff_s: float = 0.5
    push_max_backoff_s: float = Field(default=300.0, description="a platform that keeps failing is tried again "
                                      "after 2, 4, 8 ... seconds, at most this long")
    push_budget_s: float = Field(default=60.0, description="one run spends at most this long on one platform")


class Settings:
    """All settings of one app instance."""

    def __init__(self, **overrides: object) -> None:
        self.db: DatabaseSettings = overrides.pop("db", None) or DatabaseSettings()  # type: ignore[assignment]
        self.app: AppSettings = overrides.pop("app", None) or AppSettings()  # type: ignore[assignment]
        self.feed: FeedSettings = overrides.pop("feed", None) or FeedSettings()  # type: ignore[assignment]
        self.tiles: TileSettings = overrides.pop("tiles", None) or TileSettings()  # type: ignore[assignment]
        self.search: SearchSettings = overrides.pop("search", None) or SearchSettings()  # type: ignore[assignment]
        self.mail: MailSettings = overrides.pop("mail", None) or MailSettings()  # type: ignore[assignment]
        self.accounts: AccountSettings = overrides.pop("accounts", None) or AccountSettings()  # type: ignore[assignment]
        self.subsidy: SubsidySettings = overrides.pop("subsidy", None) or SubsidySettings()  # type: ignore[assignment]
        self.supervision: SupervisionSettings = overrides.pop("supervision", None) or SupervisionSettings()  # type: ignore[assignment]
        self.exports: ExportSettings = overrides.pop("exports", None) or ExportSettings()  # type: ignore[assignment]
        self.ocpi: OcpiSettings = overrides.pop("ocpi", None) or OcpiSettings()  # type: ignore[assignment]
        self.upstream: UpstreamSettings = overrides.pop("upstream", None) or UpstreamSettings()  # type: ignore[assignment]
        if overrides:
            raise TypeError(f"unknown settings groups: {sorted(overrides)}")


class ConfigurationError(RuntimeError):
    """The settings cannot run safely (e.g. production without a real secret key)."""


def check_production(settings: Settings) -> None:
    """Refuse to run ``ZHCHARGE_ENV=prod`` with a secret key that is unset, the dev default or short,
    or with an OperatorID (``ZHCHARGE_OPERATOR_ID``) that is not 9 letters or digits; without one
    the app runs and pushes nothing to higher platforms (:func:`upward_operator_id`).

    >>> s = Settings(app=AppSettings(env="prod", secret_key="x" * 40, operator_id="MA5ZHCITY"))
    >>> check_production(s)
    >>> check_production(Settings(app=AppSettings(env="prod", secret_key="x" * 40, operator_id="MA5ZH")))
    Traceback (most recent call last):
    ...
    services.settings.ConfigurationError: ZHCHARGE_OPERATOR_ID must be our 9-character OperatorID (organisation code, letters and digits) in production (ZHCHARGE_ENV=prod); it is 'MA5ZH'
    >>> check_production(Settings(app=AppSettings(env="prod")))
    Traceback (most recent call last):
    ...
    services.settings.ConfigurationError: ZHCHARGE_SECRET_KEY must be set in production (ZHCHARGE_ENV=prod): it is the development default
    """
    env = settings.app.env
    if env not in ("dev", "test", "prod"):
        raise ConfigurationError(f"ZHCHARGE_ENV must be dev, test or prod, not {env!r}")
    if env != "prod":
        return
    key = settings.app.secret_key or ""
    if not key or key == DEV_SECRET_KEY:
        raise ConfigurationError("ZHCHARGE_SECRET_KEY must be set in production (ZHCHARGE_ENV=prod): "
                                 "it is " + ("empty" if not key else "the development default"))
    if len(key) < MIN_SECRET_KEY_CHARS:
        raise ConfigurationError(f"ZHCHARGE_SECRET_KEY must be at least {MIN_SECRET_KEY_CHARS} characters in "
                                 f"production (it has {len(key)}); e.g. python -c 'import secrets; "
                                 "print(secrets.token_urlsafe(48))'")
    try:
        from ipaddress import ip_network

        for p in settings.app.trusted_proxy_list:
            ip_network(p, strict=False)
    except ValueError as exc:
        raise ConfigurationError(f"ZHCHARGE_TRUSTED_PROXIES: {exc}") from None
    operator_id = settings.app.operator_id or ""
    if operator_id != DEV_OPERATOR_ID and not re.fullmatch(r"[0-9A-Za-z]{9}", operator_id):
        raise ConfigurationError("ZHCHARGE_OPERATOR_ID must be our 9-character OperatorID (organisation code, "
                                 f"letters and digits) in production (ZHCHARGE_ENV=prod); it is {operator_id[:40]!r}")


def upward_operator_id(settings: Settings) -> str | None:
    """Our OperatorID for pushes to higher platforms, or ``None`` when production has none: the app
    then starts (a platform that only reads this city needs none) but pushes nothing upward.

    >>> upward_operator_id(Settings(app=AppSettings(env="prod", operator_id="MA5ZHCITY")))
    'MA5ZHCITY'
    >>> upward_operator_id(Settings(app=AppSettings(env="prod"))) is None
    True
    >>> upward_operator_id(Settings(app=AppSettings(env="dev")))
    'ZHCHARGE0'
    """
    operator_id = settings.app.operator_id or DEV_OPERATOR_ID
    if operator_id == DEV_OPERATOR_ID and settings.app.env == "prod":
        return None
    return operator_id

def load_settings() -> Settings:
    """Read every settings group from the environment now."""
    return Settings()
