"""News (P5) and editable page texts (P6 open platform, P7 about), written in Markdown.

Markdown is rendered with markdown-it-py (raw HTML off) and the result is sanitised with nh3
(an allow-list of tags, ``rel="noopener noreferrer"`` on links), so what a regulator types can
never run script in a visitor's browser.

>>> str(render_markdown("# 标题\\n\\n<script>alert(1)</script> **粗体** [x](javascript:alert(1))"))
'<h1>标题</h1>\\n<p>&lt;script&gt;alert(1)&lt;/script&gt; <strong>粗体</strong> [x](javascript:alert(1))</p>\\n'
>>> str(render_markdown(""))
''
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from datetime import datetime, timezone
from functools import cache
from typing import Any

import nh3
from markdown_it import MarkdownIt
from markupsafe import Markup
from sqlalchemy import delete, func, insert, select, update

from services.errors import BadRequest, NotFound
from services.models.accounts import News, SitePage

__all__ = ["CATEGORIES", "PAGE_SLUGS", "NewsPage", "delete_news", "get_news", "get_page", "list_news",
           "render_markdown", "save_news", "save_page"]

NEWS = News.__table__
PAGES = SitePage.__table__
CATEGORIES: dict[str, tuple[str, str]] = {"industry": ("行业新闻", "Industry news"), "policy": ("政策资讯", "Policy news")}
PAGE_SLUGS: dict[str, tuple[str, str]] = {"open-platform": ("开放平台", "Open platform"), "about": ("关于我们", "About us")}
_TAGS = {"h1", "h2", "h3", "h4", "h5", "h6", "p", "br", "hr", "strong", "em", "del", "blockquote", "code", "pre",
         "ul", "ol", "li", "a", "img", "table", "thead", "tbody", "tr", "th", "td"}
_ATTRS = {"a": {"href", "title"}, "img": {"src", "alt", "title"}, "th": {"align"}, "td": {"align"}, "ol": {"start"}}


@cache
def _md() -> MarkdownIt:
    return MarkdownIt("commonmark", {"html": False, "linkify": False, "typographer": False}).enable("table").enable("strikethrough")


def render_markdown(source: str | None) -> Markup:
    """Markdown → sanitised HTML, safe to put in a template unescaped."""
    if not source:
        return Markup("")
    html = _md().render(source)
    return Markup(nh3.clean(html, tags=_TAGS, attributes=_ATTRS, url_schemes={"http", "https", "mailto"},
                            link_rel="noopener noreferrer"))


@dataclass
class NewsPage:
    items: list[dict[str, Any]]
    page: int
    pages: int
    total: int


def list_news(conn: Any, *, category: str | None = None, page: int = 1, per_page: int = 10,
              include_drafts: bool = False) -> NewsPage:
    q = select(NEWS)
    if category:
        q = q.where(NEWS.c.category == category)
    if not include_drafts:
        q = q.where(NEWS.c.state == "published")
    total = conn.execute(select(func.count()).select_from(q.subquery())).scalar_one()
    pages = max(1, math.ceil(total / per_page))
    page = min(max(1, page), pages)
    rows = conn.execute(q.order_by(NEWS.c.published_at.desc().nulls_first(), NEWS.c.id.desc())
                        .limit(per_page).offset((page - 1) * per_page)).mappings().all()
    return NewsPage([dict(r) for r in rows], page, pages, total)


def get_news(conn: Any, news_id: int, *, include_drafts: bool = False) -> dict[str, Any]:
    q = select(NEWS).where(NEWS.c.id == news_id)
    if not include_drafts:
        q = q.where(NEWS.c.state == "published")
    row = conn.execute(q).mappings().first()
    if row is None:
        raise NotFound("没有这条资讯 / no such news item")
    return dict(row)


def _check_news(data: dict[str, Any]) -> dict[str, Any]:
    title = (data.get("title") or "").strip()
    category = data.get("category") or ""
    state = data.get("state") or "draft"
    if not 1 <= len(title) <= 200:
        raise BadRequest("标题为 1–200 字 / the title needs 1–200 characters", param="title")
    if category not in CATEGORIES:
        raise BadRequest("请选择分类 / choose a category", param="category")
    if state not in ("draft", "published"):
        raise BadRequest("invalid state", param="state")
    summary = (data.get("summary") or "").strip()[:500] or None
    return {"title": title, "category": category, "state": state, "summary": summary,
            "body_md": (data.get("body_md") or "").replace("\r\n", "\n")}


def save_news(conn: Any, data: dict[str, Any], *, news_id: int | None = None, author_user_id: int | None = None) -> int:
    """Create or update a news item; publishing stamps ``published_at`` the first time."""
    values = _check_news(data)
    now = datetime.now(timezone.utc)
    if news_id is None:
        values["published_at"] = now if values["state"] == "published" else None
        return conn.execute(insert(NEWS).values(author_user_id=author_user_id, **values)
                            .returning(NEWS.c.id)).scalar_one()
    current = conn.execute(select(NEWS.c.published_at).where(NEWS.c.id == news_id)).first()
    if current is None:
        raise NotFound("没有这条资讯 / no such news item")
    if values["state"] == "published" and current.published_at is None:
        values["published_at"] = now
    conn.execute(update(NEWS).where(NEWS.c.id == news_id).values(updated_at=func.now(), **values))
    return news_id


def delete_news(conn: Any, news_id: int) -> None:
    if conn.execute(delete(NEWS).where(NEWS.c.id == news_id)).rowcount == 0:
        raise NotFound("没有这条资讯 / no such news item")


def get_page(conn: Any, slug: str, *, include_drafts: bool = False) -> dict[str, Any] | None:
    q = select(PAGES).where(PAGES.c.slug == slug)
    if not include_drafts:
        q = q.where(PAGES.c.state == "published")
    row = conn.execute(q).mappings().first()
    return dict(row) if row else None


def save_page(conn: Any, slug: str, data: dict[str, Any], *, user_id: int | None = None) -> None:
    if slug not in PAGE_SLUGS:
        raise NotFound("no such page")
    title = (data.get("title") or "").strip() or PAGE_SLUGS[slug][0]
    state = data.get("state") if data.get("state") in ("draft", "published") else "published"
    values = {"title": title[:200], "title_en": (data.get("title_en") or "").strip()[:200] or None,
              "body_md": (data.get("body_md") or "").replace("\r\n", "\n"),
              "body_md_en": (data.get("body_md_en") or "").replace("\r\n", "\n") or None,
              "state": state, "updated_by": user_id}
    from sqlalchemy.dialects.postgresql import insert as pg_insert

    stmt = pg_insert(PAGES).values(slug=slug, **values)
    conn.execute(stmt.on_conflict_do_update(index_elements=[PAGES.c.slug],
                                            set_={**values, "updated_at": func.now()}))
