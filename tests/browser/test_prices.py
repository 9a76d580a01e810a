"""The regulators' price execution and the operators' orders pages in real headless Chromium,
over the world of tests/orders_helpers.py: the pages render without script errors, the charts
draw, and the screenshots are kept for people to look at.

Screenshots: test-artifacts/prices-overview.png, prices-operator.png, prices-order.png,
prices-cap.png, backoffice-orders.png, backoffice-reconciliations.png, backoffice-tariffs.png,
home-charging.png.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.accounts_helpers import create_regulator
from tests.browser.test_feedback import _login
from tests.conftest import serve_app
from tests.orders_helpers import build_world

pytestmark = pytest.mark.browser


@pytest.fixture(scope="module")
def world(engine):  # noqa: ANN001, ANN201
    return build_world(engine)


@pytest.fixture(scope="module")
def server(settings, database, world) -> Iterator[str]:  # noqa: ANN001
    from portal_site.app import create_app

    with serve_app(create_app(settings, database=database)) as url:
        yield url


def test_regulator_price_execution_pages(server, browser, world, engine, artifacts) -> None:  # noqa: ANN001
    ctx = browser.new_context(viewport={"width": 1400, "height": 900})
    page = ctx.new_page()
    errors: list[str] = []
    page.on("pageerror", lambda e: errors.append(str(e)))
    _login(page, server, create_regulator(engine))
    page.goto(server + "/admin/prices")
    row = page.locator(f"#operators tr[data-operator='{world.a['operator_id']}']")
    assert row.count() == 1 and "价格运营商甲" in row.inner_text()
    assert page.locator("#over-cap .price-bar").count() >= 1
    page.screenshot(path=str(artifacts / "prices-overview.png"), full_page=True)
    row.locator("a").first.click()
    page.wait_for_load_state("networkidle")
    assert page.locator("#stations tbody tr").count() >= 3
    page.screenshot(path=str(artifacts / "prices-operator.png"), full_page=True)
    page.goto(server + f"/admin/prices/orders/{world.ids['over']}")
    assert "over_tariff" in page.locator("#findings").inner_text()
    page.screenshot(path=str(artifacts / "prices-order.png"), full_page=True)
    page.goto(server + "/admin/price-cap")
    page.screenshot(path=str(artifacts / "prices-cap.png"), full_page=True)
    page.goto(server + "/admin/dashboard")
    page.wait_for_function("document.querySelectorAll('canvas').length === 5 && "
                           "[...document.querySelectorAll('canvas')].every(c => c.width > 0)")
    page.screenshot(path=str(artifacts / "dashboard-prices.png"), full_page=True)
    ctx.close()
    assert not errors, errors


def test_operator_order_pages(server, browser, world, artifacts) -> None:  # noqa: ANN001
    ctx = browser.new_context(viewport={"width": 1400, "height": 900})
    page = ctx.new_page()
    errors: list[str] = []
    page.on("pageerror", lambda e: errors.append(str(e)))
    _login(page, server, world.a)
    page.goto(server + "/backoffice/orders")
    assert page.locator("#orders tbody tr").count() == 7
    page.screenshot(path=str(artifacts / "backoffice-orders.png"), full_page=True)
    page.goto(server + "/backoffice/reconciliations")
    page.screenshot(path=str(artifacts / "backoffice-reconciliations.png"), full_page=True)
    page.goto(server + f"/backoffice/reconciliations/{world.check_id}")
    page.screenshot(path=str(artifacts / "backoffice-check.png"), full_page=True)
    page.goto(server + "/backoffice/tariffs")
    assert page.locator(".station-block").count() == 2
    page.screenshot(path=str(artifacts / "backoffice-tariffs.png"), full_page=True)
    page.goto(server + "/")
    page.wait_for_function("document.getElementById('chart-charging').width > 0")
    page.locator("#charging").screenshot(path=str(artifacts / "home-charging.png"))
    ctx.close()
    assert not errors, errors
