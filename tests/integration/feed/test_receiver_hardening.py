"""The receiver under hostile input (issue 13, item 2): property tests of ``Receiver.handle`` with
random and mutated envelopes, and the HTTP edge (oversize bodies, deep nesting, NUL).

Properties: every answer is a T/CEC envelope with a Ret among 4001–4004 (signed with the
operator's inbound secrets when we know the sender, so it verifies), never 500 and never -1
while the database is up, and nothing is stored: no status row, no replay record, no token.
"""

from __future__ import annotations

import base64
import itertools
import json
import secrets
import string
from datetime import UTC, datetime

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from litestar.testing import TestClient
from sqlalchemy import text

from ingest.endpoints import register_operator
from ingest.protocol import Ret, Secrets, build_request, encrypt, parse_response, sign
from ingest.receiver import Receiver

ERRORS = {Ret.SIGNATURE, Ret.TOKEN, Ret.ENVELOPE, Ret.BUSINESS}
INTERFACES = ("query_token", "notification_stationStatus", "notification_stationInfo")


@pytest.fixture(scope="module")
def operator(engine):  # noqa: ANN001, ANN201
    op_id = "".join(secrets.choice(string.ascii_uppercase + string.digits) for _ in range(9))
    with engine.begin() as conn:
        creds, _ = register_operator(conn, operator_id=op_id, name=f"硬化测试{op_id}", base_url="http://127.0.0.1:9",
                                     platform_operator_id="MA000000X", operator_secret="o" * 16,
                                     data_secret="d" * 16, data_iv="i" * 16, sig_secret="g" * 16)
        conn.execute(text("UPDATE feed_endpoints SET interconnected = true WHERE operator_id = :o"), {"o": op_id})
    c = creds.as_dict()
    yield Secrets(c["operator_id"], c["operator_secret"], c["data_secret"], c["data_iv"], c["sig_secret"])
    with engine.begin() as conn:
        for table in ("connector_status", "feed_push_seen", "feed_tokens"):
            conn.execute(text(f"DELETE FROM {table} WHERE operator_id = :o"), {"o": op_id})
        conn.execute(text("DELETE FROM operators WHERE operator_id = :o"), {"o": op_id})


@pytest.fixture(autouse=True)
def _enabled(operator, engine) -> None:  # noqa: ANN001
    """The feed conftest disables every endpoint before each test; this module's operator stays on."""
    with engine.begin() as conn:
        conn.execute(text("UPDATE feed_endpoints SET enabled = true WHERE operator_id = :o"),
                     {"o": operator.operator_id})


@pytest.fixture(scope="module")
def receiver(engine, settings):  # noqa: ANN001, ANN201
    r = Receiver(engine, settings)
    yield r
    r.close()


@pytest.fixture(scope="module")
def token(receiver, operator) -> str:  # noqa: ANN001
    env = build_request(operator.operator_id, {"OperatorID": operator.operator_id,
                                               "OperatorSecret": operator.operator_secret}, operator)
    status, answer = receiver.handle("query_token", json.dumps(env).encode(), None)
    parsed = parse_response(answer, operator)
    assert status == 200 and parsed.data["SuccStat"] == 0
    return parsed.data["AccessToken"]


def _stored(engine, op_id: str) -> tuple[int, int, int]:  # noqa: ANN001
    with engine.connect() as conn:
        return tuple(conn.execute(text(
            "SELECT (SELECT count(*) FROM connector_status WHERE operator_id = :o), "
            "(SELECT count(*) FROM feed_push_seen WHERE operator_id = :o), "
            "(SELECT count(*) FROM stations WHERE operator_id = :o)"), {"o": op_id}).one())


# --- strategies --------------------------------------------------------------------------------
JUNK = st.one_of(st.none(), st.booleans(), st.integers(min_value=-(2**70), max_value=2**70), st.floats(),
                 st.text(max_size=40), st.just("\x00"), st.just("A\x00B"), st.just("x" * 5000),
                 st.lists(st.integers(), max_size=3), st.dictionaries(st.text(max_size=5), st.integers(), max_size=3))
FIELDS = ("OperatorID", "Data", "TimeStamp", "Seq", "Sig")


_SEQ = itertools.count(secrets.randbelow(9999))


def _valid(op: Secrets, data: object) -> dict:
    """A valid envelope; Seqs count up (random ones collided within a second now and then, and the
    receiver rightly refused the second as a replay)."""
    return build_request(op.operator_id, data, op, timestamp=datetime.now(UTC), seq=next(_SEQ) % 9999 + 1)


@st.composite
def mutated_envelopes(draw, op: Secrets) -> bytes:  # noqa: ANN001
    kind = draw(st.sampled_from(["drop", "junk", "bad_b64", "bad_padding", "wrong_key", "nul_data",
                                 "deep", "deep_data", "raw", "not_object", "oversize_field", "resign_junk"]))
    data = {"ConnectorStatusInfo": {"ConnectorID": "HARDEN-C1", "Status": 1}}
    env = _valid(op, data)
    if kind == "drop":
        env.pop(draw(st.sampled_from(FIELDS)))
    elif kind == "junk":
        env[draw(st.sampled_from(FIELDS))] = draw(JUNK)
    elif kind == "bad_b64":
        env["Data"] = draw(st.sampled_from(["!!!notbase64!!!", "YWJj", "====", "\x00abc"]))
        env["Sig"] = sign(op.sig_secret, env["OperatorID"], env["Data"], env["TimeStamp"], env["Seq"])
    elif kind == "bad_padding":
        raw = base64.b64decode(env["Data"])
        env["Data"] = base64.b64encode(raw[:-1] + bytes([raw[-1] ^ 0x5A])).decode()
        env["Sig"] = sign(op.sig_secret, env["OperatorID"], env["Data"], env["TimeStamp"], env["Seq"])
    elif kind == "wrong_key":
        env["Data"] = encrypt(json.dumps(data), "k" * 16, "v" * 16)
        env["Sig"] = sign(op.sig_secret, env["OperatorID"], env["Data"], env["TimeStamp"], env["Seq"])
    elif kind in ("nul_data", "deep_data", "resign_junk"):
        inner = {"nul_data": {"ConnectorStatusInfo": {"ConnectorID": "C\x00", "Status": 1}},
                 "deep_data": json.loads("[" * 60 + "]" * 60),
                 "resign_junk": draw(st.one_of(JUNK, st.just({"ConnectorStatusInfo": draw(JUNK)})))}[kind]
        env["Data"] = encrypt(json.dumps(inner), op.data_secret, op.data_iv)
        env["Sig"] = sign(op.sig_secret, env["OperatorID"], env["Data"], env["TimeStamp"], env["Seq"])
    elif kind == "deep":
        return b"[" * draw(st.integers(min_value=33, max_value=60000))
    elif kind == "raw":
        return draw(st.binary(max_size=200))
    elif kind == "not_object":
        return json.dumps(draw(st.lists(JUNK, max_size=3))).encode()
    elif kind == "oversize_field":
        env[draw(st.sampled_from(FIELDS))] = "9" * draw(st.integers(min_value=33, max_value=50000))
    return json.dumps(env, ensure_ascii=draw(st.booleans())).encode()


def test_mutated_envelopes_always_get_a_signed_error_and_store_nothing(receiver, operator, token, engine) -> None:  # noqa: ANN001
    before = _stored(engine, operator.operator_id)
    seen: set[int] = set()

    @given(body=mutated_envelopes(operator), interface=st.sampled_from(INTERFACES),
           auth=st.sampled_from([None, "Bearer ", "Bearer junk", "token"]))
    @settings(max_examples=300, deadline=None, suppress_health_check=list(HealthCheck), database=None)
    def run(body: bytes, interface: str, auth: str | None) -> None:
        status, answer = receiver.handle(interface, body, f"Bearer {token}" if auth == "token" else auth)
        assert set(answer) == {"Ret", "Msg", "Data", "Sig"}, answer
        assert status in (200, 404), status
        if answer["Ret"] == Ret.OK:  # only a token request whose Data makes no sense: refused inside Data
            assert interface == "query_token", (answer, body[:200])
            assert parse_response(answer, operator).data["SuccStat"] == 1
            return
        assert answer["Ret"] in ERRORS, (answer, body[:200])
        assert answer["Msg"] and answer["Data"] == ""
        seen.add(answer["Ret"])
        try:
            sender = json.loads(body).get("OperatorID")
        except Exception:  # noqa: BLE001
            sender = None
        if sender == operator.operator_id:  # a known sender can verify our answer
            expected = sign(operator.sig_secret, str(answer["Ret"]), answer["Msg"], answer["Data"])
            assert answer["Sig"] == expected, (answer, body[:300])

    run()
    assert seen >= {Ret.ENVELOPE, Ret.BUSINESS, Ret.SIGNATURE}
    assert _stored(engine, operator.operator_id) == before


@given(field=st.sampled_from(["ConnectorID", "Status", "ParkStatus"]),
       value=st.one_of(JUNK, st.just("1\x00"), st.just(["\x00"])))
@settings(max_examples=60, deadline=None, suppress_health_check=list(HealthCheck), database=None)
def test_bad_business_fields_are_4004_naming_the_field(receiver, operator, token, engine, field, value) -> None:  # noqa: ANN001
    info = {"ConnectorID": "HARDEN-C1", "Status": 1, "ParkStatus": 10, "LockStatus": 10, field: value}
    env = _valid(operator, {"ConnectorStatusInfo": info})
    before = _stored(engine, operator.operator_id)
    status, answer = receiver.handle("notification_stationStatus", json.dumps(env).encode(), f"Bearer {token}")
    parsed = parse_response(answer, operator)
    if parsed.ret != Ret.OK:
        assert parsed.ret == Ret.BUSINESS and field in parsed.msg, parsed
        assert _stored(engine, operator.operator_id) == before  # refused: nothing stored


def test_http_edge_oversize_nested_and_nul_bodies(app, operator) -> None:  # noqa: ANN001
    with TestClient(app, base_url="http://127.0.0.1:8000") as c:
        big = b'{"OperatorID": "' + operator.operator_id.encode() + b'", "Data": "' + b"A" * (5 * 1024 * 1024) + b'"}'
        r = c.post("/evcs/v20160701/notification_stationStatus", content=big,
                   headers={"content-type": "application/json"})
        assert r.status_code == 413
        body = r.json()
        assert body["Ret"] == Ret.ENVELOPE and "larger than" in body["Msg"] and set(body) == {"Ret", "Msg", "Data", "Sig"}
        r = c.post("/evcs/v20160701/notification_stationStatus", content=b"[" * 50000)
        assert r.status_code == 200 and r.json()["Ret"] == Ret.ENVELOPE and "nested" in r.json()["Msg"]
        env = _valid(operator, {"ConnectorStatusInfo": {"ConnectorID": "C", "Status": 1}})
        env["OperatorID"] = operator.operator_id[:4] + "\x00" + operator.operator_id[5:]
        r = c.post("/evcs/v20160701/notification_stationStatus", content=json.dumps(env).encode())
        assert r.status_code == 200 and r.json()["Ret"] == Ret.ENVELOPE and "NUL" in r.json()["Msg"]
        # a body just under the limit is read and judged on its content
        limit = app.state["settings"].feed.max_body_bytes
        r = c.post("/evcs/v20160701/query_token", content=b" " * (limit - 10) + b"{}")
        assert r.status_code == 200 and r.json()["Ret"] == Ret.ENVELOPE


def test_the_push_fast_path_answers_as_the_route_does(app, operator, token, engine, monkeypatch) -> None:  # noqa: ANN001
    """``POST /evcs/{version}/notification_*`` is served in front of Litestar (issue 18); a query
    string sends the same request through the Litestar route. Both answer alike, with the security
    headers, and a stored push through the fast path is stored."""
    from portal_site.routes import evcs

    fast_calls = []
    real = evcs._fast_push

    async def spy(*args):  # noqa: ANN002, ANN202
        fast_calls.append(args[1])
        return await real(*args)

    monkeypatch.setattr(evcs, "_fast_push", spy)
    limit = app.state["settings"].feed.max_body_bytes
    bodies = [b"[" * 50000, b"{}", b"not json", b" " * (limit + 1),
              json.dumps({**_valid(operator, {"x": 1}), "OperatorID": "NUL\x00NUL00"}).encode()]
    with TestClient(app, base_url="http://127.0.0.1:8000") as c:
        for body in bodies:
            answers = []
            for url in ("/evcs/v20160701/notification_stationStatus",
                        "/evcs/v20160701/notification_stationStatus?through=litestar"):
                r = c.post(url, content=body, headers={"content-type": "application/json"})
                security = tuple(r.headers.get(name.decode()) for name, _ in app.state["security_headers"].raw)
                assert all(security), r.headers
                answers.append((r.status_code, r.headers["content-type"], security,
                                {k: v for k, v in r.json().items() if k != "Sig"}))
            assert answers[0] == answers[1], answers
            assert answers[0][0] in (200, 413) and answers[0][3]["Ret"] in (Ret.ENVELOPE, Ret.BUSINESS)
        assert len(fast_calls) == len(bodies)
        for n, url in enumerate(("/evcs/v20160701/notification_stationStatus",
                                 "/evcs/20160701/notification_stationStatus?through=litestar")):
            connector = f"FAST-PATH-C{n}"
            env = _valid(operator, {"ConnectorStatusInfo": {"ConnectorID": connector, "Status": 3}})
            r = c.post(url, content=json.dumps(env).encode(), headers={"authorization": f"Bearer {token}"})
            assert r.status_code == 200 and r.json()["Ret"] == Ret.OK, r.text
            assert parse_response(r.json(), operator).data["Status"] == 0
            with engine.connect() as conn:
                assert conn.execute(text("SELECT status FROM connector_status WHERE operator_id = :o "
                                         "AND connector_id = :c"), {"o": operator.operator_id, "c": connector}
                                    ).scalar() == 3
    assert len(fast_calls) == len(bodies) + 1


def test_the_push_fast_path_answers_an_envelope_even_on_a_bug(app, operator, monkeypatch) -> None:  # noqa: ANN001
    from portal_site.routes import evcs

    with TestClient(app, base_url="http://127.0.0.1:8000") as c:
        receiver = evcs._receiver(c.app)

        async def broken(*_args):  # noqa: ANN002, ANN202
            raise RuntimeError("a bug")

        monkeypatch.setattr(receiver, "handle_async", broken)
        r = c.post("/evcs/v20160701/notification_stationStatus", content=json.dumps(_valid(operator, {})).encode())
    assert r.status_code == 500 and r.json()["Ret"] == Ret.SYSTEM and set(r.json()) == {"Ret", "Msg", "Data", "Sig"}
    assert r.headers["x-content-type-options"] == "nosniff"
