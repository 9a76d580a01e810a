"""The back-office left menu as data: one entry per B1–B13 page and per regulators' /admin/ page.

Pages are added by other modules at these paths; the menu only links to them. Until the
operator's registration is approved, entries with ``needs_approval`` are hidden (and the pages
themselves refuse access through ``auth.require_operator``).
"""

from __future__ import annotations

from typing import Any, NamedTuple

from portal_site.i18n import lang_of

__all__ = ["ADMIN_MENU", "MenuEntry", "OPERATOR_MENU", "backoffice_menu"]


class MenuEntry(NamedTuple):
    group: str
    zh: str
    en: str
    path: str
    needs_approval: bool


OPERATOR_MENU: list[MenuEntry] = [
    MenuEntry("overview", "运营商概览", "Overview", "/backoffice/", False),
    MenuEntry("archives", "站点档案", "Station archives", "/backoffice/stations", True),
    MenuEntry("archives", "报告档案", "Report archives", "/backoffice/reports", True),
    MenuEntry("archives", "设施档案", "Facility archives", "/backoffice/facilities", True),
    MenuEntry("interconnection", "互联互通配置", "Interconnection", "/backoffice/interconnection", True),
    MenuEntry("operator", "运营商配置", "Company profile", "/backoffice/profile", True),
    MenuEntry("operator", "通讯录", "Address book", "/backoffice/contacts", True),
    MenuEntry("operator", "消息通知", "Messages", "/backoffice/messages", True),
    MenuEntry("operator", "意见反馈", "Feedback", "/backoffice/feedback", True),
    MenuEntry("orders", "充电订单", "Charge orders", "/backoffice/orders", True),
    MenuEntry("orders", "每日对账", "Reconciliations", "/backoffice/reconciliations", True),
    MenuEntry("orders", "电价", "Tariffs", "/backoffice/tariffs", True),
    MenuEntry("orders", "数据质量", "Data quality", "/backoffice/data-quality", True),
    MenuEntry("subsidy", "补贴规则", "Subsidy rules", "/backoffice/subsidy/rules", True),
    MenuEntry("subsidy", "补贴申请", "Subsidy applications", "/backoffice/subsidy/applications", True),
    MenuEntry("subsidy", "财务核算", "Financial accounting", "/backoffice/subsidy/accounting", True),
    MenuEntry("supervision", "监管协助", "Supervision tasks", "/backoffice/tasks", True),
]

ADMIN_MENU: list[MenuEntry] = [
    MenuEntry("overview", "监管首页", "Overview", "/admin/", False),
    MenuEntry("review", "注册审核", "Registrations", "/admin/registrations", False),
    MenuEntry("review", "站点档案审核", "Station archives", "/admin/stations", False),
    MenuEntry("review", "设施档案审核", "Facility archives", "/admin/facilities", False),
    MenuEntry("review", "互联互通审核", "Interconnection", "/admin/interconnection", False),
    MenuEntry("review", "运营商信息变更", "Profile changes", "/admin/profile-changes", False),
    MenuEntry("subsidy", "补贴管理", "Subsidies", "/admin/subsidy/", False),
    MenuEntry("communication", "消息通知", "Messages", "/admin/messages", False),
    MenuEntry("communication", "意见反馈", "Feedback", "/admin/feedback", False),
    MenuEntry("communication", "通讯录", "Address book", "/admin/contacts", False),
    MenuEntry("supervision", "监管任务", "Supervision tasks", "/admin/tasks", False),
    MenuEntry("supervision", "运行监测", "Dashboard", "/admin/dashboard", False),
    MenuEntry("supervision", "价格执行", "Price execution", "/admin/prices", False),
    MenuEntry("supervision", "城市限价", "Price cap", "/admin/price-cap", False),
    MenuEntry("supervision", "数据质量", "Data quality", "/admin/data-quality", False),
    MenuEntry("portal", "门户内容", "Portal content", "/admin/content", False),
]

GROUP_NAMES: dict[str, tuple[str, str]] = {
    "overview": ("概览", "Overview"), "archives": ("档案管理", "Archives"),
    "interconnection": ("互联互通", "Interconnection"), "operator": ("运营商", "Company"),
    "orders": ("订单与电价", "Orders and prices"),
    "subsidy": ("补贴", "Subsidies"), "supervision": ("监管", "Supervision"), "review": ("审核", "Reviews"),
    "communication": ("沟通", "Communication"), "portal": ("门户", "Portal"),
}


def backoffice_menu(request: Any) -> list[dict[str, Any]]:
    """The entries this request's user may see, each ``{group, group_label, label, path, active}``."""
    user = request.scope.get("state", {}).get("user") if request is not None else None
    if user is None:
        return []
    entries = ADMIN_MENU if user.role in ("regulator", "admin") else OPERATOR_MENU
    en = lang_of(request) == "en"
    path = request.url.path
    out = []
    for e in entries:
        if e.needs_approval and not user.approved:
            continue
        active = path == e.path or (e.path not in ("/backoffice/", "/admin/") and path.startswith(e.path))
        out.append({"group": e.group, "group_label": GROUP_NAMES[e.group][1 if en else 0],
                    "label": e.en if en else e.zh, "path": e.path, "active": active})
    return out
