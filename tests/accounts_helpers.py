"""Helpers for tests that need users: create operators, regulators, log in through the real form.

    from tests.accounts_helpers import create_operator_user, create_regulator, login, csrf_from

    op = create_operator_user(engine)                 # approved operator company + its user
    login(client, op["account_name"], op["password"]) # GET /login, POST with the CSRF field
    token = csrf_from(client, "/backoffice/")         # for your own POSTs: data={"_csrf": token}
                                                      # or headers={"X-CSRF-Token": token}
"""

from __future__ import annotations

import html
import re
import secrets
from typing import Any

from sqlalchemy import select, text
from sqlalchemy.engine import Engine

from services.accounts.service import create_user
from services.accounts.validation import CREDIT_CODE_CHARS, credit_code_check_char

__all__ = ["create_admin", "create_operator_user", "create_regulator", "csrf_from", "login", "logout",
           "random_operator_id", "valid_credit_code"]

DEFAULT_PASSWORD = "Passw0rd!zh"
_CSRF_RE = re.compile(r'name="_csrf" value="([^"]+)"')
_HX_RE = re.compile(r'"X-CSRF-Token": "([^"]+)"')


def random_operator_id() -> str:
    """9 characters valid inside a credit code (so the code can carry a right check digit)."""
    return "".join(secrets.choice(CREDIT_CODE_CHARS) for _ in range(9))


def valid_credit_code(operator_id: str, region: str = "91440400") -> str | None:
    """A credit code with a right check digit whose characters 9–17 are ``operator_id``."""
    first17 = region + operator_id
    if len(first17) != 17 or any(c not in CREDIT_CODE_CHARS for c in first17):
        return None
    return first17 + credit_code_check_char(first17)


def _phone() -> str:
    return "139" + "".join(secrets.choice("0123456789") for _ in range(8))


def create_operator_user(engine: Engine, *, operator_id: str | None = None, name: str | None = None,
                         approved: bool = True, password: str = DEFAULT_PASSWORD,
                         account_name: str | None = None) -> dict[str, Any]:
    """An operator company (reused when ``operator_id`` exists) and one operator user of it."""
    operator_id = operator_id or random_operator_id()
    name = name or f"测试运营商{operator_id}"
    account_name = account_name or f"op_{secrets.token_hex(4)}"
    state = "approved" if approved else "submitted"
    with engine.begin() as conn:
        pk = conn.execute(text("SELECT id FROM operators WHERE operator_id = :o"), {"o": operator_id}).scalar()
        if pk is None:
            pk = conn.execute(text(
                "INSERT INTO operators (operator_id, name, credit_code, registration_state, submitted_at, reviewed_at, "
                "contact_name, contact_phone, email, address, legal_representative) "
                "VALUES (:o, :n, :c, :s, now(), CASE WHEN :s = 'approved' THEN now() END, '张三', :p, :e, '珠海市香洲区', '李四') "
                "RETURNING id"),
                {"o": operator_id, "n": name, "c": valid_credit_code(operator_id), "s": state, "p": _phone(),
                 "e": f"{account_name}@example.com"}).scalar_one()
        else:
            conn.execute(text("UPDATE operators SET registration_state = :s, submitted_at = coalesce(submitted_at, now()) "
                              "WHERE id = :pk"), {"s": state, "pk": pk})
        user_id = create_user(conn, account_name=account_name, password=password, role="operator", phone=_phone(),
                              email=f"{account_name}@example.com", operator_pk=pk, display_name="张三")
    return {"user_id": user_id, "account_name": account_name, "password": password, "operator_id": operator_id,
            "operator_pk": pk}


def create_regulator(engine: Engine, *, role: str = "regulator", password: str = DEFAULT_PASSWORD,
                     account_name: str | None = None) -> dict[str, Any]:
    account_name = account_name or f"{role[:3]}_{secrets.token_hex(4)}"
    with engine.begin() as conn:
        user_id = create_user(conn, account_name=account_name, password=password, role=role, phone=_phone(),
                              display_name="监管员" if role == "regulator" else "管理员")
    return {"user_id": user_id, "account_name": account_name, "password": password}


def create_admin(engine: Engine, **kw: Any) -> dict[str, Any]:
    return create_regulator(engine, role="admin", **kw)


def csrf_from(client: Any, path: str = "/login") -> str:
    """The CSRF token of ``client``'s session, read from the page at ``path``."""
    page = client.get(path, headers={"accept": "text/html"})
    m = _CSRF_RE.search(page.text) or _HX_RE.search(page.text)
    assert m, f"no CSRF token on {path} ({page.status_code})"
    return html.unescape(m.group(1))


def login(client: Any, account_name: str, password: str = DEFAULT_PASSWORD) -> None:
    """Log ``client`` in through the login form; fails the test when the login is refused."""
    token = csrf_from(client, "/login")
    r = client.post("/login", data={"login": account_name, "password": password, "_csrf": token},
                    headers={"accept": "text/html"}, follow_redirects=False)
    assert r.status_code in (301, 302, 303), f"login of {account_name} failed: {r.status_code} {r.text[:300]}"


def logout(client: Any) -> None:
    token = csrf_from(client, "/logout")
    client.post("/logout", data={"_csrf": token}, follow_redirects=False)


def insert_station(engine: Engine, operator_id: str, name: str, *, lng: float = 113.55, lat: float = 22.27,
                   district_adcode: int | None = 440402, station_type: int = 1, piles: int = 2,
                   connectors_per_pile: int = 1, power_kw: float = 60.0) -> int:
    """A feed station with piles and connectors (coordinates taken as WGS84, fine for tests)."""
    sid = secrets.token_hex(6)
    with engine.begin() as conn:
        pk = conn.execute(text(
            "INSERT INTO stations (operator_id, station_id, name, station_type, station_status, lng_gcj02, lat_gcj02, "
            "geom, geom_3857, district_adcode) VALUES (:o, :sid, :n, :t, 50, :lng, :lat, "
            "ST_SetSRID(ST_MakePoint(:lng, :lat), 4326), ST_Transform(ST_SetSRID(ST_MakePoint(:lng, :lat), 4326), 3857), :d) "
            "RETURNING id"), {"o": operator_id, "sid": sid, "n": name, "t": station_type, "lng": lng, "lat": lat,
                              "d": district_adcode}).scalar_one()
        for i in range(piles):
            epk = conn.execute(text(
                "INSERT INTO equipment (station_pk, operator_id, equipment_id, equipment_type, power_kw) "
                "VALUES (:s, :o, :e, 1, :p) RETURNING id"), {"s": pk, "o": operator_id, "e": f"{sid}{i:02d}",
                                                           "p": power_kw}).scalar_one()
            for j in range(connectors_per_pile):
                conn.execute(text(
                    "INSERT INTO connectors (equipment_pk, station_pk, operator_id, connector_id, connector_type, power_kw) "
                    "VALUES (:e, :s, :o, :c, 4, :p)"), {"e": epk, "s": pk, "o": operator_id, "c": f"{sid}{i:02d}{j}",
                                                       "p": power_kw})
    return pk
