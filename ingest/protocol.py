"""T/CEC 102 codec: cryptography, signed envelopes and tolerant business-object parsing.

Pure functions only (no I/O, no database) so that the feed client, the push receiver and the
simulator all speak exactly the same dialect, and so the rules can be tested without a server.

Input is tolerant (operators' platforms misspell keys, send numbers as strings, wrap Base64,
send arrays as objects); output is always the standard's spelling and shapes.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import json
import re
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta, timezone
from enum import IntEnum
from typing import Any, Callable

from cryptography.hazmat.primitives import padding
from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes

__all__ = [
    "CHINA_TZ",
    "CONNECTOR_REQUIRED",
    "CONNECTOR_STATUSES",
    "CONNECTOR_TYPES",
    "CONSTRUCTIONS",
    "EQUIPMENT_REQUIRED",
    "EQUIPMENT_TYPES",
    "LOCK_STATUSES",
    "NATIONAL_STANDARDS",
    "PARK_STATUSES",
    "STATION_REQUIRED",
    "STATION_STATUSES",
    "STATION_TYPES",
    "ParsedRequest",
    "ParsedResponse",
    "ProtocolError",
    "Ret",
    "Secrets",
    "build_request",
    "build_response",
    "decrypt",
    "encrypt",
    "format_query_time",
    "format_timestamp",
    "normalize_station_info",
    "parse_query_time",
    "parse_request",
    "parse_response",
    "parse_timestamp",
    "sign",
    "stations_from_page",
    "status_infos_from",
    "validate_station_info",
]

#: China Standard Time. A fixed offset rather than ``zoneinfo("Asia/Shanghai")``: China has
#: had no daylight saving since 1991, and a fixed offset needs no tz database on the host.
CHINA_TZ = timezone(timedelta(hours=8), "CST")


# --------------------------------------------------------------------------------------------
# Return codes and errors
# --------------------------------------------------------------------------------------------


class Ret(IntEnum):
    """Envelope ``Ret`` codes (Part 4)."""

    BUSY = -1
    OK = 0
    SIGNATURE = 4001
    TOKEN = 4002
    ENVELOPE = 4003
    BUSINESS = 4004
    SYSTEM = 500


class ProtocolError(Exception):
    """A protocol failure carrying the ``Ret`` to answer with and a ``Msg`` for the peer.

    ``msg`` is sent to the other platform, so it names the offending field and never
    includes secrets or stack traces.

    >>> e = ProtocolError(Ret.ENVELOPE, "Seq is missing")
    >>> e.ret, e.msg, str(e)
    (<Ret.ENVELOPE: 4003>, 'Seq is missing', '4003: Seq is missing')
    """

    def __init__(self, ret: int, msg: str) -> None:
        try:
            ret = Ret(ret)
        except ValueError:
            pass
        self.ret = ret
        self.msg = msg
        super().__init__(f"{int(ret)}: {msg}")


@dataclass(frozen=True)
class Secrets:
    """One direction's secret set. All values are 16-character ASCII used as raw bytes."""

    operator_id: str
    operator_secret: str
    data_secret: str
    data_iv: str
    sig_secret: str


# --------------------------------------------------------------------------------------------
# Cryptography
# --------------------------------------------------------------------------------------------


def _key_bytes(value: str, name: str) -> bytes:
    raw = value.encode("ascii")  # raw bytes, never hex-decoded (see the protocol page)
    if len(raw) != 16:
        raise ValueError(f"{name} must be 16 ASCII characters for AES-128, got {len(raw)}")
    return raw


def encrypt(plaintext: str, key: str, iv: str) -> str:
    """Base64 of AES-128-CBC over the UTF-8 bytes, PKCS#7-padded as bytes.

    Padding the bytes (not the characters) is what keeps Chinese text intact.

    >>> encrypt("hello world!", "1234567890abcdef", "1234567890abcdef")
    'cmljobIKHDAcF9uf3mgs/w=='
    >>> len(base64.b64decode(encrypt("", "1234567890abcdef", "1234567890abcdef")))
    16
    """
    padder = padding.PKCS7(128).padder()
    padded = padder.update(plaintext.encode("utf-8")) + padder.finalize()
    enc = Cipher(
        algorithms.AES(_key_bytes(key, "key")), modes.CBC(_key_bytes(iv, "iv"))
    ).encryptor()
    return base64.b64encode(enc.update(padded) + enc.finalize()).decode("ascii")


_WHITESPACE = re.compile(r"\s+")


def decrypt(data: str, key: str, iv: str) -> str:
    """Inverse of :func:`encrypt`; tolerates Base64 wrapped with line breaks.

    Old Java encoders wrap at 76 characters, so all whitespace is dropped before decoding.
    Bad Base64, a wrong length or bad padding (usually a wrong key) raise
    ``ProtocolError(4003)``; bytes that decrypt but are not UTF-8 raise ``ProtocolError(4004)``.

    >>> decrypt("cmljobIKHDAcF9uf\\r\\n3mgs/w==", "1234567890abcdef", "1234567890abcdef")
    'hello world!'
    >>> decrypt("not base64!", "1234567890abcdef", "1234567890abcdef")
    Traceback (most recent call last):
    ...
    ingest.protocol.ProtocolError: 4003: Data is not valid Base64
    """
    k, v = _key_bytes(key, "key"), _key_bytes(iv, "iv")
    try:
        raw = base64.b64decode(_WHITESPACE.sub("", data), validate=True)
    except (binascii.Error, ValueError, TypeError):
        raise ProtocolError(Ret.ENVELOPE, "Data is not valid Base64") from None
    if not raw or len(raw) % 16:
        raise ProtocolError(
            Ret.ENVELOPE,
            f"Data cannot be decrypted: {len(raw)} bytes is not a positive multiple of the "
            "16-byte AES block",
        )
    dec = Cipher(algorithms.AES(k), modes.CBC(v)).decryptor()
    padded = dec.update(raw) + dec.finalize()
    unpadder = padding.PKCS7(128).unpadder()
    try:
        plain = unpadder.update(padded) + unpadder.finalize()
    except ValueError:
        raise ProtocolError(
            Ret.ENVELOPE,
            "Data cannot be decrypted: bad PKCS#7 padding (wrong DataSecret or DataSecretIV?)",
        ) from None
    try:
        return plain.decode("utf-8")
    except UnicodeDecodeError:
        raise ProtocolError(Ret.BUSINESS, "decrypted Data is not UTF-8 text") from None


def sign(secret: str, *parts: str) -> str:
    """Uppercase hex HMAC-MD5 keyed with ``secret`` over the parts joined with no separator.

    >>> sign("1234567890abcdef", "a", "b") == sign("1234567890abcdef", "ab")
    True
    >>> len(sign("k")), sign("k").isupper()
    (32, True)
    """
    mac = hmac.new(secret.encode("utf-8"), "".join(parts).encode("utf-8"), hashlib.md5)
    return mac.hexdigest().upper()


def _same_sig(expected: str, received: str) -> bool:
    """Constant-time, case-insensitive comparison of two hex signatures."""
    return hmac.compare_digest(expected.upper().encode("ascii"), received.upper().encode("ascii"))


# --------------------------------------------------------------------------------------------
# Times
# --------------------------------------------------------------------------------------------


def _to_china(dt: datetime) -> datetime:
    # Naive datetimes are taken as China time: that is what operators' clocks mean.
    return dt.replace(tzinfo=CHINA_TZ) if dt.tzinfo is None else dt.astimezone(CHINA_TZ)


def format_timestamp(dt: datetime) -> str:
    """Envelope ``TimeStamp``: ``yyyyMMddHHmmss`` in China time (naive = China time).

    >>> format_timestamp(datetime(2024, 1, 31, 16, 0, 5, tzinfo=UTC))
    '20240201000005'
    """
    return _to_china(dt).strftime("%Y%m%d%H%M%S")


_TS_RE = re.compile(r"\d{14}")


def parse_timestamp(s: str) -> datetime:
    """Parse an envelope ``TimeStamp`` into an aware China-time datetime.

    Anything but 14 digits forming a real date raises ``ProtocolError(4003)``; the message
    recognises millisecond epochs, a common non-conforming client.

    >>> parse_timestamp("20240201000005").isoformat()
    '2024-02-01T00:00:05+08:00'
    >>> try:
    ...     parse_timestamp("1706716805000")
    ... except ProtocolError as e:
    ...     print(e.ret, e.msg.split("; ")[1])
    4003 got 13 digits, which looks like a millisecond epoch
    """
    if not isinstance(s, str) or not _TS_RE.fullmatch(s):
        text = str(s)
        if re.fullmatch(r"\d{13}", text):
            hint = "; got 13 digits, which looks like a millisecond epoch"
        elif re.fullmatch(r"\d{10}", text):
            hint = "; got 10 digits, which looks like a seconds epoch"
        else:
            hint = f"; got {text[:40]!r}"
        raise ProtocolError(
            Ret.ENVELOPE, "TimeStamp must be 14 digits yyyyMMddHHmmss in China time" + hint
        )
    try:
        return datetime.strptime(s, "%Y%m%d%H%M%S").replace(tzinfo=CHINA_TZ)
    except ValueError:
        raise ProtocolError(Ret.ENVELOPE, f"TimeStamp {s!r} is not a valid date and time") from None


def format_query_time(dt: datetime) -> str:
    """``LastQueryTime`` style ``yyyy-MM-dd HH:mm:ss`` in China time (naive = China time).

    >>> format_query_time(datetime(2024, 5, 1, 8, 30, tzinfo=CHINA_TZ))
    '2024-05-01 08:30:00'
    """
    return _to_china(dt).strftime("%Y-%m-%d %H:%M:%S")


def parse_query_time(s: str | None) -> datetime | None:
    """Parse ``yyyy-MM-dd HH:mm:ss`` (or a bare ``yyyy-MM-dd``) as aware China time.

    Empty or ``None`` means "no bound" (``LastQueryTime`` empty = all stations) and returns
    ``None``. Bad values are business parameters, hence ``ProtocolError(4004)``.

    >>> parse_query_time("2024-05-01 08:30:00").isoformat()
    '2024-05-01T08:30:00+08:00'
    >>> parse_query_time("2024-05-01").isoformat()
    '2024-05-01T00:00:00+08:00'
    >>> parse_query_time("") is None
    True
    """
    if s is None or (isinstance(s, str) and not s.strip()):
        return None
    if isinstance(s, str):
        for fmt in ("%Y-%m-%d %H:%M:%S", "%Y-%m-%d"):
            try:
                return datetime.strptime(s.strip(), fmt).replace(tzinfo=CHINA_TZ)
            except ValueError:
                continue
    raise ProtocolError(
        Ret.BUSINESS, f"time {str(s)[:40]!r} is not in the form yyyy-MM-dd HH:mm:ss"
    )


# --------------------------------------------------------------------------------------------
# JSON
# --------------------------------------------------------------------------------------------


def _drop_trailing_commas(text: str) -> str:
    """Remove commas directly before ``}``/``]`` outside strings (the spec's own examples
    carry one). Only used after strict parsing failed."""
    out: list[str] = []
    in_str = escape = False
    i, n = 0, len(text)
    while i < n:
        c = text[i]
        if in_str:
            if escape:
                escape = False
            elif c == "\\":
                escape = True
            elif c == '"':
                in_str = False
        elif c == '"':
            in_str = True
        elif c == ",":
            j = i + 1
            while j < n and text[j] in " \t\r\n":
                j += 1
            if j < n and text[j] in "}]":
                i += 1
                continue
        out.append(c)
        i += 1
    return "".join(out)


#: Deepest nesting accepted in an envelope or its Data (a StationInfo page needs 5).
MAX_JSON_DEPTH = 32


def json_problem(value: Any, max_depth: int = MAX_JSON_DEPTH) -> str | None:
    """What is wrong with decoded JSON for us, or ``None``: nesting deeper than ``max_depth``, or
    a NUL character in a string or key (PostgreSQL refuses NUL in text). One iterative pass, so
    hostile input cannot exhaust the stack; the answer names the field.

    >>> json_problem({"StationInfos": [{"StationID": "a\\x00"}]})
    'field StationInfos[0].StationID contains a NUL character'
    >>> json_problem([[[1]]], max_depth=2), json_problem({"a": ["b"]})
    ('nested deeper than 2 levels at [0][0]', None)
    """
    # (value, depth, label, parent entry): the path is only spelled out when something is wrong
    stack: list[tuple[Any, int, str, Any]] = [(value, 0, "", None)]

    def path_of(entry: Any) -> str:
        parts = []
        while entry is not None:
            parts.append(entry[2])
            entry = entry[3]
        text = "".join(reversed(parts)).lstrip(".")
        return text.replace("\x00", "\\0") or "value"

    while stack:
        entry = stack.pop()
        item, depth = entry[0], entry[1]
        if isinstance(item, str):
            if "\x00" in item:
                return f"field {path_of(entry)} contains a NUL character"
        elif isinstance(item, (dict, list)):
            if depth >= max_depth:
                return f"nested deeper than {max_depth} levels at {path_of(entry)}"
            if isinstance(item, dict):
                for k, v in item.items():
                    child = (v, depth + 1, f".{k}", entry)
                    if "\x00" in k:
                        return f"field {path_of(child)} contains a NUL character"
                    stack.append(child)
            else:
                stack.extend((v, depth + 1, f"[{i}]", entry) for i, v in enumerate(item))
    return None


def _loads(text: str) -> Any:
    """Strict JSON, then once more without trailing commas; raises ``ValueError`` (also when the
    nesting is so deep that the parser gives up)."""
    try:
        try:
            return json.loads(text)
        except json.JSONDecodeError:
            return json.loads(_drop_trailing_commas(text))
    except RecursionError:
        raise ValueError("JSON nested too deeply") from None


def _dumps(data: Any) -> str:
    return json.dumps(data, ensure_ascii=False, separators=(",", ":"))


def _body_to_dict(body: bytes | str | dict, what: str) -> dict:
    if isinstance(body, dict):
        return body
    try:
        text = body.decode("utf-8-sig") if isinstance(body, (bytes, bytearray)) else body
        text = text.lstrip("\ufeff")
    except (UnicodeDecodeError, AttributeError):
        raise ProtocolError(Ret.ENVELOPE, f"{what} body is not JSON (not UTF-8 text)") from None
    try:
        obj = _loads(text)
    except ValueError as exc:
        raise ProtocolError(Ret.ENVELOPE, f"{what} body is not JSON"
                            + (" (nested too deeply)" if "deep" in str(exc) else "")) from None
    if not isinstance(obj, dict):
        raise ProtocolError(Ret.ENVELOPE, f"{what} body must be a JSON object")
    problem = json_problem(obj, 2)
    if problem:
        raise ProtocolError(Ret.ENVELOPE, f"{what} envelope: {problem}")
    return obj


# --------------------------------------------------------------------------------------------
# Envelopes
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class ParsedRequest:
    """A verified, decrypted request envelope; ``raw`` is the envelope as received."""

    operator_id: str
    data: Any
    timestamp: datetime
    seq: str
    raw: dict


@dataclass(frozen=True)
class ParsedResponse:
    """A verified response envelope; ``data`` is ``None`` when ``Data`` was empty."""

    ret: int
    msg: str
    data: Any


def _format_seq(seq: int | str) -> str:
    text = str(seq) if isinstance(seq, int) and not isinstance(seq, bool) else seq
    if not isinstance(text, str) or not re.fullmatch(r"\d{1,4}", text):
        raise ValueError(f"Seq must be 0..9999 or 1-4 digits, got {seq!r}")
    return text.zfill(4)


def build_request(
    operator_id: str,
    data: dict | list,
    secrets: Secrets,
    *,
    timestamp: datetime | None = None,
    seq: int | str = 1,
) -> dict:
    """Encrypt and sign a request envelope with the sender's ``secrets``.

    >>> s = Secrets("MA59J8YL8", "s" * 16, "1234567890abcdef", "1234567890abcdef", "k" * 16)
    >>> env = build_request("MA59J8YL8", {"PageNo": 1}, s,
    ...                     timestamp=datetime(2024, 1, 1, tzinfo=CHINA_TZ), seq=7)
    >>> sorted(env), env["TimeStamp"], env["Seq"]
    (['Data', 'OperatorID', 'Seq', 'Sig', 'TimeStamp'], '20240101000000', '0007')
    """
    body = encrypt(_dumps(data), secrets.data_secret, secrets.data_iv)
    ts = format_timestamp(timestamp if timestamp is not None else datetime.now(UTC))
    seq_text = _format_seq(seq)
    return {
        "OperatorID": operator_id,
        "Data": body,
        "TimeStamp": ts,
        "Seq": seq_text,
        "Sig": sign(secrets.sig_secret, operator_id, body, ts, seq_text),
    }


_HEX32 = re.compile(r"[0-9A-Fa-f]{32}")
# 9 characters by the standard; up to 32 letters, digits, "-" or "_" accepted from platforms that differ
_OPERATOR_ID = re.compile(r"[0-9A-Za-z_-]{1,32}")
_REQUEST_FIELDS = ("OperatorID", "Data", "TimeStamp", "Seq", "Sig")


def _as_text(value: Any) -> Any:
    # Some clients send TimeStamp/Seq as JSON numbers; they signed the digits they sent.
    if isinstance(value, int) and not isinstance(value, bool):
        return str(value)
    return value


def parse_request(
    body: bytes | str | dict,
    lookup_secrets: Callable[[str], Secrets | None],
    *,
    now: datetime | None = None,
    window_seconds: int | None = 300,
) -> ParsedRequest:
    """Validate, verify and decrypt a request envelope; raise ``ProtocolError`` otherwise.

    The order matters: cheap shape checks first, then the operator, the clock window, and the
    signature *before* any decryption so unauthenticated input never reaches the cipher.
    ``lookup_secrets`` returns the secrets this platform shares with the sender (the set the
    sender encrypts and signs with), or ``None`` for an unknown operator.
    ``window_seconds=None`` disables the clock check (e.g. when replaying an archive).
    """
    env = _body_to_dict(body, "request")
    for name in _REQUEST_FIELDS:
        if name not in env or env[name] is None:
            raise ProtocolError(Ret.ENVELOPE, f"request envelope is missing {name}")

    operator_id = env["OperatorID"]
    if not isinstance(operator_id, str) or not _OPERATOR_ID.fullmatch(operator_id):
        raise ProtocolError(
            Ret.ENVELOPE, "OperatorID must be a 9-character organisation code (letters and digits)"
        )
    ts_text = _as_text(env["TimeStamp"])
    timestamp = parse_timestamp(ts_text)
    seq = _as_text(env["Seq"])
    if not isinstance(seq, str) or not re.fullmatch(r"\d{1,4}", seq):
        raise ProtocolError(
            Ret.ENVELOPE, f"Seq must be 1 to 4 digits such as 0001, got {str(seq)[:20]!r}"
        )
    data = env["Data"]
    if not isinstance(data, str) or not data.strip():
        raise ProtocolError(Ret.ENVELOPE, "Data must be a non-empty Base64 string")
    sig = env["Sig"]
    if not isinstance(sig, str) or not _HEX32.fullmatch(sig):
        raise ProtocolError(Ret.ENVELOPE, "Sig must be 32 hexadecimal characters (HMAC-MD5)")

    secrets = lookup_secrets(operator_id)
    if secrets is None:
        raise ProtocolError(Ret.ENVELOPE, f"unknown OperatorID {operator_id[:32]!r}")

    if window_seconds is not None:
        current = now if now is not None else datetime.now(UTC)
        if current.tzinfo is None:
            current = current.replace(tzinfo=CHINA_TZ)
        skew = abs((timestamp - current).total_seconds())
        if skew > window_seconds:
            raise ProtocolError(
                Ret.ENVELOPE,
                f"TimeStamp {ts_text} is {int(skew)} s away from the server clock "
                f"(allowed ±{window_seconds} s, China time UTC+8)",
            )

    expected = sign(secrets.sig_secret, operator_id, data, ts_text, seq)
    if not _same_sig(expected, sig):
        raise ProtocolError(
            Ret.SIGNATURE,
            "Sig does not match HMAC-MD5(SigSecret, OperatorID + Data + TimeStamp + Seq)",
        )

    plain = decrypt(data, secrets.data_secret, secrets.data_iv)
    try:
        decoded = _loads(plain)
    except ValueError as exc:
        raise ProtocolError(Ret.BUSINESS, "decrypted Data is not JSON"
                            + (" (nested too deeply)" if "deep" in str(exc) else "")) from None
    if not isinstance(decoded, (dict, list)):
        raise ProtocolError(Ret.BUSINESS, "decrypted Data must be a JSON object or array")
    problem = json_problem(decoded)
    if problem:
        raise ProtocolError(Ret.BUSINESS, f"Data: {problem}")
    return ParsedRequest(operator_id, decoded, timestamp, seq, env)


def build_response(ret: int, msg: str, data: dict | list | None, secrets: Secrets) -> dict:
    """Encrypt and sign a response envelope; ``Data`` is ``""`` when there is nothing to send.

    >>> s = Secrets("MA59J8YL8", "s" * 16, "1234567890abcdef", "1234567890abcdef", "k" * 16)
    >>> r = build_response(Ret.ENVELOPE, "Seq is missing", None, s)
    >>> r["Ret"], r["Data"], r["Sig"] == sign("k" * 16, "4003", "Seq is missing", "")
    (4003, '', True)
    """
    body = "" if data is None else encrypt(_dumps(data), secrets.data_secret, secrets.data_iv)
    code = int(ret)
    sig = sign(secrets.sig_secret, str(code), msg, body)
    return {"Ret": code, "Msg": msg, "Data": body, "Sig": sig}


def parse_response(body: bytes | str | dict, secrets: Secrets) -> ParsedResponse:
    """Verify and decrypt a response envelope with the responder's ``secrets``.

    ``Ret`` may arrive as an int or a string of digits; the signature is checked over the
    text as sent, before decrypting. A non-zero ``Ret`` is returned, not raised: the caller
    decides whether to retry (``-1``), renew the token (``4002``) or give up.
    """
    env = _body_to_dict(body, "response")
    for name in ("Ret", "Sig"):
        if name not in env or env[name] is None:
            raise ProtocolError(Ret.ENVELOPE, f"response envelope is missing {name}")
    ret_raw = env["Ret"]
    if isinstance(ret_raw, bool) or not isinstance(ret_raw, (int, str)):
        raise ProtocolError(Ret.ENVELOPE, "Ret must be an integer")
    ret_text = str(ret_raw).strip()
    if not re.fullmatch(r"-?\d+", ret_text):
        raise ProtocolError(Ret.ENVELOPE, f"Ret must be an integer, got {ret_text[:20]!r}")
    msg = env.get("Msg")
    msg = "" if msg is None else str(msg)
    data = env.get("Data")
    data = "" if data is None else data
    if not isinstance(data, str):
        raise ProtocolError(Ret.ENVELOPE, "Data must be a Base64 string")
    sig = env["Sig"]
    if not isinstance(sig, str) or not _HEX32.fullmatch(sig):
        raise ProtocolError(Ret.ENVELOPE, "Sig must be 32 hexadecimal characters (HMAC-MD5)")
    if not _same_sig(sign(secrets.sig_secret, ret_text, msg, data), sig):
        raise ProtocolError(
            Ret.SIGNATURE, "Sig does not match HMAC-MD5(SigSecret, Ret + Msg + Data)"
        )
    ret = int(ret_text)
    try:
        ret = Ret(ret)
    except ValueError:
        pass
    if not data.strip():
        return ParsedResponse(ret, msg, None)
    plain = decrypt(data, secrets.data_secret, secrets.data_iv)
    try:
        decoded = _loads(plain)
    except ValueError:
        raise ProtocolError(Ret.BUSINESS, "decrypted Data is not JSON") from None
    problem = json_problem(decoded)
    if problem:  # an operator's answer is input too: nothing with NUL reaches the database
        raise ProtocolError(Ret.BUSINESS, f"Data: {problem}")
    return ParsedResponse(ret, msg, decoded)


# Enumerations (value -> (zh label, en label)) live in services.stations.enums, shared with search
# and the portal; they are re-exported here for codec users.
from services.stations.enums import (  # noqa: E402
    CONNECTOR_STATUSES,
    CONNECTOR_TYPES,
    CONSTRUCTIONS,
    EQUIPMENT_TYPES,
    LOCK_STATUSES,
    NATIONAL_STANDARDS,
    PARK_STATUSES,
    STATION_STATUSES,
    STATION_TYPES,
)

# --------------------------------------------------------------------------------------------
# Business objects: field rules from Part 2
# --------------------------------------------------------------------------------------------

STATION_REQUIRED: tuple[str, ...] = (
    "StationID", "OperatorID", "EquipmentOwnerID", "StationName", "CountryCode", "AreaCode",
    "Address", "ServiceTel", "StationType", "StationStatus", "ParkNums", "StationLng",
    "StationLat", "Construction", "EquipmentInfos",
)
EQUIPMENT_REQUIRED: tuple[str, ...] = ("EquipmentID", "EquipmentType", "ConnectorInfos", "Power")
CONNECTOR_REQUIRED: tuple[str, ...] = (
    "ConnectorID", "ConnectorType", "VoltageUpperLimits", "VoltageLowerLimits", "Current",
    "Power", "NationalStandard",
)

_STATION_MAX = {
    "StationID": 20, "StationName": 50, "AreaCode": 20, "Address": 50, "StationTel": 30,
    "ServiceTel": 30, "SiteGuide": 100, "MatchCars": 100, "ParkInfo": 100, "BusineHours": 100,
    "ElectricityFee": 256, "ServiceFee": 100, "ParkFee": 100, "Payment": 20, "Remark": 100,
}
_STATION_EXACT = {"OperatorID": 9, "EquipmentOwnerID": 9, "CountryCode": 2}
_EQUIPMENT_MAX = {
    "EquipmentID": 23, "ManufacturerName": 30, "EquipmentModel": 20, "EquipmentName": 30,
}
_EQUIPMENT_EXACT = {"ManufacturerID": 9}
_CONNECTOR_MAX = {"ConnectorID": 26, "ConnectorName": 30, "ParkNo": 10}

_STATION_ENUMS = {
    "StationType": STATION_TYPES, "StationStatus": STATION_STATUSES, "Construction": CONSTRUCTIONS,
}
_EQUIPMENT_ENUMS = {"EquipmentType": EQUIPMENT_TYPES}
_CONNECTOR_ENUMS = {"ConnectorType": CONNECTOR_TYPES, "NationalStandard": NATIONAL_STANDARDS}

_STATION_INTS = ("StationType", "StationStatus", "ParkNums", "Construction", "SupportOrder")
_STATION_FLOATS = ("StationLng", "StationLat")
_STATION_STRS = (
    "StationID", "OperatorID", "EquipmentOwnerID", "AreaCode", "StationTel", "ServiceTel",
)
_EQUIPMENT_INTS = ("EquipmentType",)
_EQUIPMENT_FLOATS = ("EquipmentLng", "EquipmentLat", "Power")
_EQUIPMENT_STRS = ("EquipmentID", "ManufacturerID")
_CONNECTOR_INTS = ("ConnectorType", "NationalStandard")
_CONNECTOR_FLOATS = ("VoltageUpperLimits", "VoltageLowerLimits", "Current", "Power")
_CONNECTOR_STRS = ("ConnectorID", "ParkNo")
_STATUS_INTS = ("Status", "ParkStatus", "LockStatus")

#: Misspellings seen in the spec's own examples and in operators' feeds -> standard key.
#: ``SeviceMoney`` is not a StationInfo field at all, so it is passed through untouched.
_STATION_ALIASES = {
    "OperationID": "OperatorID",
    "BusinessHours": "BusineHours",
    "SeviceFee": "ServiceFee",
    "ServiceFees": "ServiceFee",
}


def _coerce_int(value: Any) -> Any:
    """``"50"`` -> 50 and ``50.0`` -> 50; anything else is returned for validation to flag."""
    if isinstance(value, bool):
        return value
    if isinstance(value, float) and value.is_integer():
        return int(value)
    if isinstance(value, str):
        text = value.strip()
        if re.fullmatch(r"[+-]?\d+", text):
            return int(text)
        if re.fullmatch(r"[+-]?\d+\.0*", text):
            return int(float(text))
        if not text:
            return None
    return value


def _coerce_float(value: Any) -> Any:
    if isinstance(value, bool):
        return value
    if isinstance(value, int):
        return float(value)
    if isinstance(value, str):
        text = value.strip()
        if not text:
            return None
        try:
            number = float(text)
        except ValueError:
            return value
        return number if number == number and abs(number) != float("inf") else value
    return value


def _coerce(obj: dict, ints: tuple, floats: tuple, strs: tuple) -> dict:
    out = dict(obj)
    for k in ints:
        if k in out:
            out[k] = _coerce_int(out[k])
    for k in floats:
        if k in out:
            out[k] = _coerce_float(out[k])
    for k in strs:
        if isinstance(out.get(k), int) and not isinstance(out.get(k), bool):
            out[k] = str(out[k])
    return out


def _as_list(value: Any, id_key: str) -> list:
    """Arrays sent as objects: a single item (it has ``id_key``) or a map of items."""
    if value is None:
        return []
    if isinstance(value, list):
        return value
    if isinstance(value, dict):
        if id_key in value or not value or not all(isinstance(v, dict) for v in value.values()):
            return [value]
        return list(value.values())
    return [value]


def _normalize_connector(obj: Any) -> Any:
    if not isinstance(obj, dict):
        return obj
    return _coerce(obj, _CONNECTOR_INTS, _CONNECTOR_FLOATS, _CONNECTOR_STRS)


def _normalize_equipment(obj: Any) -> Any:
    if not isinstance(obj, dict):
        return obj
    out = _coerce(obj, _EQUIPMENT_INTS, _EQUIPMENT_FLOATS, _EQUIPMENT_STRS)
    if "ConnectorInfos" in out:
        out["ConnectorInfos"] = [
            _normalize_connector(c) for c in _as_list(out["ConnectorInfos"], "ConnectorID")
        ]
    return out


def normalize_station_info(obj: dict) -> dict:
    """Return a copy of a StationInfo in the standard's spelling and types.

    Accepts ``OperationID``, ``BusinessHours``, numeric strings and equipment/connector lists
    sent as objects; unknown keys pass through unchanged. A standard key wins over its
    misspelling when both are present.

    >>> normalize_station_info({"OperationID": "MA59J8YL8", "StationType": "1",
    ...                         "StationLng": "113.5", "BusinessHours": "24h"})
    {'OperatorID': 'MA59J8YL8', 'StationType': 1, 'StationLng': 113.5, 'BusineHours': '24h'}
    >>> normalize_station_info({})
    {}
    """
    out: dict = {}
    for key, value in obj.items():
        std = _STATION_ALIASES.get(key, key)
        if std != key and std in obj:
            continue
        out[std] = value
    out = _coerce(out, _STATION_INTS, _STATION_FLOATS, _STATION_STRS)
    if isinstance(out.get("Pictures"), str):
        out["Pictures"] = [out["Pictures"]] if out["Pictures"] else []
    if "EquipmentInfos" in out:
        out["EquipmentInfos"] = [
            _normalize_equipment(e) for e in _as_list(out["EquipmentInfos"], "EquipmentID")
        ]
    return out


def _is_number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def _check(
    obj: dict,
    path: str,
    required: tuple,
    maxlen: dict,
    exact: dict,
    enums: dict,
    ints: tuple,
    numbers: tuple,
) -> list[str]:
    problems: list[str] = []
    for name in required:
        value = obj.get(name)
        if value is None or (isinstance(value, str) and not value.strip()):
            problems.append(f"{path}: required field {name} is missing")
    for name, limit in maxlen.items():
        value = obj.get(name)
        if isinstance(value, str) and len(value) > limit:
            problems.append(
                f"{path}: {name} is {len(value)} characters long, the limit is {limit}"
            )
    for name, size in exact.items():
        value = obj.get(name)
        if isinstance(value, str) and value and len(value) != size:
            problems.append(f"{path}: {name} should be {size} characters, got {len(value)}")
    for name in ints:
        value = obj.get(name)
        if value is not None and (not isinstance(value, int) or isinstance(value, bool)):
            problems.append(f"{path}: {name} must be an integer, got {value!r}")
    for name, table in enums.items():
        value = obj.get(name)
        if isinstance(value, int) and not isinstance(value, bool) and value not in table:
            allowed = ", ".join(str(v) for v in table)
            problems.append(f"{path}: {name} {value} is not a known value (allowed: {allowed})")
    for name in numbers:
        value = obj.get(name)
        if value is not None and not _is_number(value):
            problems.append(f"{path}: {name} must be a number, got {value!r}")
    return problems


def _label(obj: dict, kind: str, id_key: str, index: int | None) -> str:
    ident = obj.get(id_key)
    where = f"{kind}[{index}]" if index is not None else kind
    return f"{where} {id_key}={ident}" if ident not in (None, "") else where


def validate_station_info(obj: dict) -> list[str]:
    """Human-readable problems in a (normalised) StationInfo; empty when it conforms.

    Call it on the output of :func:`normalize_station_info`, so misspellings and numeric
    strings are not reported as problems the codec already repairs.

    >>> validate_station_info({"StationID": "S1"})[0]
    'StationInfo StationID=S1: required field OperatorID is missing'
    """
    if not isinstance(obj, dict):
        return ["StationInfo must be a JSON object"]
    path = _label(obj, "StationInfo", "StationID", None)
    problems = _check(
        obj, path, STATION_REQUIRED, _STATION_MAX, _STATION_EXACT, _STATION_ENUMS,
        _STATION_INTS, _STATION_FLOATS,
    )
    for name, low, high in (("StationLng", -180, 180), ("StationLat", -90, 90)):
        value = obj.get(name)
        if _is_number(value) and not low <= value <= high:
            problems.append(f"{path}: {name} {value} is outside {low}..{high}")
    equipments = obj.get("EquipmentInfos")
    if isinstance(equipments, list):
        if not equipments:
            problems.append(f"{path}: EquipmentInfos is empty; a station needs equipment")
        for i, eq in enumerate(equipments):
            if not isinstance(eq, dict):
                problems.append(f"{path}: EquipmentInfos[{i}] must be an object")
                continue
            epath = f"{path} > " + _label(eq, "EquipmentInfos", "EquipmentID", i)
            problems += _check(
                eq, epath, EQUIPMENT_REQUIRED, _EQUIPMENT_MAX, _EQUIPMENT_EXACT,
                _EQUIPMENT_ENUMS, _EQUIPMENT_INTS, _EQUIPMENT_FLOATS,
            )
            connectors = eq.get("ConnectorInfos")
            if isinstance(connectors, list):
                if not connectors:
                    problems.append(f"{epath}: ConnectorInfos is empty; equipment needs connectors")
                for j, con in enumerate(connectors):
                    if not isinstance(con, dict):
                        problems.append(f"{epath}: ConnectorInfos[{j}] must be an object")
                        continue
                    cpath = f"{epath} > " + _label(con, "ConnectorInfos", "ConnectorID", j)
                    problems += _check(
                        con, cpath, CONNECTOR_REQUIRED, _CONNECTOR_MAX, {},
                        _CONNECTOR_ENUMS, _CONNECTOR_INTS, _CONNECTOR_FLOATS,
                    )
            elif connectors is not None:
                problems.append(f"{epath}: ConnectorInfos must be an array")
    elif equipments is not None:
        problems.append(f"{path}: EquipmentInfos must be an array")
    return problems


def _business_dict(data: Any, what: str) -> dict:
    if data is None:
        return {}
    if not isinstance(data, dict):
        raise ProtocolError(Ret.BUSINESS, f"{what} Data must be a JSON object")
    return data


def stations_from_page(data: dict) -> list[dict]:
    """Normalised StationInfos of a ``query_stations_info`` page (or a pushed station).

    ``StationInfos`` may be an array, one station object, or a map of stations.

    >>> [s["StationID"] for s in stations_from_page({"StationInfos": {"StationID": 7}})]
    ['7']
    >>> stations_from_page({"PageNo": 1, "StationInfos": []})
    []
    """
    page = _business_dict(data, "query_stations_info")
    raw = page.get("StationInfos")
    if raw is None and "StationInfo" in page:  # notification_stationInfo (city variant)
        raw = page["StationInfo"]
    return [
        normalize_station_info(s) if isinstance(s, dict) else s
        for s in _as_list(raw, "StationID")
    ]


def _normalize_status(obj: Any) -> Any:
    if not isinstance(obj, dict):
        return obj
    return _coerce(obj, _STATUS_INTS, (), ("ConnectorID",))


def status_infos_from(data: dict) -> list[dict]:
    """StationStatusInfos of a ``query_station_status`` response, normalised.

    Accepts ``StationStatusInfos`` as an array or object, and variants that put the list
    under ``Total``; each ``ConnectorStatusInfos`` becomes an array with integer statuses.

    >>> status_infos_from({"Total": 1, "StationStatusInfos": {"StationID": "S1",
    ...     "ConnectorStatusInfos": {"ConnectorID": "C1", "Status": "3"}}})
    [{'StationID': 'S1', 'ConnectorStatusInfos': [{'ConnectorID': 'C1', 'Status': 3}]}]
    """
    body = _business_dict(data, "query_station_status")
    raw = body.get("StationStatusInfos")
    if raw is None:
        raw = body.get("StationStatusInfo")
    if raw is None and isinstance(body.get("Total"), (list, dict)):
        raw = body["Total"]
    out = []
    for info in _as_list(raw, "StationID"):
        if not isinstance(info, dict):
            out.append(info)
            continue
        info = _coerce(info, (), (), ("StationID",))
        if "ConnectorStatusInfos" in info:
            info["ConnectorStatusInfos"] = [
                _normalize_status(c) for c in _as_list(info["ConnectorStatusInfos"], "ConnectorID")
            ]
        out.append(info)
    return out
