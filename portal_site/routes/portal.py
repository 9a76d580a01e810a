"""The public portal: home (P1), news (P5), open platform with self-service API keys (P6),
about (P7); and the regulators' content editor (/admin/content) for news and those pages."""

from __future__ import annotations

from typing import Annotated, Any

from litestar import Request, get, post
from litestar.enums import RequestEncodingType
from litestar.exceptions import NotFoundException
from litestar.params import Body
from litestar.response import Redirect, Template
from sqlalchemy import text

from portal_site import auth
from services.db import Database
from services.errors import AppError
from services.portal import content, defaults
from services.portal.stats import charging_stats, platform_stats
from services.settings import Settings
from services.params import MAX_PAGE, page_param

Form = Annotated[dict[str, Any], Body(media_type=RequestEncodingType.URL_ENCODED)]
PER_PAGE = 10


def _int(value: Any) -> int:
    """A forgiving page number for public pages: not a number means page 1, beyond the last
    possible page means that page (the list is then empty)."""
    text = str(value or "").strip()
    if not (text.isdigit() and text.isascii()):
        return 1
    return page_param(min(int(text), MAX_PAGE) or 1)


def _page_text(s: Any, slug: str, *, include_drafts: bool = False) -> dict[str, Any]:
    """The saved text of a page, or its default."""
    return content.get_page(s, slug, include_drafts=include_drafts) or {"slug": slug, **defaults.PAGES[slug],
                                                                         "state": "published"}


# --- public pages ----------------------------------------------------------------------------------
@get("/", sync_to_thread=True, include_in_schema=False)
def home(request: Request, db: Database, settings: Settings) -> Template:
    with db.session() as s:
        stats = platform_stats(s, settings.app.city_adcode)
        charging = charging_stats(s)
        news = content.list_news(s, per_page=6)
    return Template("portal/home.html", context={"stats": stats, "charging": charging, "news": news.items,
                                                 "categories": content.CATEGORIES})


@get("/news", sync_to_thread=True, include_in_schema=False)
def news_list(request: Request, db: Database) -> Template:
    category = request.query_params.get("category")
    category = category if category in content.CATEGORIES else None
    with db.session() as s:
        page = content.list_news(s, category=category, page=_int(request.query_params.get("page")), per_page=PER_PAGE)
    return Template("portal/news_list.html", context={"page": page, "category": category,
                                                      "categories": content.CATEGORIES})


@get("/news/{news_id:int}", sync_to_thread=True, include_in_schema=False)
def news_detail(request: Request, db: Database, news_id: int) -> Template:
    user = auth.current_user(request)
    preview = bool(user and user.is_regulator)  # regulators can preview drafts
    try:
        with db.session() as s:
            item = content.get_news(s, news_id, include_drafts=preview)
    except AppError as exc:
        raise NotFoundException(exc.message) from exc
    return Template("portal/news_detail.html", context={"item": item, "body": content.render_markdown(item["body_md"]),
                                                        "categories": content.CATEGORIES})


def _api_keys_available(s: Any) -> bool:
    """The keys UI appears once the search domain's ``api_keys`` table and module exist."""
    try:
        import services.search.apikeys  # noqa: F401
    except ImportError:
        return False
    return s.execute(text("SELECT to_regclass('api_keys')")).scalar() is not None


def _open_platform(request: Request, db: Database, *, new_key: str | None = None, error: str | None = None,
                   status: int = 200) -> Template:
    user = auth.current_user(request)
    keys: list[dict[str, Any]] = []
    with db.session() as s:
        page = _page_text(s, "open-platform")
        keys_available = _api_keys_available(s)
        if user is not None and keys_available:
            from services.search.apikeys import list_keys

            keys = list_keys(s, user.id)
    en = request.query_params.get("lang") == "en" or request.cookies.get("lang") == "en"
    body = content.render_markdown(page.get("body_md_en") if en and page.get("body_md_en") else page["body_md"])
    return Template("portal/open_platform.html", status_code=status, context={
        "page": page, "body": body, "keys": keys, "keys_available": keys_available, "new_key": new_key,
        "error": error})


@get("/open-platform", sync_to_thread=True, include_in_schema=False)
def open_platform(request: Request, db: Database) -> Template:
    return _open_platform(request, db)


@post("/open-platform/keys", guards=[auth.require_login], sync_to_thread=True, include_in_schema=False)
def create_api_key(request: Request, db: Database, data: Form) -> Template:
    """Create a key for the logged-in user; the plaintext is shown on this response only."""
    user = auth.current_user(request)
    try:
        with db.session() as s:
            if not _api_keys_available(s):
                raise NotFoundException("API keys are not available yet")
            from services.search.apikeys import create_key

            _, plaintext = create_key(s, user.id, data.get("name") or "")
    except AppError as exc:
        return _open_platform(request, db, error=exc.message, status=exc.status_code)
    return _open_platform(request, db, new_key=plaintext)


@post("/open-platform/keys/{key_id:int}/revoke", guards=[auth.require_login], sync_to_thread=True,
      include_in_schema=False)
def revoke_api_key(request: Request, db: Database, key_id: int) -> Redirect:
    user = auth.current_user(request)
    with db.session() as s:
        if not _api_keys_available(s):
            raise NotFoundException("API keys are not available yet")
        from services.search.apikeys import revoke_key

        revoke_key(s, key_id, user.id)  # another user's key is a 404
    return Redirect("/open-platform#api-keys")


@get("/about", sync_to_thread=True, include_in_schema=False)
def about(request: Request, db: Database) -> Template:
    with db.session() as s:
        page = _page_text(s, "about")
    en = request.query_params.get("lang") == "en" or request.cookies.get("lang") == "en"
    body = content.render_markdown(page.get("body_md_en") if en and page.get("body_md_en") else page["body_md"])
    return Template("portal/about.html", context={"page": page, "body": body})


# --- the regulators' content editor ---------------------------------------------------------------
@get("/admin/content", guards=[auth.require_regulator], sync_to_thread=True, include_in_schema=False)
def content_home(request: Request, db: Database) -> Template:
    with db.session() as s:
        news = content.list_news(s, page=_int(request.query_params.get("page")), per_page=20, include_drafts=True)
        pages = {slug: _page_text(s, slug, include_drafts=True) for slug in content.PAGE_SLUGS}
    return Template("admin/content.html", context={"news": news, "pages": pages, "categories": content.CATEGORIES,
                                                   "slugs": content.PAGE_SLUGS,
                                                   "flash": request.query_params.get("saved") and "已保存 / saved"})


@get("/admin/content/news/new", guards=[auth.require_regulator], sync_to_thread=False, include_in_schema=False)
def news_new(request: Request) -> Template:
    return Template("admin/news_edit.html", context={"item": {"category": "industry", "state": "draft"},
                                                     "categories": content.CATEGORIES})


@post("/admin/content/news/new", guards=[auth.require_regulator], sync_to_thread=True, include_in_schema=False)
def news_create(request: Request, db: Database, data: Form) -> Template | Redirect:
    user = auth.current_user(request)
    try:
        with db.session() as s:
            news_id = content.save_news(s, data, author_user_id=user.id)
    except AppError as exc:
        return Template("admin/news_edit.html", status_code=exc.status_code, context={
            "item": data, "categories": content.CATEGORIES, "flash": exc.message, "flash_error": True})
    return Redirect(f"/admin/content/news/{news_id}?saved=1")


@get("/admin/content/news/{news_id:int}", guards=[auth.require_regulator], sync_to_thread=True,
     include_in_schema=False)
def news_edit(request: Request, db: Database, news_id: int) -> Template:
    try:
        with db.session() as s:
            item = content.get_news(s, news_id, include_drafts=True)
    except AppError as exc:
        raise NotFoundException(exc.message) from exc
    return Template("admin/news_edit.html", context={
        "item": item, "categories": content.CATEGORIES, "preview": content.render_markdown(item["body_md"]),
        "flash": request.query_params.get("saved") and "已保存 / saved"})


@post("/admin/content/news/{news_id:int}", guards=[auth.require_regulator], sync_to_thread=True,
      include_in_schema=False)
def news_update(request: Request, db: Database, news_id: int, data: Form) -> Template | Redirect:
    try:
        with db.session() as s:
            content.save_news(s, data, news_id=news_id)
    except AppError as exc:
        return Template("admin/news_edit.html", status_code=exc.status_code, context={
            "item": {**data, "id": news_id}, "categories": content.CATEGORIES, "flash": exc.message,
            "flash_error": True})
    return Redirect(f"/admin/content/news/{news_id}?saved=1")


@post("/admin/content/news/{news_id:int}/delete", guards=[auth.require_regulator], sync_to_thread=True,
      include_in_schema=False)
def news_delete(request: Request, db: Database, news_id: int) -> Redirect:
    with db.session() as s:
        content.delete_news(s, news_id)
    return Redirect("/admin/content?saved=1")


@get("/admin/content/pages/{slug:str}", guards=[auth.require_regulator], sync_to_thread=True,
     include_in_schema=False)
def page_edit(request: Request, db: Database, slug: str) -> Template:
    if slug not in content.PAGE_SLUGS:
        raise NotFoundException("no such page")
    with db.session() as s:
        page = _page_text(s, slug, include_drafts=True)
    return Template("admin/page_edit.html", context={"page": page, "slug": slug, "label": content.PAGE_SLUGS[slug],
                                                     "preview": content.render_markdown(page["body_md"]),
                                                     "flash": request.query_params.get("saved") and "已保存 / saved"})


@post("/admin/content/pages/{slug:str}", guards=[auth.require_regulator], sync_to_thread=True,
      include_in_schema=False)
def page_save(request: Request, db: Database, slug: str, data: Form) -> Redirect:
    user = auth.current_user(request)
    with db.session() as s:
        content.save_page(s, slug, data, user_id=user.id)
    return Redirect(f"/admin/content/pages/{slug}?saved=1")


ROUTES: list[Any] = [home, news_list, news_detail, open_platform, create_api_key, revoke_api_key, about,
                     content_home, news_new, news_create, news_edit, news_update, news_delete, page_edit, page_save]
