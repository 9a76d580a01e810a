"""Portal pages: statistics, news with drafts and paging, the content editor, sanitising and
escaping, the API-key self-service, and the demo accounts."""

from __future__ import annotations

import secrets

import pytest
from sqlalchemy import text

from services.accounts.demo import DEMO_PASSWORD, ensure_demo_accounts
from services.portal.stats import platform_stats
from tests.accounts_helpers import create_operator_user, create_regulator, csrf_from, insert_station, login, logout

HTML = {"accept": "text/html"}


def test_home_statistics_by_district_and_type(client, engine) -> None:  # noqa: ANN001
    with engine.connect() as conn:
        before = platform_stats(conn)
    op = create_operator_user(engine)
    insert_station(engine, op["operator_id"], "统计测试站A", piles=3, connectors_per_pile=2, power_kw=120)
    insert_station(engine, op["operator_id"], "统计测试站B", district_adcode=440404, station_type=100, piles=1, power_kw=7)
    with engine.connect() as conn:
        after = platform_stats(conn)
    d = {k: after["totals"][k] - before["totals"][k] for k in ("stations", "piles", "connectors", "power_kw")}
    assert d == {"stations": 2, "piles": 4, "connectors": 7, "power_kw": 367.0}
    jinwan = next(x for x in after["by_district"] if x["adcode"] == 440404)
    assert jinwan["stations"] >= 1 and any(t["station_type"] == 100 for t in after["by_type"])
    page = client.get("/", headers=HTML)
    assert page.status_code == 200
    assert "chart-district" in page.text and "/static/vendor/chart.umd.min.js" in page.text
    assert "金湾区" in page.text


def test_news_editor_drafts_sanitising_and_escaping(client, engine) -> None:  # noqa: ANN001
    reg = create_regulator(engine)
    # the editor is for regulators only
    op = create_operator_user(engine)
    login(client, op["account_name"])
    assert client.get("/admin/content", headers=HTML).status_code == 403
    logout(client)
    login(client, reg["account_name"])
    token = csrf_from(client, "/admin/content/news/new")
    title = f"<script>alert('t')</script> 新闻 {secrets.token_hex(3)}"
    r = client.post("/admin/content/news/new", data={
        "_csrf": token, "title": title, "category": "policy", "state": "draft", "summary": "<b>摘要</b>",
        "body_md": "正文 **加粗**\n\n<script>alert(1)</script>\n\n<img src=x onerror=alert(2)>\n\n[link](javascript:alert(3))"},
        follow_redirects=False)
    assert r.status_code in (302, 303)
    news_id = int(r.headers["location"].split("/")[-1].split("?")[0])
    logout(client)
    # a draft is invisible to the public
    assert client.get(f"/news/{news_id}", headers=HTML).status_code == 404
    assert title not in client.get("/news", headers=HTML).text
    login(client, reg["account_name"])
    token = csrf_from(client, f"/admin/content/news/{news_id}")
    r = client.post(f"/admin/content/news/{news_id}", data={
        "_csrf": token, "title": title, "category": "policy", "state": "published", "summary": "<b>摘要</b>",
        "body_md": "正文 **加粗**\n\n<script>alert(1)</script>\n\n<img src=x onerror=alert(2)>\n\n[link](javascript:alert(3))"},
        follow_redirects=False)
    assert r.status_code in (302, 303)
    logout(client)
    page = client.get(f"/news/{news_id}", headers=HTML).text
    assert "<strong>加粗</strong>" in page
    prose = page.split('class="prose">')[1].split("</div>")[0]
    assert "<script" not in prose and "<img" not in prose and 'href="javascript' not in prose, prose
    assert "<script>alert" not in page
    assert "&lt;script&gt;alert(&#39;t&#39;)&lt;/script&gt;" in page  # the title is escaped
    listing = client.get("/news?category=policy", headers=HTML).text
    assert "&lt;b&gt;摘要&lt;/b&gt;" in listing and "<b>摘要</b>" not in listing
    assert title not in client.get("/news?category=industry", headers=HTML).text


def test_news_paging(client, engine) -> None:  # noqa: ANN001
    from services.portal.content import save_news

    with engine.begin() as conn:
        for i in range(12):
            save_news(conn, {"title": f"分页测试 {i}", "category": "industry", "state": "published"})
    first = client.get("/news?category=industry", headers=HTML).text
    assert 'aria-current="page">1<' in first and "page=2" in first
    second = client.get("/news?category=industry&page=2", headers=HTML)
    assert second.status_code == 200 and 'aria-current="page">2<' in second.text
    assert client.get("/news?page=abc", headers=HTML).status_code == 200


def test_page_editor_changes_about(client, engine) -> None:  # noqa: ANN001
    reg = create_regulator(engine)
    login(client, reg["account_name"])
    marker = secrets.token_hex(4)
    token = csrf_from(client, "/admin/content/pages/about")
    r = client.post("/admin/content/pages/about", data={"_csrf": token, "title": "关于我们", "state": "published",
                                                        "body_md": f"## 平台简介\n\n简介 {marker}\n\n## 平台历程\n\n## 重大事件"},
                    follow_redirects=False)
    assert r.status_code in (302, 303)
    page = client.get("/about", headers=HTML).text
    assert marker in page and "<h2>平台历程</h2>" in page
    assert client.get("/open-platform", headers=HTML).status_code == 200


def test_api_keys_self_service(client, engine) -> None:  # noqa: ANN001
    with engine.connect() as conn:
        if conn.execute(text("SELECT to_regclass('api_keys')")).scalar() is None:
            pytest.skip("api_keys table not there yet")
    page = client.get("/open-platform", headers=HTML).text
    assert "/login?next=/open-platform" in page
    a = create_operator_user(engine)
    b = create_operator_user(engine)
    login(client, a["account_name"])
    token = csrf_from(client, "/open-platform")
    r = client.post("/open-platform/keys", data={"_csrf": token, "name": "甲的应用"})
    assert r.status_code == 200
    assert "zk_" in r.text and "甲的应用" in r.text
    with engine.connect() as conn:
        key_id = conn.execute(text("SELECT id FROM api_keys WHERE owner_user_id = :u"), {"u": a["user_id"]}).scalar_one()
    logout(client)
    # another user can neither see nor revoke it
    login(client, b["account_name"])
    assert "甲的应用" not in client.get("/open-platform", headers=HTML).text
    r = client.post(f"/open-platform/keys/{key_id}/revoke", data={"_csrf": csrf_from(client, "/open-platform")},
                    follow_redirects=False)
    assert r.status_code == 404
    logout(client)
    login(client, a["account_name"])
    r = client.post(f"/open-platform/keys/{key_id}/revoke", data={"_csrf": csrf_from(client, "/open-platform")},
                    follow_redirects=False)
    assert r.status_code in (302, 303)
    with engine.connect() as conn:
        assert conn.execute(text("SELECT revoked_at FROM api_keys WHERE id = :i"), {"i": key_id}).scalar() is not None


def test_demo_accounts_are_idempotent_and_log_in(client, engine) -> None:  # noqa: ANN001
    op_id = "MA" + secrets.token_hex(4).upper()[:7]
    with engine.begin() as conn:
        first = ensure_demo_accounts(conn, [(op_id, "演示运营商")])
    with engine.begin() as conn:
        conn.execute(text("UPDATE users SET password_hash = 'x' WHERE account_name = 'regulator'"))
        second = ensure_demo_accounts(conn, [(op_id, "演示运营商")])
    assert first == second
    with engine.connect() as conn:
        assert conn.execute(text("SELECT count(*) FROM users WHERE account_name IN ('regulator', 'admin', :a)"),
                            {"a": f"op_{op_id.lower()}"}).scalar() == 3
        assert conn.execute(text("SELECT count(*) FROM site_pages")).scalar() >= 2
    by_role = {a["role"]: a for a in second}
    login(client, by_role["operator"]["account_name"], DEMO_PASSWORD)
    assert "注册成功" in client.get("/backoffice/", headers=HTML).text
    logout(client)
    login(client, "regulator", DEMO_PASSWORD)
    assert client.get("/admin/registrations", headers=HTML).status_code == 200
    logout(client)
    login(client, "admin", DEMO_PASSWORD)
    assert client.get("/admin/content", headers=HTML).status_code == 200
