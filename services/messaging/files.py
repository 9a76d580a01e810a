"""Uploaded files (feedback photos, task proofs): the type is sniffed from the bytes, never trusted
from the client's Content-Type or file name.

>>> sniff(b"\\xff\\xd8\\xff\\xe0" + b"0" * 20)
'image/jpeg'
>>> sniff(b"\\x89PNG\\r\\n\\x1a\\n" + b"0" * 20)
'image/png'
>>> sniff(b"RIFF\\x00\\x00\\x00\\x00WEBPVP8 ")
'image/webp'
>>> sniff(b"%PDF-1.7 ...")
'application/pdf'
>>> sniff(b"<html><script>") is None
True
>>> sniff(b"") is None
True
>>> safe_filename("../../etc/passwd")
'passwd'
>>> safe_filename('报告 "终版".pdf')
'报告 _终版_.pdf'
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from services.errors import BadRequest, PayloadTooLarge

__all__ = ["IMAGE_TYPES", "PROOF_TYPES", "Upload", "check_upload", "safe_filename", "sniff"]

IMAGE_TYPES = frozenset({"image/jpeg", "image/png", "image/webp"})
PROOF_TYPES = IMAGE_TYPES | {"application/pdf", "application/zip"}
EXTENSIONS = {"image/jpeg": "jpg", "image/png": "png", "image/webp": "webp", "application/pdf": "pdf",
              "application/zip": "zip"}


@dataclass(frozen=True)
class Upload:
    filename: str
    content_type: str  # sniffed
    data: bytes


def sniff(data: bytes) -> str | None:
    """The media type of ``data`` by its magic number, or None when it is none we accept."""
    if data.startswith(b"\xff\xd8\xff"):
        return "image/jpeg"
    if data.startswith(b"\x89PNG\r\n\x1a\n"):
        return "image/png"
    if len(data) >= 12 and data[:4] == b"RIFF" and data[8:12] == b"WEBP":
        return "image/webp"
    if data.startswith(b"%PDF-"):
        return "application/pdf"
    if data.startswith(b"PK\x03\x04"):  # zip, docx, xlsx
        return "application/zip"
    return None


def safe_filename(name: str | None, default: str = "file") -> str:
    """The last path component, without quotes or control characters, at most 150 characters."""
    base = re.split(r"[\\/]", name or "")[-1]
    base = re.sub(r'[\x00-\x1f"<>|:*?;]', "_", base).strip(" .")
    return base[-150:] or default


def check_upload(filename: str | None, data: bytes, *, allowed: frozenset[str], max_bytes: int,
                 what: str = "文件 / file") -> Upload:
    """Validate one file: size, then sniffed type. Raises 413 or 400 with a message for people."""
    zh, _, en = what.partition(" / ")
    if not data:
        raise BadRequest(f"{zh}为空 / the {en or zh} is empty", param="file")
    if len(data) > max_bytes:
        raise PayloadTooLarge(f"{zh}过大（每个最多 {max_bytes // (1024 * 1024)} MB）/ the {en or zh} is larger than "
                              f"{max_bytes // (1024 * 1024)} MB")
    kind = sniff(data)
    if kind not in allowed:
        names = ", ".join(sorted(EXTENSIONS[k] for k in allowed))
        raise BadRequest(f"{zh}类型不支持（允许 {names}）/ unsupported {en or zh} type (allowed: {names})", param="file")
    return Upload(safe_filename(filename, f"file.{EXTENSIONS[kind]}"), kind, data)
