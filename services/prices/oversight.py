"""Tariffs as the regulators and the operators see them: the city's cap set with an audit trail,
the current tariff versions over the cap in force, and an operator's tariffs per station and
connector with every broken rule and the policy as answered (so they can fix their side).

A tariff is over the cap when its highest price of the day on the cap's basis is above it: the
total (electricity + service) for a ``total`` cap, the service fee alone for a ``service`` cap.
Only current versions (``valid_to IS NULL``) count: a replaced tariff is history.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import date, datetime, time
from decimal import Decimal, InvalidOperation
from typing import Any

from sqlalchemy import text

from services.archives.common import Page
from services.errors import BadRequest
from services.prices.store import set_cap
from services.prices.tariff import CHINA_TZ, MAX_PRICE, Cap, Tariff

__all__ = ["BASES", "CapForm", "NOTE_MAX", "SOURCES", "over_cap", "operator_tariffs", "read_cap_form", "set_city_cap",
           "tariff_counts"]

NOTE_MAX = 500
BASES = {"total": ("电费+服务费", "electricity + service"), "service": ("服务费", "service fee")}
#: where a tariff came from (``connector_tariffs.source``; ``mixed`` for a station's merge of both)
SOURCES = {"policy": ("业务策略", "business policy"), "fee_text": ("收费文本", "fee text"), "mixed": ("混合", "mixed")}

# the highest service fee of each tariff (the table keeps the highest total only)
_TARIFF_MAXIMA = """
WITH t AS (SELECT id, periods, max_total,
                  (SELECT max((p->>'service')::numeric) FROM jsonb_array_elements(periods) p) AS max_service
           FROM tariffs)
"""
_OVER_CAP = text(_TARIFF_MAXIMA + """
SELECT v.operator_id, o.name AS operator_name, c.station_pk, s.station_id, s.name AS station_name, v.tariff_id,
       v.source, t.max_total, t.max_service, t.periods, count(*) AS connectors,
       (array_agg(v.connector_id ORDER BY v.connector_id))[1:20] AS connector_ids,
       min(v.first_seen_at) AS first_seen_at
FROM connector_tariffs v
JOIN t ON t.id = v.tariff_id
LEFT JOIN connectors c ON c.operator_id = v.operator_id AND c.connector_id = v.connector_id
LEFT JOIN stations s ON s.id = c.station_pk
LEFT JOIN operators o ON o.operator_id = v.operator_id
WHERE v.valid_to IS NULL
  AND (CAST(:op AS varchar) IS NULL OR v.operator_id = CAST(:op AS varchar))
  AND (CASE WHEN :basis = 'service' THEN t.max_service ELSE t.max_total END) > :cap
GROUP BY v.operator_id, o.name, c.station_pk, s.station_id, s.name, v.tariff_id, v.source, t.max_total,
         t.max_service, t.periods
ORDER BY (CASE WHEN :basis = 'service' THEN t.max_service ELSE t.max_total END) DESC, o.name, s.name, v.tariff_id
""")


def over_cap(conn: Any, cap: Cap, operator_id: str | None = None) -> list[dict[str, Any]]:
    """The current tariffs over ``cap``, one row per station and tariff: ``connectors`` on it (the
    first 20 ``connector_ids``), its ``max_total``/``max_service`` and ``value`` (the one the cap
    limits), ``source`` and the ``periods`` for people."""
    rows = conn.execute(_OVER_CAP, {"op": operator_id, "basis": cap.basis, "cap": cap.yuan_per_kwh}).mappings().all()
    out = []
    for r in rows:
        row = dict(r)
        row["value"] = row["max_service"] if cap.basis == "service" else row["max_total"]
        row["excess"] = row["value"] - cap.yuan_per_kwh
        row["periods"] = Tariff.from_json(row["periods"]).api_periods()
        out.append(row)
    return out


_COUNTS = text(_TARIFF_MAXIMA + """
SELECT c.operator_id,
       count(*)                                                                  AS connectors,
       count(v.id) FILTER (WHERE v.tariff_id IS NOT NULL)                         AS priced,
       count(v.id) FILTER (WHERE v.tariff_id IS NOT NULL AND v.source = 'policy')   AS policy,
       count(v.id) FILTER (WHERE v.tariff_id IS NOT NULL AND v.source = 'fee_text') AS fee_text,
       count(v.id) FILTER (WHERE cardinality(v.problems) > 0)                     AS problems,
       count(v.id) FILTER (WHERE (CASE WHEN :basis = 'service' THEN t.max_service ELSE t.max_total END) > :cap)
                                                                                 AS over_cap
FROM connectors c
LEFT JOIN connector_tariffs v ON v.operator_id = c.operator_id AND v.connector_id = c.connector_id
                             AND v.valid_to IS NULL
LEFT JOIN t ON t.id = v.tariff_id
WHERE (CAST(:op AS varchar) IS NULL OR c.operator_id = CAST(:op AS varchar))
GROUP BY c.operator_id
""")


def tariff_counts(conn: Any, cap: Cap, operator_id: str | None = None) -> dict[str, dict[str, int]]:
    """Per operator: ``connectors``, ``priced`` (a current tariff; ``policy``/``fee_text`` by
    source), ``problems`` (the current version breaks a rule) and ``over_cap``."""
    rows = conn.execute(_COUNTS, {"op": operator_id, "basis": cap.basis, "cap": cap.yuan_per_kwh}).mappings()
    return {r["operator_id"]: {k: int(v) for k, v in r.items() if k != "operator_id"} for r in rows}


# --- an operator's tariffs (back office) --------------------------------------------------------
_STATIONS = text("""
SELECT s.id, s.station_id, s.name, st.source, st.varies, st.connectors, st.priced, st.updated_at, t.periods,
       count(*) OVER () AS total
FROM stations s
LEFT JOIN station_tariffs st ON st.station_pk = s.id
LEFT JOIN tariffs t ON t.id = st.tariff_id
WHERE s.operator_id = :op
  AND (CAST(:station AS bigint) IS NULL OR s.id = CAST(:station AS bigint))
  AND (NOT :problems OR EXISTS (
        SELECT 1 FROM connectors c JOIN connector_tariffs v ON v.operator_id = c.operator_id
                                   AND v.connector_id = c.connector_id AND v.valid_to IS NULL
        WHERE c.station_pk = s.id AND (cardinality(v.problems) > 0 OR v.tariff_id IS NULL)))
ORDER BY s.name, s.id
LIMIT :n OFFSET :o
""")
_CONNECTORS = text("""
SELECT c.station_pk, c.connector_id, c.power_kw, v.id AS version_id, v.tariff_id, v.source, v.problems, v.raw,
       v.first_seen_at, v.last_seen_at, t.periods, t.max_total,
       (SELECT count(*) FROM connector_tariffs h WHERE h.operator_id = c.operator_id
          AND h.connector_id = c.connector_id) AS versions
FROM connectors c
LEFT JOIN connector_tariffs v ON v.operator_id = c.operator_id AND v.connector_id = c.connector_id
                             AND v.valid_to IS NULL
LEFT JOIN tariffs t ON t.id = v.tariff_id
WHERE c.operator_id = :op AND c.station_pk = ANY(:s)
ORDER BY c.station_pk, c.connector_id
""")


def _over(periods: list[dict[str, str]], cap: Cap) -> bool:
    key = "total" if cap.basis == "total" else "service"
    return any(Decimal(p[key]) > cap.yuan_per_kwh for p in periods)


def operator_tariffs(conn: Any, operator_id: str, cap: Cap, *, station_pk: int | None = None,
                     problems_only: bool = False, page: int = 1, per_page: int = 20) -> Page:
    """One page of the operator's stations (``items``), each with its connectors grouped by what the platform
    holds for them (the same tariff, source and problems): ``groups`` of ``{connector_ids, source,
    periods, problems, raw, first_seen_at, last_seen_at, versions, over_cap}``; connectors without
    any reading are a group with ``source`` None."""
    rows = conn.execute(_STATIONS, {"op": operator_id, "station": station_pk, "problems": problems_only,
                                    "n": per_page, "o": (page - 1) * per_page}).mappings().all()
    total = int(rows[0]["total"]) if rows else 0
    stations = {r["id"]: {**dict(r), "groups": [], "periods": Tariff.from_json(r["periods"]).api_periods()
                          if r["periods"] is not None else []} for r in rows}
    groups: dict[tuple[Any, ...], dict[str, Any]] = {}
    if stations:
        for c in conn.execute(_CONNECTORS, {"op": operator_id, "s": list(stations)}).mappings():
            key = (c["station_pk"], c["tariff_id"], c["source"], tuple(c["problems"] or ()))
            g = groups.get(key)
            if g is None:
                periods = Tariff.from_json(c["periods"]).api_periods() if c["periods"] is not None else []
                g = groups[key] = {
                    "connector_ids": [], "source": c["source"], "periods": periods, "problems": list(c["problems"] or ()),
                    "raw": json.dumps(c["raw"], ensure_ascii=False, indent=1) if c["raw"] is not None else None,
                    "first_seen_at": c["first_seen_at"], "last_seen_at": c["last_seen_at"], "versions": 0,
                    "over_cap": bool(periods) and _over(periods, cap), "power_kw": set()}
                stations[c["station_pk"]]["groups"].append(g)
            g["connector_ids"].append(c["connector_id"])
            g["power_kw"].add(float(c["power_kw"]) if c["power_kw"] is not None else None)
            g["versions"] = max(g["versions"], int(c["versions"]))
            for k, pick in (("first_seen_at", min), ("last_seen_at", max)):
                if c[k] is not None:
                    g[k] = c[k] if g[k] is None else pick(g[k], c[k])
    for g in groups.values():
        g["power_kw"] = [f"{p:g}" for p in sorted(p for p in g["power_kw"] if p is not None)]
    return Page(list(stations.values()), total, page, per_page)


# --- the cap ------------------------------------------------------------------------------------
@dataclass(frozen=True, slots=True)
class CapForm:
    yuan_per_kwh: Decimal
    basis: str
    valid_from: datetime | None
    note: str | None


def _valid_from(value: Any) -> datetime | None:
    """``YYYY-MM-DD`` (China midnight) or ``YYYY-MM-DDTHH:MM`` (China time); empty is now."""
    text_ = str(value or "").strip()
    if not text_:
        return None
    try:
        if not text_.isascii() or len(text_) > 19:
            raise ValueError
        moment = (datetime.combine(date.fromisoformat(text_), time()) if len(text_) == 10
                  else datetime.fromisoformat(text_))
        if moment.tzinfo is not None or not 2000 <= moment.year <= 2099:
            raise ValueError
    except ValueError:
        raise BadRequest("生效时间应为 YYYY-MM-DD 或 YYYY-MM-DDTHH:MM / 'valid_from' must be a date or a date and time",
                         param="valid_from") from None
    return moment.replace(tzinfo=CHINA_TZ)


def read_cap_form(form: Mapping[str, Any]) -> CapForm:
    """The regulator's cap form: a price above 0 and at most 20 yuan/kWh with at most 4 decimals,
    the basis (``total`` or ``service``), when it takes effect and a note.

    >>> f = read_cap_form({"yuan_per_kwh": "1.8", "basis": "total", "valid_from": "2027-01-01", "note": " 2027 "})
    >>> str(f.yuan_per_kwh), f.basis, f.valid_from.isoformat(), f.note
    ('1.8', 'total', '2027-01-01T00:00:00+08:00', '2027')
    >>> read_cap_form({"yuan_per_kwh": "1e309", "basis": "total"})
    Traceback (most recent call last):
    ...
    services.errors.BadRequest: 限价应为 0 到 20 元/度之间、最多 4 位小数的数字 / the cap must be a number above 0 and at most 20 yuan/kWh with at most 4 decimals
    """
    raw = str(form.get("yuan_per_kwh") or "").strip()
    try:
        value = Decimal(raw) if raw and len(raw) <= 20 and raw.isascii() else None
    except InvalidOperation:
        value = None
    if value is None or not value.is_finite() or not Decimal(0) < value <= MAX_PRICE or value != value.quantize(
            Decimal("0.0001")):
        raise BadRequest(f"限价应为 0 到 {MAX_PRICE} 元/度之间、最多 4 位小数的数字 / the cap must be a number above 0 and "
                         f"at most {MAX_PRICE} yuan/kWh with at most 4 decimals", param="yuan_per_kwh")
    basis = str(form.get("basis") or "").strip()
    if basis not in BASES:
        raise BadRequest("请选择限价对象（电费+服务费或服务费） / choose what the cap limits (total or service)",
                         param="basis")
    note = str(form.get("note") or "").strip() or None
    if note is not None and len(note) > NOTE_MAX:
        raise BadRequest(f"说明最多 {NOTE_MAX} 字 / the note is at most {NOTE_MAX} characters", param="note")
    return CapForm(value, basis, _valid_from(form.get("valid_from")), note)


def set_city_cap(conn: Any, user: Any, form: CapForm) -> int:
    """A new cap (the history keeps the old ones), written to the audit log like every regulator
    setting; returns its id."""
    cap_id = set_cap(conn, form.yuan_per_kwh, form.basis, user_id=user.id, note=form.note, valid_from=form.valid_from)
    conn.execute(text("INSERT INTO audit_log (actor_user_id, actor, action, target_type, target_id, details) "
                      "VALUES (:u, :a, 'price_cap.set', 'price_cap', :t, CAST(:d AS jsonb))"),
                 {"u": user.id, "a": user.account_name, "t": str(cap_id), "d": json.dumps({
                     "yuan_per_kwh": str(form.yuan_per_kwh), "basis": form.basis, "note": form.note,
                     "valid_from": form.valid_from.isoformat() if form.valid_from else None}, ensure_ascii=False)})
    return cap_id
