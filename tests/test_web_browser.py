"""A real browser (Debian's Chromium through Playwright) against the app served by waitress:
a cadre starts V-DEC-01 and does the first step (with a form error on the way), another role
continues, a supervisor reads the trail with the executed path highlighted. Screenshots of each
page at phone (390×844) and desktop (1280×800) size go to test-artifacts/."""

from __future__ import annotations

import os
from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest
from web_helpers import PASSWORD, make_app, serve_in_thread

CHROMIUM = "/usr/bin/chromium"
ARTIFACTS = Path(__file__).resolve().parent.parent / "test-artifacts"
PHONE = {"width": 390, "height": 844}
DESKTOP = {"width": 1280, "height": 800}

pytestmark = [pytest.mark.browser,
              pytest.mark.skipif(not os.path.exists(CHROMIUM), reason="Chromium is not installed")]


@pytest.fixture
def server(xw):
    with serve_in_thread(make_app(xw)) as base:
        yield base


def shoot(page, name: str) -> None:
    """Screenshot the page at phone and desktop size."""
    ARTIFACTS.mkdir(exist_ok=True)
    size = page.viewport_size
    for label, viewport in (("phone", PHONE), ("desktop", DESKTOP)):
        page.set_viewport_size(viewport)
        page.screenshot(path=str(ARTIFACTS / f"{name}-{label}.png"), full_page=True)
    page.set_viewport_size(size)


def sign_in(browser, base: str, username: str, viewport=PHONE):
    context = browser.new_context(viewport=viewport, locale="zh-CN", device_scale_factor=1)
    page = context.new_page()
    page.goto(base + "/login")
    page.fill("#username", username)
    page.fill("#password", PASSWORD)
    page.click("button:has-text('登录')")
    # everyone lands on their tasks, township supervisors and pure supervisors on the warnings inbox
    page.wait_for_url(lambda url: url in (base + "/tasks", base + "/warnings"))
    return context, page


def test_cadre_supervisor_journey(server, browser, xw, people):
    base = server
    # A cadre (村党组织) signs in on a phone and starts a major-decision case.
    anon = browser.new_context(viewport=PHONE, locale="zh-CN")
    login_page = anon.new_page()
    login_page.goto(base + "/login")
    shoot(login_page, "01-login")
    anon.close()

    ctx, page = sign_in(browser, base, people["party_branch"])
    page.goto(base + "/start")
    shoot(page, "02-start")
    page.click("summary:has-text('村级重大决策事项(五议两公开)')")
    page.fill("#t-V-DEC-01", "村东道路硬化工程")
    page.click("button:has-text('发起“村级重大决策事项(五议两公开)”')")
    page.wait_for_url(f"{base}/cases/*")
    case_id = int(page.url.rsplit("/", 1)[1])
    assert page.locator("text=事项已发起").count() == 1
    shoot(page, "03-step-page")

    # First step with a required field missing: the Chinese error, the input kept, nothing changed.
    page.fill("#s-collect-matter_title", "")
    page.select_option("#s-collect-matter_type", "project")
    page.select_option("#s-collect-source", "villagers")
    page.fill("#s-collect-amount", "380000")
    page.fill("#s-collect-opinions_summary", "村民说事会上群众普遍支持硬化村东道路。")
    page.click("button:has-text('提交办理')")
    assert page.locator(".error-text", has_text="请填写“事项名称”").count() == 1
    assert page.input_value("#s-collect-opinions_summary") == "村民说事会上群众普遍支持硬化村东道路。"
    assert [t["step_id"] for t in xw.tasks(case_id)] == ["collect"]
    shoot(page, "04-form-error")
    page.fill("#s-collect-matter_title", "村东道路硬化工程")
    page.click("button:has-text('提交办理')")
    page.wait_for_selector("#next")
    assert "村党组织提议" in page.inner_text("#next")
    shoot(page, "05-next-step")
    # The same cadre proposes (the next step is theirs too).
    today = datetime.now(timezone(timedelta(hours=8))).date().isoformat()  # the server runs on the real clock
    page.fill("#s-propose-meeting_date", today)
    page.check("input[name=is_major][value=true]")
    page.fill("#s-propose-proposal", "硬化村东道路1.2公里,预算38万元。")
    page.click("button:has-text('提交办理')")
    page.wait_for_selector("#next")
    ctx.close()

    # Another role (两委联席会议) finds the step in 我的待办 and continues.
    ctx, page = sign_in(browser, base, people["joint_meeting"])
    assert page.inner_text("#task-count") == "1"
    shoot(page, "06-tasks")
    page.click("a.btn:has-text('办理')")
    page.fill("#s-consult-meeting_date", today)
    page.fill("#s-consult-consult_opinion", "同意初步方案。")
    page.check("input[name=supervisors_attended][value=true]")
    page.check("input[name=needs_township_review][value=false]")
    page.click("button:has-text('提交办理')")
    page.wait_for_selector("#next")
    assert "党员大会审议" in page.inner_text("#next")
    ctx.close()
    assert [t["step_id"] for t in xw.tasks(case_id)] == ["party_review"]

    # A supervisor (镇纪委) reads the trail: events, the verify badge and the highlighted path.
    ctx, page = sign_in(browser, base, people["township_discipline"], viewport=DESKTOP)
    page.goto(f"{base}/cases/{case_id}/trail")
    assert "留痕校验通过" in page.inner_text("#verify")
    assert page.locator("svg.xw-bpmn .flow.visited").count() >= 4
    assert page.locator("svg.xw-bpmn .node.state-current").count() == 1
    assert page.locator(".timeline .ev-step_completed").count() == 3
    assert page.locator(".timeline .ev-gateway_decided").count() >= 1
    shoot(page, "07-trail")
    page.goto(f"{base}/cases?scope=all")
    shoot(page, "08-cases")
    ctx.close()


def test_supervisor_judges_a_vote_from_the_case_file(server, browser, xw, people):
    """The 村监会 member opens the supervision of the representatives' vote on a phone: the counts stand
    next to the rule on top, both meetings are in the case file below, and signing returns the page."""
    from test_case_file import two_meetings

    case_id = xw.start_case("V-DEC-01", "DONGAO", people["party_branch"], {"title": "村道硬化工程"})
    two_meetings(xw, people, case_id)
    ctx, page = sign_in(browser, server, people["supervision_committee"])
    page.goto(f"{server}/cases/{case_id}")
    judge = page.locator("#judge-resolve_supervision")
    judge.wait_for()
    checks = judge.locator(".checks li")
    assert checks.count() >= 3
    text = judge.inner_text()
    assert "到会 47 人,达到应到 53 人的三分之二(至少 36 人)" in text
    assert "赞成 38 票,超过到会 47 人的半数(至少 24 票)" in text
    assert judge.locator(".checks li.ok").count() >= 2 and judge.locator(".checks li.bad").count() == 0  # quorum, pass
    box = judge.bounding_box()
    assert box is not None and box["width"] <= PHONE["width"]  # readable on the phone, no sideways scroll
    party = page.locator("#dossier-party_review")
    assert "41" in party.inner_text() and "37" in party.inner_text()
    shoot(page, "20-supervision-step")
    page.check("#s-resolve_supervision-signed_off-true") if page.locator("#s-resolve_supervision-signed_off-true").count() \
        else page.locator("input[name=signed_off][value=true]").check()
    page.fill("#s-resolve_supervision-supervision_opinion", "到会人数与票数核对无误")
    page.click("button:has-text('提交办理')")
    page.wait_for_selector("#next")
    assert "已提交“村民代表会议决议·监督”" in page.inner_text("#next")
    page.goto(f"{server}/cases/{case_id}/trail")
    shoot(page, "21-trail-in-words")
    body = page.inner_text("main") if page.locator("main").count() else page.inner_text("body")
    assert "到会 47 人,达到应到 53 人的三分之二" in body and "step_completed" not in body and "in_favour" not in body
    ctx.close()
