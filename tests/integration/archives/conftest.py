"""Fixtures of the archives tests: operators with logged-in clients, a regulator, and helpers that
build archives in any state through the services (so tests start where they need to)."""

from __future__ import annotations

import re
from collections.abc import Iterator
from typing import Any

import pytest
from litestar.testing import TestClient
from sqlalchemy import text

from services.archives import facilities as fac
from services.archives import reports as rep
from services.archives import stations as sta
from services.archives.common import Actor
from tests.accounts_helpers import create_operator_user, create_regulator, csrf_from, login

HTML = {"accept": "text/html"}
PDF = b"%PDF-1.4\n1 0 obj<<>>endobj\ntrailer<<>>\n%%EOF\n"
PNG = b"\x89PNG\r\n\x1a\n" + b"\x00" * 64

# Zhuhai, Xiangzhou (440402): GCJ-02 points well inside the district
XZ = (113.576726, 22.270715)
JW = (113.362656, 22.147126)  # Jinwan (440404)


def station_form(station_id: str, **over: Any) -> dict[str, Any]:
    form = {"station_id": station_id, "name": f"测试充电站{station_id}", "district_adcode": "440402",
            "address": "广东省珠海市香洲区情侣中路1号", "lng_gcj02": str(XZ[0]), "lat_gcj02": str(XZ[1]),
            "station_type": "1", "station_status": "50", "construction": "9", "service_tel": "0756-2212345",
            "station_tel": "13912345678", "park_nums": "10", "busine_hours": "00:00-24:00",
            "electricity_fee": "0.8元/度", "service_fee": "0.6元/度", "park_fee": "免费", "payment": "刷卡,线上",
            "support_order": "0"}
    form.update(over)
    return form


def facility_row(equipment_id: str, report_pk: int | None, **over: Any) -> dict[str, Any]:
    row = {"equipment_id": equipment_id, "equipment_name": "1号直流桩", "equipment_type": "1", "power_kw": "60",
           "connector_count": "2", "connector_type": "4", "national_standard": "2", "manufacturer_name": "测试电气",
           "equipment_model": "TE-DC60", "production_date": "2022-05-01",
           "report_archive_pk": str(report_pk) if report_pk else ""}
    row.update(over)
    return row


class Operator:
    """An approved operator company, its user and a logged-in client."""

    def __init__(self, engine: Any, app: Any, **kw: Any) -> None:
        self.info = create_operator_user(engine, **kw)
        self.actor = Actor(self.info["user_id"], self.info["account_name"], "operator", self.info["operator_pk"])
        self.client = TestClient(app, base_url="http://127.0.0.1:8000")
        self.client.__enter__()
        login(self.client, self.info["account_name"])
        self._csrf: str | None = None

    @property
    def pk(self) -> int:
        return self.info["operator_pk"]

    @property
    def operator_id(self) -> str:
        return self.info["operator_id"]

    def csrf(self) -> str:
        if self._csrf is None:
            self._csrf = csrf_from(self.client, "/backoffice/")
        return self._csrf

    def post(self, path: str, data: dict[str, Any] | None = None, **kw: Any) -> Any:
        data = dict(data or {})
        data["_csrf"] = self.csrf()
        kw.setdefault("headers", HTML)
        kw.setdefault("follow_redirects", False)
        return self.client.post(path, data=data, **kw)

    def get(self, path: str, **kw: Any) -> Any:
        kw.setdefault("headers", HTML)
        kw.setdefault("follow_redirects", False)
        return self.client.get(path, **kw)

    def close(self) -> None:
        self.client.__exit__(None, None, None)


class Regulator(Operator):
    def __init__(self, engine: Any, app: Any) -> None:  # noqa: D107 - same shape as Operator
        self.info = create_regulator(engine)
        self.actor = Actor(self.info["user_id"], self.info["account_name"], "regulator", None)
        self.client = TestClient(app, base_url="http://127.0.0.1:8000")
        self.client.__enter__()
        login(self.client, self.info["account_name"])
        self._csrf = None

    def csrf(self) -> str:
        if self._csrf is None:
            self._csrf = csrf_from(self.client, "/admin/")
        return self._csrf


@pytest.fixture()
def op(engine, app) -> Iterator[Operator]:  # noqa: ANN001
    o = Operator(engine, app)
    yield o
    o.close()


@pytest.fixture()
def op2(engine, app) -> Iterator[Operator]:  # noqa: ANN001
    o = Operator(engine, app)
    yield o
    o.close()


@pytest.fixture()
def reg(engine, app) -> Iterator[Regulator]:  # noqa: ANN001
    r = Regulator(engine, app)
    yield r
    r.close()


REG_ACTOR = Actor(None, "test-regulator", "regulator", None)


def make_station(database: Any, o: Operator, station_id: str, state: str = "pending", **over: Any) -> int:
    """A complete station archive of ``o`` moved to ``state`` through the workflow."""
    with database.session() as s:
        st = sta.create_or_update(s, o.actor, station_form(station_id, **over), submit=state != "pending")
        if state in ("approved", "rejected"):
            sta.transition(s, REG_ACTOR, st.id, "approve" if state == "approved" else "reject",
                           "坐标有误" if state == "rejected" else None)
        return st.id


def make_report(database: Any, o: Operator, report_no: str, upload_dir: Any) -> int:
    with database.session() as s:
        r = rep.create(s, o.actor, {"report_no": report_no, "lab": "国家电动汽车充电设施质量检验中心",
                                     "report_date": "2023-03-01", "equipment_model": "TE-DC60"},
                       rep.StoredFile("report.pdf", PDF), upload_dir)
        return r.id


FACILITY_PATH = {
    "pending": [], "under_review": ["submit"], "rejected": ["submit", "reject"], "approved": ["submit", "approve"],
    "ic_review": ["submit", "approve", "apply_ic"], "interconnected": ["submit", "approve", "apply_ic", "approve_ic"],
}


def set_interconnected(engine: Any, o: Operator, value: bool = True) -> None:
    with engine.begin() as conn:
        conn.execute(text("""
            INSERT INTO feed_endpoints (operator_id, inbound_operator_secret, inbound_data_secret, inbound_data_iv,
                                        inbound_sig_secret, interconnected)
            VALUES (:o, 'a', 'b', 'c', 'd', :v)
            ON CONFLICT (operator_id) DO UPDATE SET interconnected = :v"""), {"o": o.operator_id, "v": value})


def make_facility(database: Any, engine: Any, o: Operator, station_pk: int, report_pk: int, equipment_id: str,
                  state: str = "pending", **over: Any) -> int:
    with database.session() as s:
        fa = fac.create_many(s, o.actor, station_pk, [facility_row(equipment_id, report_pk, **over)])[0]
        pk = fa.id
    for action in FACILITY_PATH[state]:
        if action == "apply_ic":
            set_interconnected(engine, o, True)
        actor = o.actor if action in ("submit", "apply_ic") else REG_ACTOR
        with database.session() as s:
            fac.transition(s, actor, pk, action, "不一致" if action.startswith("reject") else None)
    return pk


def ids_in(html: str, attr: str = "data-id") -> list[str]:
    return re.findall(rf'{attr}="([^"]+)"', html)


__all__ = ["HTML", "PDF", "PNG", "Operator", "REG_ACTOR", "Regulator", "facility_row", "ids_in", "make_facility",
           "make_report", "make_station", "set_interconnected", "station_form"]
