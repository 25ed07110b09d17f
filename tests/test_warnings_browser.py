"""A real browser (Debian's Chromium through Playwright) against the app served by waitress: a
supervisor sees a red warning in 预警, opens the case trail from it, resolves the warning with an
opinion (its status changes and the trail shows the event); the dashboard and the heat map render
with data. Screenshots at phone (390×844) and desktop size go to test-artifacts/."""

from __future__ import annotations

import os

import pytest
from supervision_helpers import build_history
from test_web_browser import CHROMIUM, DESKTOP, PHONE, shoot, sign_in  # noqa: F401
from web_helpers import make_app, serve_in_thread

pytestmark = [pytest.mark.browser,
              pytest.mark.skipif(not os.path.exists(CHROMIUM), reason="Chromium is not installed")]


@pytest.fixture
def history(xw, people, frozen):
    return build_history(xw, people, frozen)


@pytest.fixture
def server(xw, history):
    with serve_in_thread(make_app(xw)) as base:
        yield base


@pytest.mark.parametrize("viewport", [PHONE, DESKTOP], ids=["phone", "desktop"])
def test_supervisor_resolves_a_red_warning(server, browser, xw, people, history, viewport):  # noqa: F811
    base, tag = server, "phone" if viewport == PHONE else "desktop"
    ctx, page = sign_in(browser, base, people["supervision_committee"], viewport=viewport)
    page.click("nav a:has-text('预警')")
    page.wait_for_url(base + "/warnings")
    red = page.locator("tr.warn-row.sev-red")
    assert red.count() == 1
    assert "超限额未进站" in red.inner_text()
    if tag == "phone":
        shoot(page, "w01-warnings")
    red.locator("td.title-cell a").click()
    page.wait_for_url(f"{base}/warnings/*")
    warning_url = page.url
    assert page.locator("#warning-status").inner_text() == "待处理"
    page.click("#trail-link")
    page.wait_for_url(f"{base}/cases/{history['red_case']}/trail")
    assert page.locator("#verify.verify-ok").count() == 1
    assert page.locator("li.ev-step_completed").count() >= 1
    page.go_back()
    page.wait_for_url(warning_url)
    page.click("button[value='resolve']")  # no opinion: the browser refuses the empty required field
    assert page.url == warning_url and page.locator("#warning-status").inner_text() == "待处理"
    page.fill("#opinion", "已核实:补办进站交易手续,款项暂停支付")
    if tag == "phone":
        shoot(page, "w02-warning-opinion")
    page.click("button[value='resolve']")
    page.wait_for_url(warning_url)
    assert page.locator("#warning-status").inner_text() == "已办结"
    assert "已核实:补办进站交易手续" in page.locator(".warn-history").inner_text()
    page.click("#trail-link")
    page.wait_for_url(f"{base}/cases/{history['red_case']}/trail")
    event = page.locator("li.ev-warning_resolved")
    assert event.count() == 1
    assert page.locator("#verify.verify-ok").count() == 1
    if tag == "phone":
        shoot(page, "w03-trail-resolved")
    ctx.close()


@pytest.mark.parametrize("viewport", [PHONE, DESKTOP], ids=["phone", "desktop"])
def test_dashboard_and_heat_map_render_with_data(server, browser, xw, people, viewport):  # noqa: F811
    base, tag = server, "phone" if viewport == PHONE else "desktop"
    ctx, page = sign_in(browser, base, people["township_discipline"], viewport=viewport)
    page.click("nav a:has-text('监督分析')")
    page.wait_for_url(base + "/dashboard")
    assert page.locator("svg.chart").count() >= 8
    bars = page.locator("#chart-villages svg rect.bar")
    assert bars.count() >= 1
    box = bars.first.bounding_box()
    assert box and box["width"] > 5 and box["height"] > 5  # drawn, not collapsed
    assert page.locator("#chart-trend path.trend-line").count() == 1
    width = page.evaluate("document.documentElement.scrollWidth")
    assert width <= viewport["width"] + 1, "the dashboard must not scroll sideways"
    assert page.locator("#kpi-red").inner_text() == "1"
    shoot(page, f"w04-dashboard-{tag}") if tag == "desktop" else shoot(page, "w04-dashboard")
    page.click("#heat-links a:has-text('V-DEC-01')")
    page.wait_for_url(f"{base}/dashboard/heat/V-DEC-01")
    tinted = page.locator("#heat-map g.node.heat-10")
    assert tinted.count() == 1
    assert page.locator("#heat-map g.heat-badge[data-step='collect']").count() == 1
    assert page.locator("#heat-steps tr[data-step='collect']").count() == 1
    shoot(page, f"w05-heat-{tag}") if tag == "desktop" else shoot(page, "w05-heat")
    ctx.close()
