"""An objection in a real browser (Debian's Chromium through Playwright) against the app served by
waitress: a villager objects on a phone (390×844, no JavaScript) and gets a receipt code; the
村监会 sees the objection at once with the objector's name and phone; the 村委会 member whose
disclosure is objected to sees the count and never the name or phone; after the notice period the
村监会 opens the verification step with the objection on top and answers it; the villager's
tracking page shows the outcome.
Screenshots go to test-artifacts/objection-*.png."""

from __future__ import annotations

import os
from datetime import timedelta
from pathlib import Path

import pytest

from engine.core import clock
from engine.services.scenarios import walk
from web_helpers import PASSWORD, make_app, serve_in_thread

CHROMIUM = "/usr/bin/chromium"
ARTIFACTS = Path(__file__).resolve().parent.parent / "test-artifacts"
PHONE = {"width": 390, "height": 844}
DESKTOP = {"width": 1366, "height": 900}
NAME, MOBILE = "李秀英", "13912345678"
TEXT = "决议公开的金额与会议记录不一致,请核实"

pytestmark = [pytest.mark.browser,
              pytest.mark.skipif(not os.path.exists(CHROMIUM), reason="Chromium is not installed")]


def shoot(page, name: str, *, desktop: bool = False) -> None:
    ARTIFACTS.mkdir(exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / f"objection-{name}-phone.png"), full_page=True)
    if desktop:
        size = page.viewport_size
        page.set_viewport_size(DESKTOP)
        page.screenshot(path=str(ARTIFACTS / f"objection-{name}-desktop.png"), full_page=True)
        page.set_viewport_size(size)


def sign_in(browser, base: str, username: str):
    context = browser.new_context(viewport=PHONE, locale="zh-CN", device_scale_factor=1)
    page = context.new_page()
    page.goto(base + "/login")
    page.fill("#username", username)
    page.fill("#password", PASSWORD)
    page.click("button:has-text('登录')")
    page.wait_for_url(base + "/tasks")
    return context, page


def test_objection_on_a_phone_reaches_the_verifier_not_the_cadre_and_the_objector_sees_the_outcome(
        browser, xw, people):
    # The server thread runs on the real clock: so does this case, whose notice period must still run.
    with clock.using(clock.SystemClock()):
        case = xw.start_case("V-DEC-01", "DONGAO", people["party_branch"], {"title": "村东道路硬化工程"})
        walk(xw, case, people, stop_at="disclose_resolution_objections")
    code = xw.show_case(case)["tracking_code"]
    app = make_app(xw)
    app.config["PUBLIC_MIN_FILL_SECONDS"] = 1
    with serve_in_thread(app) as base:
        # A villager, on a phone, objects from the public case page.
        villager = browser.new_context(viewport=PHONE, locale="zh-CN", device_scale_factor=1,
                                       java_script_enabled=False)
        page = villager.new_page()
        page.goto(f"{base}/public/case/{code}")
        page.click("a.btn:has-text('提出异议')")
        page.fill("#text", TEXT)
        page.fill("#name", NAME)
        page.fill("#phone", MOBILE)
        page.wait_for_timeout(1100)
        shoot(page, "01-form")
        page.click("button:has-text('提交异议')")
        assert page.locator("h1").inner_text() == "异议已提交"
        receipt = page.locator("#receipt-code").inner_text()
        assert len(receipt.replace("-", "")) == 12
        assert page.locator("body").bounding_box()["width"] <= PHONE["width"]
        shoot(page, "02-receipt")
        page.goto(f"{base}/public/DONGAO")
        assert page.locator("text=已收到异议 1 件").count() == 1
        page.goto(f"{base}/public/case/{code}")
        assert page.locator(".notice >> text=已收到异议 1 件").count() == 1
        shoot(page, "02-public-case")
        assert page.locator(f"text={NAME}").count() == 0

        # The 村监会 sees it at once — in its tasks and on the case page, with name and phone.
        ctx, staff = sign_in(browser, base, people["supervision_committee"])
        assert staff.locator("#objection-inbox").count() == 1
        assert staff.locator("#objection-inbox >> text=由您核实").count() == 1
        shoot(staff, "03-verifier-tasks")
        staff.goto(f"{base}/warnings")  # the supervisors' inbox: its own section beside the warnings
        assert staff.locator("#objection-inbox >> text=村民异议").count() == 1
        assert staff.locator(f"#objection-inbox >> text={NAME}").count() == 0
        shoot(staff, "03-verifier-warnings", desktop=True)
        staff.goto(f"{base}/tasks")
        staff.click("#objection-inbox a:has-text('村东道路硬化工程')")
        panel = staff.locator("#objections")
        assert panel.locator(f"text={TEXT}").count() == 1
        assert panel.locator(f"text={NAME}").count() == 1 and panel.locator(f"text={MOBILE}").count() == 1
        assert panel.locator("text=已收到异议 1 件").count() == 1
        shoot(staff, "04-verifier-case", desktop=True)
        ctx.close()

        # The 村委会 member who did the disclosure: counted, never the name or phone, page nor trail.
        ctx, cadre = sign_in(browser, base, people["committee"])
        cadre.goto(f"{base}/cases/{case}")
        assert cadre.locator("text=已收到异议 1 件").count() == 1
        body = cadre.locator("body").inner_text()
        assert NAME not in body and MOBILE not in body
        shoot(cadre, "05-cadre-case", desktop=True)
        cadre.goto(f"{base}/cases/{case}/trail")
        trail = cadre.locator("body").inner_text()
        assert "收到村民异议(公示:决议公开)" in trail and TEXT in trail
        assert NAME not in trail and MOBILE not in trail and "objection_filed" not in trail
        shoot(cadre, "06-cadre-trail")
        cadre.locator("li.ev-objection_filed").screenshot(path=str(ARTIFACTS / "objection-06-cadre-trail-event.png"))
        ctx.close()

        # The notice period ends (the engine's clock moves past it): the 村监会 opens the verification
        # step, the objection with its objector on top, the count prefilled.
        later = clock.FixedClock(clock.SystemClock().now() + timedelta(days=8))
        with clock.using(later):
            xw.tick()
        assert [t["step_id"] for t in xw.tasks(case)] == ["disclose_resolution_objections"]
        ctx, staff = sign_in(browser, base, people["supervision_committee"])
        staff.goto(f"{base}/cases/{case}")
        card = staff.locator("#step-disclose_resolution_objections")
        assert card.locator(f"text={MOBILE}").count() == 1
        assert staff.input_value("#s-disclose_resolution_objections-objection_count") == "1"
        card.locator("input[name=objection_upheld][value=false]").check()
        staff.fill("#s-disclose_resolution_objections-objection_reply", "经核对会议记录,公示金额与决议一致")
        shoot(staff, "07-verifier-step", desktop=True)
        ctx.close()
        # Its answer is recorded on the engine's (moved) clock, so that the times read in order.
        with clock.using(later):
            later.advance(hours=20)
            xw.complete(case, "disclose_resolution_objections", people["supervision_committee"],
                        {"objection_count": 1, "objection_upheld": False,
                         "objection_reply": "经核对会议记录,公示金额与决议一致"})

        # The villager's tracking page: received → verified → the reply.
        page.goto(f"{base}/public/objection/{receipt}")
        assert page.locator("#objection-status").inner_text().strip() == "已核实:异议不成立"
        steps = page.locator("#objection-steps").inner_text()
        assert steps.index("收到异议") < steps.index("公示期满") < steps.index("已核实")
        assert "经核对会议记录,公示金额与决议一致" in steps
        assert NAME not in page.locator("body").inner_text()
        shoot(page, "08-tracking")
        villager.close()
