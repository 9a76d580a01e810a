"""T/CEC 102 cryptography (Part 4): the secret sets, AES-128-CBC of ``Data`` and HMAC-MD5 signatures.

Pure functions, no I/O. Keys and IVs are 16-character ASCII strings used as raw bytes, never
hex-decoded; ``Data`` is padded as UTF-8 bytes (PKCS#7), which keeps Chinese text intact.
"""

from __future__ import annotations

import base64
import binascii
import hmac
import re
from dataclasses import dataclass

from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes

from ingest.errors import ProtocolError, Ret

__all__ = ["Secrets", "decrypt", "encrypt", "same_signature", "sign"]


@dataclass(frozen=True)
class Secrets:
    """One direction's secret set. All values are 16-character ASCII used as raw bytes."""

    operator_id: str
    operator_secret: str
    data_secret: str
    data_iv: str
    sig_secret: str


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
    raw = plaintext.encode("utf-8")
    n = 16 - len(raw) % 16
    padded = raw + bytes((n,)) * n  # PKCS#7 over the bytes
    enc = _cipher(key, iv).encryptor()
    return base64.b64encode(enc.update(padded) + enc.finalize()).decode("ascii")


_CIPHERS: dict[tuple[str, str], Cipher] = {}


def _cipher(key: str, iv: str) -> Cipher:
    """The AES-128-CBC cipher of a DataSecret and DataSecretIV, made once per pair (the IV is fixed per
    secret set in T/CEC 102); each message gets its own encryptor or decryptor from it."""
    cipher = _CIPHERS.get((key, iv))
    if cipher is None:
        if len(_CIPHERS) > 10000:
            _CIPHERS.clear()
        cipher = _CIPHERS[(key, iv)] = Cipher(algorithms.AES(_key_bytes(key, "key")), modes.CBC(_key_bytes(iv, "iv")))
    return cipher


_WHITESPACE = re.compile(r"\s+")
_B64 = re.compile(r"[A-Za-z0-9+/=]*")


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
    ingest.errors.ProtocolError: 4003: Data is not valid Base64
    """
    cipher = _cipher(key, iv)
    try:
        raw = base64.b64decode(data if _B64.fullmatch(data) else _WHITESPACE.sub("", data), validate=True)
    except (binascii.Error, ValueError, TypeError):
        raise ProtocolError(Ret.ENVELOPE, "Data is not valid Base64") from None
    if not raw or len(raw) % 16:
        raise ProtocolError(
            Ret.ENVELOPE,
            f"Data cannot be decrypted: {len(raw)} bytes is not a positive multiple of the "
            "16-byte AES block",
        )
    dec = cipher.decryptor()
    padded = dec.update(raw) + dec.finalize()
    n = padded[-1]
    if not 1 <= n <= 16 or padded[-n:] != bytes((n,)) * n:
        raise ProtocolError(
            Ret.ENVELOPE,
            "Data cannot be decrypted: bad PKCS#7 padding (wrong DataSecret or DataSecretIV?)",
        )
    plain = padded[:-n]
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
    return hmac.digest(secret.encode("utf-8"), "".join(parts).encode("utf-8"), "md5").hex().upper()


def same_signature(expected: str, received: str) -> bool:
    """Constant-time, case-insensitive comparison of two hex signatures."""
    return hmac.compare_digest(expected.upper().encode("ascii"), received.upper().encode("ascii"))
