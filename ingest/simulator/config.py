"""Settings of the operator simulator: one dataclass per concern, loadable from JSON."""

from __future__ import annotations

import json
import random
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path
from typing import Any

from ingest.crypto import Secrets

__all__ = ["Faults", "PushTarget", "SimConfig", "default_push_secrets"]

_SECRET_CHARS = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789"


@dataclass
class Faults:
    """Fault injection, changeable at runtime through ``POST /_admin/faults``."""

    slow_seconds: float = 0.0
    """Sleep this long before answering each ``query_stations_info`` page."""
    error_rate: float = 0.0
    """Fraction of interface requests answered HTTP 500 with ``Ret`` 500."""
    bad_signature: bool = False
    """Responses carry a wrong ``Sig``."""
    expire_tokens: bool = False
    """Every AccessToken becomes invalid after its first use (callers see 4002)."""
    mutate_during_sync: bool = False
    """After each ``query_stations_info`` page: change a station's fee and add a new station
    (StationIDs sort by district, so a new station can shift later pages)."""
    fail_next: int = 0
    """The next N interface requests are answered ``Ret`` -1 (busy)."""
    order_overcharge_rate: float = 0.0
    """Fraction of orders billing one detail's service fee 0.20 yuan/kWh above the tariff."""
    order_arithmetic_rate: float = 0.0
    """Fraction of orders with a detail's money ≠ price × energy, or totals that do not add up."""
    order_duplicate_rate: float = 0.0
    """Fraction of orders pushed twice, unchanged."""
    order_revise_rate: float = 0.0
    """Fraction of orders followed by a revised version with other figures."""
    reconcile_omit_rate: float = 0.0
    """Fraction of orders left out of their day's ``check_charge_orders`` list."""
    policy_over_cap: dict[str, int] = field(default_factory=dict)
    """OperatorID -> number of its stations whose policy bills an absurd service fee (3.5
    yuan/kWh, over the city's cap); a list of OperatorIDs means one station each."""
    policy_unsupported: dict[str, str] = field(default_factory=dict)
    """OperatorID -> ``"fail"`` (``query_equip_business_policy`` answers SuccStat 1) or
    ``"missing"`` (the interface is not implemented: Ret 4004, like any unknown interface)."""

    def update(self, values: dict[str, Any]) -> None:
        known = {f.name: f.type for f in fields(self)}
        for key, value in values.items():
            if key not in known:
                raise ValueError(f"unknown fault {key!r}; known: {', '.join(known)}")
            current = getattr(self, key)
            if isinstance(current, dict):
                setattr(self, key, _per_operator(key, value))
                continue
            if isinstance(current, bool):
                value = bool(value)
            elif isinstance(current, int):
                value = int(value)
            else:
                value = float(value)
            if key.endswith("_rate") and not 0.0 <= value <= 1.0:
                raise ValueError(f"{key} must be between 0 and 1")
            if isinstance(value, (int, float)) and not isinstance(value, bool) and value < 0:
                raise ValueError(f"{key} must not be negative")
            setattr(self, key, value)

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


def _per_operator(key: str, value: Any) -> dict[str, Any]:
    """A per-operator fault: ``{OperatorID: value}`` (a list of OperatorIDs for ``policy_over_cap``).

    >>> _per_operator("policy_over_cap", ["MA0000001"]), _per_operator("policy_unsupported", None)
    ({'MA0000001': 1}, {})
    """
    if value is None:
        return {}
    if key == "policy_over_cap" and isinstance(value, list):
        value = {str(op): 1 for op in value}
    if not isinstance(value, dict):
        raise ValueError(f"{key} must be an object of OperatorID -> value")
    out: dict[str, Any] = {}
    for op, v in value.items():
        if key == "policy_over_cap":
            try:
                v = int(v)
            except (TypeError, ValueError):
                raise ValueError(f"{key}[{op!r}] must be a number of stations") from None
            if v < 0:
                raise ValueError(f"{key}[{op!r}] must not be negative")
        elif v not in ("fail", "missing"):
            raise ValueError(f"{key}[{op!r}] must be \"fail\" or \"missing\"")
        if v:
            out[str(op)] = v
    return out


@dataclass
class PushTarget:
    """Where one simulated operator pushes, and the credentials the platform issued to it.

    ``secrets.operator_id`` is the simulated operator's own OperatorID.
    """

    base_url: str
    secrets: Secrets

    def as_dict(self) -> dict[str, Any]:
        return {"base_url": self.base_url, **asdict(self.secrets)}

    @classmethod
    def from_dict(cls, operator_id: str, d: dict[str, Any], default: Secrets | None = None) -> PushTarget:
        base = d.get("base_url") or d.get("push_base_url") or d.get("url")
        if not base:
            raise ValueError("push target needs base_url")
        names = ("operator_secret", "data_secret", "data_iv", "sig_secret")
        if default is None and not all(d.get(n) for n in names):
            raise ValueError(f"push target needs {', '.join(names)}")
        vals = {n: d.get(n) or getattr(default, n) for n in names}
        for n, v in vals.items():
            if n != "operator_secret" and len(str(v).encode("ascii", "replace")) != 16:
                raise ValueError(f"{n} must be 16 ASCII characters")
        return cls(str(base).rstrip("/"), Secrets(d.get("operator_id") or operator_id, **vals))


def default_push_secrets(seed: int, operator_id: str) -> Secrets:
    """Deterministic push credentials for ``--push-url`` without explicit secrets.

    The platform registers these (read them from ``GET /_admin/operators``); a real platform
    would issue its own and set them with ``POST /_admin/push-targets``.
    """
    rng = random.Random(f"push:{seed}:{operator_id}")
    vals = ["".join(rng.choice(_SECRET_CHARS) for _ in range(16)) for _ in range(4)]
    return Secrets(operator_id, *vals)


@dataclass
class SimConfig:
    seed: int = 1
    stations: int = 1500
    operators: int = 6
    host: str = "127.0.0.1"
    port: int = 9100
    token_ttl: int = 7200
    """TokenAvailableTime of issued AccessTokens, seconds."""
    changes_per_second: float = 0.0
    """Connector status changes per second applied by the background task (0 = still)."""
    info_change_probability: float = 0.01
    """Chance that a status change is accompanied by a station info change."""
    platform_operator_id: str = "MA5ZHCITY"
    """The caller's OperatorID (issued by the operators to the city platform)."""
    platform_operator_ids: dict[str, str] = field(default_factory=dict)
    """Per simulated operator override of ``platform_operator_id``."""
    push_url: str | None = None
    """Platform base URL for every operator's pushes (with default push secrets)."""
    push_targets: dict[str, dict[str, Any]] = field(default_factory=dict)
    """Per operator: {"base_url", "operator_secret", "data_secret", "data_iv", "sig_secret"}."""
    push_version: str = "v20160701"
    push_retries: int = 3
    push_backoff_seconds: float = 5.0
    """First retry delay; doubles on each retry."""
    push_timeout_seconds: float = 10.0
    push_queue_max: int = 10000
    push_orders: bool = False
    """Push charge orders (``notification_charge_order_info``) and daily reconciliations
    (``check_charge_orders``) to the push target; off unless the platform serves them."""
    order_retry_backoff_seconds: float = 150.0
    """First retry of an order push; doubles on each retry, up to ``order_retry_max_seconds``."""
    order_retry_max_seconds: float = 3600.0
    reconcile_delay_seconds: float = 600.0
    """Live mode pushes the previous day's reconciliation this long after China midnight."""
    orders_keep_days: int = 2
    """Live mode forgets orders that ended before the last N China days (today included), and
    gives up their unanswered pushes; their days' ``query_station_stats`` turn synthetic again."""
    policy_change_probability: float = 0.0005
    """Chance that a live status change is accompanied by a station's tariff change."""
    clock_window_seconds: int | None = 300
    max_page_size: int = 1000
    admin_remote: bool = False
    """Allow ``/_admin`` from non-loopback clients (never on a shared host)."""
    faults: Faults = field(default_factory=Faults)

    def platform_id_for(self, operator_id: str) -> str:
        return self.platform_operator_ids.get(operator_id, self.platform_operator_id)

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> SimConfig:
        known = {f.name for f in fields(cls)}
        unknown = set(d) - known
        if unknown:
            raise ValueError(f"unknown simulator settings: {', '.join(sorted(unknown))}")
        values = dict(d)
        faults = Faults()
        faults.update(values.pop("faults", None) or {})
        return cls(faults=faults, **values)

    @classmethod
    def from_json(cls, path: str | Path) -> SimConfig:
        return cls.from_dict(json.loads(Path(path).read_text(encoding="utf-8")))
