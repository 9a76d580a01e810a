"""Documents the B1 overview and the B5 page offer for download: the protocol summary and the
joining guide (the import templates are built by ``services.archives.excel``)."""

from __future__ import annotations

from importlib import resources
from typing import Any

__all__ = ["DOCUMENTS", "get"]

#: name -> (file in services/archives/docs, media type, Chinese title, English title)
DOCUMENTS: dict[str, tuple[str, str, str, str]] = {
    "protocol-tcec102.md": ("protocol-tcec102.md", "text/markdown; charset=utf-8",
                            "互联互通通信协议摘要（T/CEC 102）", "Interconnection protocol summary (T/CEC 102)"),
    "joining-guide.md": ("joining-guide.md", "text/markdown; charset=utf-8", "运营商接入指南", "Joining guide"),
}


def get(name: str, settings: Any = None) -> tuple[bytes, str, str] | None:
    """(content, media type, file name) of a document, or None."""
    item = DOCUMENTS.get(name)
    if item is None:
        return None
    content = resources.files("services.archives").joinpath("docs", item[0]).read_bytes()
    return content, item[1], name
