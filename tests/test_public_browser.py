"""The public side in a real browser (Debian's Chromium through Playwright) at phone size (390×844),
against the app served by waitress: a villager opens the village board, follows a case's QR link,
files an objection during the notice period, files a 码上举报 and follows it by its code.
Screenshots go to test-artifacts/public-*.png."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from engine.core import clock
from engine.services.scenarios import walk
from web_helpers import make_app, serve_in_thread

CHROMIUM = "/usr/bin/chromium"
ARTIFACTS = Path(__file__).resolve().parent.parent / "test-artifacts"
PHONE = {"width": 390, "height": 844}

pytestmark = [pytest.mark.browser,
              pytest.mark.skipif(not os.path.exists(CHROMIUM), reason="Chromium is not installed")]


def shoot(page, name: str) -> None:
    ARTIFACTS.mkdir(exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / f"public-{name}-phone.png"), full_page=True)


def test_villager_journey_on_a_phone(browser, xw, people):
    # The server thread runs on the real clock: so does this case, whose notice period must still run.
    with clock.using(clock.SystemClock()):
        case = xw.start_case("B-PUR-02", "DONGAO", people["handler"], {"title": "村委会办公用品采购"})
        walk(xw, case, people, stop_at="disclose_result_objections")
    code = xw.show_case(case)["tracking_code"]
    app = make_app(xw)
    app.config["PUBLIC_MIN_FILL_SECONDS"] = 1
    with serve_in_thread(app) as base:
        context = browser.new_context(viewport=PHONE, locale="zh-CN", device_scale_factor=1,
                                      java_script_enabled=False)  # the public side needs no JavaScript
        page = context.new_page()
        page.goto(f"{base}/public/DONGAO")
        assert page.locator("h1").inner_text() == "东岙村·村(居)务公开栏"
        assert page.locator("b.days").count() == 1  # 还剩 N 天
        width = page.locator("body").bounding_box()["width"]
        assert width <= PHONE["width"]
        shoot(page, "01-board")

        # The QR code on the notice and the receipt opens the case's progress page.
        page.click("text=村委会办公用品采购")
        page.wait_for_url(f"{base}/public/case/{code}")
        assert page.locator("text=公示中:采购结果公开").count() == 1
        qr_link = page.locator("a:has-text('打印回执')").get_attribute("href")
        page.goto(base + qr_link)
        assert page.locator(f"text={code}").count() >= 1
        shoot(page, "02-receipt")
        page.goto(f"{base}/public/case/{code}")
        shoot(page, "03-case")

        # An objection during the notice period.
        page.click("a.btn:has-text('提出异议')")
        page.fill("#text", "采购价格明显高于市场价,请核实")
        page.fill("#phone", "13900001111")
        page.wait_for_timeout(1100)
        shoot(page, "04-objection")
        page.click("button:has-text('提交异议')")
        assert page.locator("h1").inner_text() == "异议已提交"
        assert page.locator("#receipt-code").count() == 1  # the objector's receipt code
        page.click("text=查看事项办理进度")
        assert page.locator("text=收到公示异议1件").count() == 1
        assert page.locator("text=采购价格明显高于市场价").count() == 0

        # 码上举报, then follow it by its code from the board.
        page.goto(f"{base}/public/DONGAO")
        page.click("nav.big >> text=码上举报")
        page.select_option("#topic", "funds")
        page.fill("#text", "村里去年的保洁费用支出账目不清,请核查")
        page.wait_for_timeout(1100)
        shoot(page, "05-report")
        page.click("button:has-text('提交举报')")
        tracking = page.locator("#tracking-code").inner_text()
        shoot(page, "06-report-done")
        page.goto(f"{base}/public/DONGAO")
        page.fill("#code", tracking.lower())
        page.click("form.track button")
        page.wait_for_url(f"{base}/public/case/{tracking}")
        assert page.locator("text=码上举报受理与办理").count() >= 1
        assert page.locator("text=当前:受理登记").count() == 1
        assert page.locator("text=保洁费用").count() == 0
        shoot(page, "07-report-case")
        context.close()
