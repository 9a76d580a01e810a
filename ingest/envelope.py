"""T/CEC 102 envelopes (Part 4): building, verifying and opening requests and responses.

A request is ``{OperatorID, Data, TimeStamp, Seq, Sig}``, a response ``{Ret, Msg, Data, Sig}``;
``Data`` is encrypted JSON (:mod:`ingest.crypto`) and ``Sig`` an HMAC-MD5 over the fields as
sent. Checks run cheapest first and the signature is verified before anything is decrypted.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Callable

from ingest.crypto import Secrets, decrypt, encrypt, same_signature, sign
from ingest.errors import ProtocolError, Ret
from ingest.json_text import compact_json, json_problem, parse_json
from ingest.times import CHINA_TZ, format_timestamp, parse_timestamp

__all__ = ["ParsedRequest", "ParsedResponse", "build_request", "build_response", "parse_request", "parse_response"]


def _body_to_dict(body: bytes | str | dict, what: str) -> dict:
    if isinstance(body, dict):
        return body
    try:
        text = body.decode("utf-8-sig") if isinstance(body, (bytes, bytearray)) else body
        text = text.lstrip("\ufeff")
    except (UnicodeDecodeError, AttributeError):
        raise ProtocolError(Ret.ENVELOPE, f"{what} body is not JSON (not UTF-8 text)") from None
    try:
        obj = parse_json(text)
    except ValueError as exc:
        raise ProtocolError(Ret.ENVELOPE, f"{what} body is not JSON"
                            + (" (nested too deeply)" if "deep" in str(exc) else "")) from None
    if not isinstance(obj, dict):
        raise ProtocolError(Ret.ENVELOPE, f"{what} body must be a JSON object")
    problem = json_problem(obj, 2, text=text)
    if problem:
        raise ProtocolError(Ret.ENVELOPE, f"{what} envelope: {problem}")
    return obj


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
    body = encrypt(compact_json(data), secrets.data_secret, secrets.data_iv)
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


_TIMESTAMPS: dict[str, datetime] = {}


def _parse_timestamp(ts_text: Any) -> datetime:
    """``parse_timestamp``, remembered: a busy sender's pushes share a few seconds (strptime is slow)."""
    if isinstance(ts_text, str):
        hit = _TIMESTAMPS.get(ts_text)
        if hit is not None:
            return hit
    timestamp = parse_timestamp(ts_text)  # raises on anything but a valid 14-digit time
    if len(_TIMESTAMPS) > 4096:
        _TIMESTAMPS.clear()
    _TIMESTAMPS[ts_text] = timestamp
    return timestamp


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
    timestamp = _parse_timestamp(ts_text)
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
    if not same_signature(expected, sig):
        raise ProtocolError(
            Ret.SIGNATURE,
            "Sig does not match HMAC-MD5(SigSecret, OperatorID + Data + TimeStamp + Seq)",
        )

    plain = decrypt(data, secrets.data_secret, secrets.data_iv)
    try:
        decoded = parse_json(plain)
    except ValueError as exc:
        raise ProtocolError(Ret.BUSINESS, "decrypted Data is not JSON"
                            + (" (nested too deeply)" if "deep" in str(exc) else "")) from None
    if not isinstance(decoded, (dict, list)):
        raise ProtocolError(Ret.BUSINESS, "decrypted Data must be a JSON object or array")
    problem = json_problem(decoded, text=plain)
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
    plain = None if data is None else compact_json(data)
    code = int(ret)
    # AES-CBC with the fixed DataSecretIV and HMAC are deterministic: the same small answer to the same
    # peer (a push's {"Status":0}) is the same envelope every time, so it is built once.
    key = (code, msg, plain, secrets) if plain is None or len(plain) <= 256 else None
    if key is not None:
        hit = _RESPONSES.get(key)
        if hit is not None:
            return dict(hit)
    body = "" if plain is None else encrypt(plain, secrets.data_secret, secrets.data_iv)
    sig = sign(secrets.sig_secret, str(code), msg, body)
    out = {"Ret": code, "Msg": msg, "Data": body, "Sig": sig}
    if key is not None:
        if len(_RESPONSES) > 4096:
            _RESPONSES.clear()
        _RESPONSES[key] = out
        return dict(out)
    return out


_RESPONSES: dict[tuple, dict] = {}


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
    if not same_signature(sign(secrets.sig_secret, ret_text, msg, data), sig):
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
        decoded = parse_json(plain)
    except ValueError:
        raise ProtocolError(Ret.BUSINESS, "decrypted Data is not JSON") from None
    problem = json_problem(decoded, text=plain)
    if problem:  # an operator's answer is input too: nothing with NUL reaches the database
        raise ProtocolError(Ret.BUSINESS, f"Data: {problem}")
    return ParsedResponse(ret, msg, decoded)
