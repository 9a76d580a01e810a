"""Registration (P8) in real headless Chromium: the three steps, then the first login.

The app runs under uvicorn in a thread; mail goes to the database outbox (the default), where
the test reads the code. Screenshots: test-artifacts/register-step{1,2,3}.png,
register-step2-phone.png, backoffice-under-review.png, and a tour of the portal and review
pages (portal-*.png, admin-*.png).
"""

from __future__ import annotations

import re
import secrets
import time

import pytest
from sqlalchemy import text

from tests.accounts_helpers import create_regulator, insert_station, random_operator_id, valid_credit_code

pytestmark = pytest.mark.browser



def _outbox_code(engine, recipient: str) -> str:  # noqa: ANN001
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        with engine.connect() as conn:
            body = conn.execute(text("SELECT body FROM outbox WHERE recipient = :r ORDER BY id DESC LIMIT 1"),
                                {"r": recipient}).scalar()
        if body and (m := re.search(r"\b(\d{6})\b", body)):
            return m.group(1)
        time.sleep(0.1)
    raise AssertionError(f"no code for {recipient} in the outbox")


def test_three_registration_steps_then_login(server, browser, engine, artifacts) -> None:  # noqa: ANN001
    email = f"reg-{secrets.token_hex(3)}@example.com"
    account = f"zh_{secrets.token_hex(3)}"
    phone = "135" + "".join(secrets.choice("0123456789") for _ in range(8))
    op_id = random_operator_id()
    credit = valid_credit_code(op_id)
    ctx = browser.new_context(viewport={"width": 1280, "height": 900}, locale="zh-CN")
    page = ctx.new_page()
    errors: list[str] = []
    page.on("pageerror", lambda e: errors.append(str(e)))

    # step 1: e-mail, code, agreement
    page.goto(f"{server}/register")
    page.fill("#email", email)
    page.click("#send-code")
    page.wait_for_selector("text=验证码已发送")
    page.fill("#code", _outbox_code(engine, email))
    page.check("input[name=agree]")
    page.screenshot(path=str(artifacts / "register-step1.png"), full_page=True)
    page.click("#next-step")

    # step 2: the form; the OperatorID follows the credit code as it is typed
    page.wait_for_url(re.compile(r"/register/details$"))
    page.fill("#f-company_name", "珠海浏览器测试充电有限公司")
    page.type("#f-credit_code", credit.lower())
    assert page.input_value("#f-operator_id") == op_id
    page.fill("#f-address", "广东省珠海市香洲区情侣中路 88 号")
    page.fill("#f-legal_representative", "陈七")
    page.fill("#f-contact_name", "林八")
    page.fill("#f-phone", phone)
    page.fill("#f-account_name", account)
    page.fill("#f-password", "Browser!2026")
    page.fill("#f-password2", "Browser!2026")
    page.screenshot(path=str(artifacts / "register-step2.png"), full_page=True)
    phone_page = ctx.new_page()
    phone_page.set_viewport_size({"width": 390, "height": 844})
    phone_page.goto(f"{server}/register/details")
    phone_page.screenshot(path=str(artifacts / "register-step2-phone.png"), full_page=True)
    phone_page.close()
    page.click("#submit-registration")

    # step 3: success, naming the account
    page.wait_for_selector(".success-box")
    assert page.inner_text(".account-name") == account
    assert op_id in page.inner_text(".success-box")
    page.screenshot(path=str(artifacts / "register-step3.png"), full_page=True)

    # log in with the phone: the overview shows the review in progress and only the overview
    page.click("text=去登录")
    page.fill("#login", phone)
    page.fill("#password", "Browser!2026")
    page.click("button[type=submit]")
    page.wait_for_url(re.compile(r"/backoffice/$"))
    assert "审核中" in page.inner_text(".bo-page")
    assert page.locator(".bo-menu nav a").count() == 1
    page.screenshot(path=str(artifacts / "backoffice-under-review.png"), full_page=True)
    assert not errors, errors
    ctx.close()


def test_portal_and_review_pages_render(server, browser, engine, artifacts) -> None:  # noqa: ANN001
    """A tour for people to look at: the portal pages, the review list and detail, a rejected overview."""
    from services.accounts.demo import DEMO_PASSWORD, ensure_demo_accounts
    from services.portal.content import save_news

    with engine.begin() as conn:
        ensure_demo_accounts(conn, [("MA5DEMO01", "珠海示范充电有限公司")])
        save_news(conn, {"title": "<b>标题中的标签</b>应原样显示", "category": "industry", "state": "published",
                         "summary": "转义测试", "body_md": "**Markdown** 正文"})
    for i, (lng, lat, d) in enumerate([(113.55, 22.27, 440402), (113.30, 22.20, 440403), (113.35, 22.05, 440404)]):
        insert_station(engine, "MA5DEMO01", f"演示充电站{i}", lng=lng, lat=lat, district_adcode=d, piles=4 + i * 3,
                       connectors_per_pile=2, power_kw=60, station_type=1 if i else 100)
    ctx = browser.new_context(viewport={"width": 1280, "height": 900}, locale="zh-CN")
    page = ctx.new_page()
    errors: list[str] = []
    page.on("pageerror", lambda e: errors.append(str(e)))
    for path, name in [("/", "home"), ("/news", "news"), ("/open-platform", "open-platform"), ("/about", "about"),
                       ("/login", "login"), ("/forgot-password", "forgot-password"), ("/?lang=en", "home-en")]:
        page.goto(server + path)
        if path.startswith("/?") or path == "/":
            page.wait_for_function("document.querySelector('#chart-district') && "
                                   "document.querySelector('#chart-district').getAttribute('style')")
        page.screenshot(path=str(artifacts / f"portal-{name}.png"), full_page=True)
    assert "<b>标题中的标签</b>应原样显示" in page.goto(server + "/news").text() if False else True
    page.goto(server + "/news")
    assert page.locator("text=<b>标题中的标签</b>应原样显示").count() == 1  # shown as text, not markup
    page.set_viewport_size({"width": 390, "height": 844})
    page.goto(server + "/?lang=zh")
    page.screenshot(path=str(artifacts / "portal-home-phone.png"), full_page=True)
    page.set_viewport_size({"width": 1280, "height": 900})

    # a regulator reviews a pending registration
    reg = create_regulator(engine)
    with engine.connect() as conn:
        pk = conn.execute(text("SELECT id FROM operators WHERE registration_state = 'submitted' ORDER BY id DESC LIMIT 1")).scalar()
    page.goto(server + "/login")
    page.fill("#login", reg["account_name"])
    page.fill("#password", reg["password"])
    page.click("button[type=submit]")
    page.wait_for_url(re.compile(r"/admin/$"))
    page.goto(server + "/admin/registrations")
    page.screenshot(path=str(artifacts / "admin-registrations.png"), full_page=True)
    if pk:
        page.goto(f"{server}/admin/registrations/{pk}")
        page.fill("#reason", "营业执照扫描件不清晰，请重新提交。")
        page.screenshot(path=str(artifacts / "admin-registration-detail.png"), full_page=True)
        page.click("text=审核不通过")
        page.wait_for_selector("text=已处理")
    page.goto(server + "/admin/content")
    page.screenshot(path=str(artifacts / "admin-content.png"), full_page=True)
    page.goto(server + "/admin/content/pages/about")
    page.screenshot(path=str(artifacts / "admin-page-edit.png"), full_page=True)
    page.click("button.link-button")  # log out
    page.wait_for_url(re.compile(r"/$"))

    # the demo operator's approved overview
    page.goto(server + "/login")
    page.fill("#login", "op_ma5demo01")
    page.fill("#password", DEMO_PASSWORD)
    page.click("button[type=submit]")
    page.wait_for_url(re.compile(r"/backoffice/$"))
    assert "注册成功" in page.inner_text(".bo-page")
    page.screenshot(path=str(artifacts / "backoffice-approved.png"), full_page=True)
    page.goto(server + "/open-platform")
    page.screenshot(path=str(artifacts / "portal-open-platform-logged-in.png"), full_page=True)
    assert not errors, errors
    ctx.close()
