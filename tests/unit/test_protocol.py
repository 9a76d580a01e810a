"""T/CEC 102 codec: cryptography against independent implementations, envelopes, parsing."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
from datetime import UTC, datetime, timedelta

import pytest
from Crypto.Cipher import AES  # pycryptodome: an independent AES for cross-checking
from Crypto.Util.Padding import pad, unpad
from hypothesis import given, settings
from hypothesis import strategies as st

from ingest.protocol import (
    CHINA_TZ,
    CONNECTOR_REQUIRED,
    EQUIPMENT_REQUIRED,
    STATION_REQUIRED,
    STATION_TYPES,
    ParsedRequest,
    ProtocolError,
    Ret,
    Secrets,
    build_request,
    build_response,
    decrypt,
    encrypt,
    format_query_time,
    format_timestamp,
    normalize_station_info,
    parse_query_time,
    parse_request,
    parse_response,
    parse_timestamp,
    sign,
    stations_from_page,
    status_infos_from,
    validate_station_info,
)

KEY = IV = "1234567890abcdef"
SECRETS = Secrets(
    operator_id="MA59J8YL8",
    operator_secret="opsecret12345678",
    data_secret="a2164ada0026ccf7",
    data_iv="82c91325e74bef0f",
    sig_secret="9af2e7b2d7562ad5",
)
NOW = datetime(2024, 5, 1, 12, 0, 0, tzinfo=CHINA_TZ)
SIGNED = ("OperatorID", "Data", "TimeStamp", "Seq")


def lookup(operator_id: str) -> Secrets | None:
    return SECRETS if operator_id == SECRETS.operator_id else None


def pyc_encrypt(text: str, key: str, iv: str) -> str:
    cipher = AES.new(key.encode(), AES.MODE_CBC, iv.encode())
    return base64.b64encode(cipher.encrypt(pad(text.encode("utf-8"), 16))).decode()


def pyc_decrypt(data: str, key: str, iv: str) -> str:
    cipher = AES.new(key.encode(), AES.MODE_CBC, iv.encode())
    return unpad(cipher.decrypt(base64.b64decode(data)), 16).decode("utf-8")


def assert_helpful(exc: ProtocolError, ret: Ret, *words: str) -> None:
    assert exc.ret == ret
    assert isinstance(exc.msg, str) and len(exc.msg) > 10
    for word in words:
        assert word.lower() in exc.msg.lower(), exc.msg


# --- cryptography ---------------------------------------------------------------------------


def test_public_check_value():
    assert encrypt("hello world!", KEY, IV) == "cmljobIKHDAcF9uf3mgs/w=="
    assert decrypt("cmljobIKHDAcF9uf3mgs/w==", KEY, IV) == "hello world!"


@pytest.mark.parametrize(
    "text", ["珠海市香洲区充电站", "横琴新区 充电桩 #1 ⚡", '{"StationName":"拱北口岸"}']
)
def test_round_trip_chinese(text):
    enc = encrypt(text, SECRETS.data_secret, SECRETS.data_iv)
    assert decrypt(enc, SECRETS.data_secret, SECRETS.data_iv) == text
    assert pyc_decrypt(enc, SECRETS.data_secret, SECRETS.data_iv) == text
    theirs = pyc_encrypt(text, SECRETS.data_secret, SECRETS.data_iv)
    assert decrypt(theirs, SECRETS.data_secret, SECRETS.data_iv) == text


@pytest.mark.parametrize("n", range(0, 41))
def test_lengths_around_block_boundaries(n):
    ascii_text = "x" * n
    enc = encrypt(ascii_text, KEY, IV)
    assert len(base64.b64decode(enc)) == (n // 16 + 1) * 16  # a full block of padding at 16k
    assert enc == pyc_encrypt(ascii_text, KEY, IV)
    assert decrypt(enc, KEY, IV) == ascii_text
    # Multi-byte: pad bytes, not characters (3 bytes per CJK character).
    cjk = "珠" * (n // 3) + "a" * (n % 3)
    assert len(cjk.encode()) == n
    assert encrypt(cjk, KEY, IV) == pyc_encrypt(cjk, KEY, IV)
    assert pyc_decrypt(encrypt(cjk, KEY, IV), KEY, IV) == cjk
    assert decrypt(pyc_encrypt(cjk, KEY, IV), KEY, IV) == cjk


@settings(max_examples=200, deadline=None)
@given(st.text())
def test_round_trip_arbitrary_text(text):
    enc = encrypt(text, KEY, IV)
    assert decrypt(enc, KEY, IV) == text
    assert enc == pyc_encrypt(text, KEY, IV)


def test_base64_with_76_char_line_breaks():
    text = "珠海市香洲区充电站" * 20
    enc = encrypt(text, KEY, IV)
    wrapped = "\r\n".join(enc[i : i + 76] for i in range(0, len(enc), 76))
    assert "\n" in wrapped
    assert decrypt(wrapped, KEY, IV) == text
    assert decrypt(base64.encodebytes(base64.b64decode(enc)).decode(), KEY, IV) == text
    assert decrypt(f"  {enc}\n", KEY, IV) == text


def test_decrypt_errors():
    with pytest.raises(ProtocolError) as e:
        decrypt("***", KEY, IV)
    assert_helpful(e.value, Ret.ENVELOPE, "base64")
    with pytest.raises(ProtocolError) as e:
        decrypt(base64.b64encode(b"short").decode(), KEY, IV)
    assert_helpful(e.value, Ret.ENVELOPE, "cannot be decrypted")
    with pytest.raises(ProtocolError) as e:  # wrong key: padding fails
        decrypt(encrypt("hello world!", KEY, IV), "fedcba0987654321", IV)
    assert_helpful(e.value, Ret.ENVELOPE, "padding")
    not_utf8 = AES.new(KEY.encode(), AES.MODE_CBC, IV.encode()).encrypt(pad(b"\xff\xfe\xfa", 16))
    with pytest.raises(ProtocolError) as e:
        decrypt(base64.b64encode(not_utf8).decode(), KEY, IV)
    assert_helpful(e.value, Ret.BUSINESS, "utf-8")


def test_sign_matches_hmac_md5():
    parts = ("MA59J8YL8", encrypt("珠海", KEY, IV), "20240501120000", "0001")
    mac = hmac.new(b"9af2e7b2d7562ad5", "".join(parts).encode(), hashlib.md5)
    expected = mac.hexdigest().upper()
    assert sign("9af2e7b2d7562ad5", *parts) == expected
    assert sign("k", "0", "", "") == hmac.new(b"k", b"0", hashlib.md5).hexdigest().upper()


# --- times ------------------------------------------------------------------------------


def test_timestamps():
    dt = datetime(2024, 12, 31, 16, 30, 1, tzinfo=UTC)
    assert format_timestamp(dt) == "20250101003001"
    assert parse_timestamp("20250101003001") == dt
    assert format_timestamp(datetime(2024, 1, 1, 8, 0)) == "20240101080000"  # naive = China
    assert format_query_time(dt) == "2025-01-01 00:30:01"
    assert parse_query_time("2025-01-01 00:30:01") == dt
    assert parse_query_time(None) is None and parse_query_time("  ") is None
    with pytest.raises(ProtocolError) as e:
        parse_query_time("2025/01/01")
    assert_helpful(e.value, Ret.BUSINESS, "yyyy-MM-dd HH:mm:ss")
    with pytest.raises(ProtocolError) as e:
        parse_timestamp("20241301000000")
    assert_helpful(e.value, Ret.ENVELOPE, "TimeStamp", "not a valid date")


# --- request envelopes ------------------------------------------------------------------------


def make_request(data=None, **overrides) -> dict:
    env = build_request(
        SECRETS.operator_id,
        {"StationIDs": ["440402001"]} if data is None else data,
        SECRETS,
        timestamp=NOW,
        seq=1,
    )
    env.update(overrides)
    return env


def parse(body, **kw) -> ParsedRequest:
    kw.setdefault("now", NOW)
    return parse_request(body, lookup, **kw)


def expect(body, ret, *words, **kw) -> ProtocolError:
    with pytest.raises(ProtocolError) as e:
        parse(body, **kw)
    assert_helpful(e.value, ret, *words)
    return e.value


def test_build_request_shape():
    env = make_request({"StationName": "珠海市香洲区充电站"})
    assert list(env) == ["OperatorID", "Data", "TimeStamp", "Seq", "Sig"]
    assert env["TimeStamp"] == "20240501120000" and env["Seq"] == "0001"
    parts = env["OperatorID"] + env["Data"] + env["TimeStamp"] + env["Seq"]
    mac = hmac.new(SECRETS.sig_secret.encode(), parts.encode(), hashlib.md5).hexdigest().upper()
    assert env["Sig"] == mac
    plain = pyc_decrypt(env["Data"], SECRETS.data_secret, SECRETS.data_iv)
    assert plain == '{"StationName":"珠海市香洲区充电站"}'  # compact, not ASCII-escaped
    assert build_request("MA59J8YL8", [], SECRETS, timestamp=NOW, seq="42")["Seq"] == "0042"


def test_round_trip_request_from_bytes_str_dict():
    env = make_request({"StationName": "珠海市香洲区充电站", "PageNo": 2})
    for body in (json.dumps(env).encode(), json.dumps(env, ensure_ascii=False), env):
        parsed = parse(body)
        assert parsed.operator_id == "MA59J8YL8"
        assert parsed.data == {"StationName": "珠海市香洲区充电站", "PageNo": 2}
        assert parsed.timestamp == NOW and parsed.seq == "0001"
        assert parsed.raw == env


def test_request_accepts_lowercase_sig_wrapped_data_and_trailing_comma():
    env = make_request()
    data = env["Data"]
    wrapped = "\n".join(data[i : i + 76] for i in range(0, len(data), 76)) + "\n"
    # Sender signs the exact (wrapped) string it sends.
    env["Data"] = wrapped
    env["Sig"] = resign(env)["Sig"].lower()
    text = json.dumps(env)[:-1] + ",}"
    assert parse(text).data == {"StationIDs": ["440402001"]}


def test_bad_json():
    expect(b"{not json", Ret.ENVELOPE, "not JSON")
    expect(b"\xff\xfe", Ret.ENVELOPE, "not JSON")
    expect("[1, 2]", Ret.ENVELOPE, "JSON object")


@pytest.mark.parametrize("field", ["OperatorID", "Data", "TimeStamp", "Seq", "Sig"])
def test_each_missing_field(field):
    env = make_request()
    del env[field]
    err = expect(env, Ret.ENVELOPE, "missing", field)
    assert err.msg == f"request envelope is missing {field}"


@pytest.mark.parametrize(
    "field,value,words",
    [
        ("OperatorID", "", ["OperatorID"]),
        ("OperatorID", "X" * 40, ["OperatorID"]),
        ("TimeStamp", "2024-05-01 12:00:00", ["TimeStamp", "yyyyMMddHHmmss"]),
        ("TimeStamp", "20240501", ["TimeStamp", "14 digits"]),
        ("TimeStamp", "20240231120000", ["TimeStamp", "not a valid date"]),
        ("Seq", "00001", ["Seq", "4 digits"]),
        ("Seq", "ab", ["Seq"]),
        ("Data", "", ["Data", "non-empty"]),
        ("Data", 5, ["Data"]),
        ("Sig", "ABC", ["Sig", "32 hexadecimal"]),
        ("Sig", "Z" * 32, ["Sig", "32 hexadecimal"]),
    ],
)
def test_malformed_fields(field, value, words):
    expect(make_request(**{field: value}), Ret.ENVELOPE, *words)


def test_millisecond_timestamp():
    ms = str(int(NOW.timestamp() * 1000))
    err = expect(make_request(TimeStamp=ms), Ret.ENVELOPE, "TimeStamp", "millisecond")
    assert "yyyyMMddHHmmss" in err.msg
    expect(make_request(TimeStamp=int(ms)), Ret.ENVELOPE, "TimeStamp", "millisecond")


def test_numeric_timestamp_and_seq_are_accepted_when_signed_as_sent():
    env = make_request(TimeStamp=20240501120000, Seq=1)
    env["Sig"] = sign(SECRETS.sig_secret, env["OperatorID"], env["Data"], "20240501120000", "1")
    parsed = parse(env)
    assert parsed.seq == "1" and parsed.timestamp == NOW


def test_out_of_window_timestamp():
    env = make_request()
    expect(env, Ret.ENVELOPE, "TimeStamp", "server clock", now=NOW + timedelta(seconds=301))
    expect(env, Ret.ENVELOPE, "TimeStamp", now=NOW - timedelta(hours=8))  # UTC mistaken for CST
    assert parse(env, now=NOW + timedelta(seconds=299)).seq == "0001"
    assert parse(env, now=NOW + timedelta(days=30), window_seconds=None).seq == "0001"
    assert parse(env, now=NOW.astimezone(UTC)).seq == "0001"


def test_unknown_operator():
    env = make_request(OperatorID="MA0000000")
    expect(env, Ret.ENVELOPE, "unknown OperatorID", "MA0000000")


def test_bad_signature_checked_before_decrypting():
    env = make_request()
    env["Sig"] = "0" * 32
    expect(env, Ret.SIGNATURE, "Sig", "does not match")
    # Tampered Data with the old Sig: reported as a signature error, never a decrypt error.
    env = make_request()
    env["Data"] = "!!!garbage!!!"
    expect(env, Ret.SIGNATURE, "Sig")
    # Signed with another SigSecret.
    env = make_request()
    env["Sig"] = sign("another-secret!!", *(env[k] for k in SIGNED))
    expect(env, Ret.SIGNATURE, "does not match")


def resign(env: dict) -> dict:
    env["Sig"] = sign(SECRETS.sig_secret, *(env[k] for k in SIGNED))
    return env


def test_undecryptable_data():
    env = resign(make_request(Data=encrypt('{"a":1}', "fedcba0987654321", "fedcba0987654321")))
    expect(env, Ret.ENVELOPE, "Data cannot be decrypted")
    env = resign(make_request(Data="not*base64"))
    expect(env, Ret.ENVELOPE, "Data", "Base64")


def test_data_not_json():
    plain = encrypt("珠海市香洲区充电站", SECRETS.data_secret, SECRETS.data_iv)
    env = resign(make_request(Data=plain))
    expect(env, Ret.BUSINESS, "decrypted Data is not JSON")
    env = resign(make_request(Data=encrypt("42", SECRETS.data_secret, SECRETS.data_iv)))
    expect(env, Ret.BUSINESS, "JSON object or array")


# --- response envelopes -----------------------------------------------------------------------


def test_response_round_trip():
    resp = build_response(Ret.OK, "", {"Status": 0, "Msg": "珠海"}, SECRETS)
    assert list(resp) == ["Ret", "Msg", "Data", "Sig"]
    assert resp["Ret"] == 0
    mac = hmac.new(SECRETS.sig_secret.encode(), ("0" + "" + resp["Data"]).encode(), hashlib.md5)
    assert resp["Sig"] == mac.hexdigest().upper()
    parsed = parse_response(json.dumps(resp).encode(), SECRETS)
    assert parsed.ret == Ret.OK and parsed.msg == ""
    assert parsed.data == {"Status": 0, "Msg": "珠海"}


def test_response_error_without_data_and_string_ret():
    resp = build_response(Ret.TOKEN, "token expired", None, SECRETS)
    assert resp["Data"] == ""
    parsed = parse_response(resp, SECRETS)
    assert parsed.ret == 4002 and parsed.msg == "token expired" and parsed.data is None
    resp["Ret"] = "4002"
    assert parse_response(resp, SECRETS).ret == Ret.TOKEN
    busy = build_response(-1, "busy", None, SECRETS)
    busy["Ret"] = "-1"
    assert parse_response(busy, SECRETS).ret == Ret.BUSY


def test_response_bad_signature():
    resp = build_response(Ret.OK, "", {"Status": 0}, SECRETS)
    resp["Msg"] = "tampered"
    with pytest.raises(ProtocolError) as e:
        parse_response(resp, SECRETS)
    assert_helpful(e.value, Ret.SIGNATURE, "Sig", "does not match")


def test_response_envelope_errors():
    for body, words in (
        (b"<html>", ["not JSON"]),
        ({"Msg": "", "Data": "", "Sig": "0" * 32}, ["missing Ret"]),
        ({"Ret": 0, "Msg": "", "Data": ""}, ["missing Sig"]),
        ({"Ret": "ok", "Msg": "", "Data": "", "Sig": "0" * 32}, ["Ret must be an integer"]),
    ):
        with pytest.raises(ProtocolError) as e:
            parse_response(body, SECRETS)
        assert_helpful(e.value, Ret.ENVELOPE, *words)


def test_response_data_not_json():
    data = encrypt("<xml/>", SECRETS.data_secret, SECRETS.data_iv)
    resp = {"Ret": 0, "Msg": "", "Data": data, "Sig": sign(SECRETS.sig_secret, "0", "", data)}
    with pytest.raises(ProtocolError) as e:
        parse_response(resp, SECRETS)
    assert_helpful(e.value, Ret.BUSINESS, "not JSON")


# --- business objects -----------------------------------------------------------------------


def station(**overrides) -> dict:
    base = {
        "StationID": "440402001",
        "OperatorID": "MA59J8YL8",
        "EquipmentOwnerID": "MA59J8YL8",
        "StationName": "珠海市香洲区充电站",
        "CountryCode": "CN",
        "AreaCode": "440402",
        "Address": "珠海市香洲区情侣中路1号",
        "ServiceTel": "0756-1234567",
        "StationType": 1,
        "StationStatus": 50,
        "ParkNums": 10,
        "StationLng": 113.576726,
        "StationLat": 22.270715,
        "Construction": 10,
        "BusineHours": "00:00-24:00",
        "EquipmentInfos": [
            {
                "EquipmentID": "EQ001",
                "EquipmentType": 1,
                "Power": 120.0,
                "ConnectorInfos": [
                    {
                        "ConnectorID": "EQ00101",
                        "ConnectorType": 4,
                        "VoltageUpperLimits": 750,
                        "VoltageLowerLimits": 200,
                        "Current": 250,
                        "Power": 120.0,
                        "NationalStandard": 2,
                    }
                ],
            }
        ],
    }
    base.update(overrides)
    return base


def test_valid_station_has_no_problems():
    assert validate_station_info(normalize_station_info(station())) == []


def test_normalize_variants():
    raw = station()
    raw["OperationID"] = raw.pop("OperatorID")
    raw["BusinessHours"] = raw.pop("BusineHours")
    raw["SeviceMoney"] = "0.8元/度"
    raw.update(
        StationType="1", ParkNums="50", StationLng="113.5", StationLat=" 22.27 ", AreaCode=440402
    )
    eq = raw["EquipmentInfos"][0]
    eq["Power"] = "120"
    eq["ConnectorInfos"] = {**eq["ConnectorInfos"][0], "ConnectorType": "4", "Current": "250"}
    raw["EquipmentInfos"] = eq  # object instead of array
    out = normalize_station_info(raw)
    assert out["OperatorID"] == "MA59J8YL8" and "OperationID" not in out
    assert out["BusineHours"] == "00:00-24:00" and "BusinessHours" not in out
    assert out["SeviceMoney"] == "0.8元/度"  # not a StationInfo field: passed through
    assert out["StationType"] == 1 and out["ParkNums"] == 50
    assert out["StationLng"] == 113.5 and out["StationLat"] == 22.27
    assert out["AreaCode"] == "440402"
    assert isinstance(out["EquipmentInfos"], list) and out["EquipmentInfos"][0]["Power"] == 120.0
    con = out["EquipmentInfos"][0]["ConnectorInfos"]
    assert isinstance(con, list) and con[0]["ConnectorType"] == 4 and con[0]["Current"] == 250.0
    assert validate_station_info(out) == []
    assert "OperationID" in raw  # input left untouched


def test_standard_spelling_wins_over_misspelling():
    out = normalize_station_info({"OperatorID": "MA59J8YL8", "OperationID": "WRONG0000"})
    assert out == {"OperatorID": "MA59J8YL8"}


def test_stations_from_page_shapes():
    one = station()
    assert stations_from_page({"PageNo": 1, "StationInfos": [one]})[0]["StationID"] == "440402001"
    assert len(stations_from_page({"StationInfos": one})) == 1
    keyed = {"a": station(StationID="1"), "b": station(StationID="2")}
    assert [s["StationID"] for s in stations_from_page({"StationInfos": keyed})] == ["1", "2"]
    obj = {"StationInfos": {**one, "OperationID": "MA59J8YL8"}}
    del obj["StationInfos"]["OperatorID"]
    assert stations_from_page(obj)[0]["OperatorID"] == "MA59J8YL8"
    assert stations_from_page({"PageNo": 1, "PageCount": 0}) == []
    assert stations_from_page({"StationInfos": None}) == []
    with pytest.raises(ProtocolError) as e:
        stations_from_page(["not", "a", "page"])
    assert e.value.ret == Ret.BUSINESS


def test_status_infos_variants():
    con = {"ConnectorID": "C1", "Status": "1", "ParkStatus": "10", "LockStatus": 50}
    infos = [{"StationID": "S1", "ConnectorStatusInfos": [con]}]
    assert status_infos_from({"StationStatusInfos": infos}) == [
        {
            "StationID": "S1",
            "ConnectorStatusInfos": [
                {"ConnectorID": "C1", "Status": 1, "ParkStatus": 10, "LockStatus": 50}
            ],
        }
    ]
    assert status_infos_from({"Total": 1, "StationStatusInfos": infos[0]})[0]["StationID"] == "S1"
    assert status_infos_from({"Total": infos})[0]["ConnectorStatusInfos"][0]["Status"] == 1
    assert status_infos_from({"Total": 0}) == []


def test_required_field_lists_follow_part_2():
    assert "EquipmentInfos" in STATION_REQUIRED and "StationTel" not in STATION_REQUIRED
    assert set(EQUIPMENT_REQUIRED) == {"EquipmentID", "EquipmentType", "ConnectorInfos", "Power"}
    assert "NationalStandard" in CONNECTOR_REQUIRED
    assert {104, 105, 106} <= set(STATION_TYPES)
    assert STATION_TYPES[1] == ("公共", "public")


@pytest.mark.parametrize("field", STATION_REQUIRED)
def test_missing_required_station_field(field):
    bad = station()
    del bad[field]
    problems = validate_station_info(bad)
    assert any(f"required field {field} is missing" in p for p in problems), problems


def test_validation_messages():
    bad = station(
        StationID="S" * 21,
        StationName="站" * 51,
        Address="路" * 51,
        Payment="刷卡,线上,现金,微信,支付宝,银联,云闪付",
        StationType=7,
        StationStatus=2,
        Construction=99,
        StationLng="east",
        StationLat=95.0,
    )
    eq = bad["EquipmentInfos"][0]
    eq.update(EquipmentID="E" * 24, EquipmentType=9)
    con = eq["ConnectorInfos"][0]
    con.update(ConnectorID="C" * 27, ConnectorType=0, NationalStandard=3)
    del con["Current"]
    problems = validate_station_info(normalize_station_info(bad))
    text = "\n".join(problems)
    for expected in (
        "StationID is 21 characters long, the limit is 20",
        "StationName is 51 characters long, the limit is 50",
        "Address is 51 characters long, the limit is 50",
        "Payment is",
        "StationType 7 is not a known value",
        "StationStatus 2 is not a known value",
        "Construction 99 is not a known value",
        "StationLng must be a number, got 'east'",
        "StationLat 95.0 is outside -90..90",
        "EquipmentID is 24 characters long, the limit is 23",
        "EquipmentType 9 is not a known value",
        "ConnectorID is 27 characters long, the limit is 26",
        "ConnectorType 0 is not a known value",
        "NationalStandard 3 is not a known value",
        "required field Current is missing",
    ):
        assert expected in text, (expected, problems)
    assert any("EquipmentInfos[0]" in p and "ConnectorInfos[0]" in p for p in problems)


def test_validation_of_empty_and_wrong_shapes():
    assert "EquipmentInfos is empty" in "\n".join(validate_station_info(station(EquipmentInfos=[])))
    not_an_object: dict = "nope"  # type: ignore[assignment]
    assert validate_station_info(not_an_object) == ["StationInfo must be a JSON object"]
    problems = validate_station_info(station(ParkNums="many"))
    assert any("ParkNums must be an integer" in p for p in problems)
