"""The supervisors' inbox and the dashboard in a real browser (the machine's Chromium through
Playwright) at a phone's 390×844 and a desktop's 1366×900: the township discipline office lands
on its inbox, reads a warning in words and follows it to the exact submission of the case file;
the dashboard's trend axis labels never overlap at any range, 环节用时 is one labelled table, nothing
scrolls sideways; the case search's amount and person filters are laid out as fields. Screenshots
go to test-artifacts/inbox/ (gitignored)."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from sqlalchemy import update

from storage.models import User
from supervision_helpers import build_history
from test_warnings import expense
from web_helpers import PASSWORD, make_app, serve_in_thread

CHROMIUM = "/usr/bin/chromium"
ARTIFACTS = Path(__file__).resolve().parent.parent / "test-artifacts" / "inbox"
PHONE = {"width": 390, "height": 844}
DESKTOP = {"width": 1366, "height": 900}
NAMES = {"nanxi_all": "李建国", "township_discipline": "王纪检", "supervision_committee": "赵监督", "handler": "钱经手"}

pytestmark = [pytest.mark.browser,
              pytest.mark.skipif(not os.path.exists(CHROMIUM), reason="Chromium is not installed")]


@pytest.fixture
def history(xw, people, frozen):
    found = build_history(xw, people, frozen)
    nanxi = {**people, **{k: people["nanxi_all"] for k in ("handler", "director", "joint_meeting", "party_branch",
                                                            "bookkeeper", "supervision_committee", "committee")}}
    found["one_man"] = expense(xw, nanxi, org="NANXI", amount=800, until="compile")
    with xw.db.write() as s:
        for key, name in NAMES.items():
            s.execute(update(User).where(User.username == people[key]).values(display_name=name))
    return found


@pytest.fixture
def server(xw, history):
    with serve_in_thread(make_app(xw)) as base:
        yield base


def sign_in(browser, base, username, viewport):
    ctx = browser.new_context(viewport=viewport, locale="zh-CN", device_scale_factor=1)
    page = ctx.new_page()
    page.goto(base + "/login")
    page.fill("#username", username)
    page.fill("#password", PASSWORD)
    page.click("button:has-text('登录')")
    return ctx, page


def shot(page, name: str, tag: str) -> None:
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / f"{name}-{tag}.png"), full_page=True)


def no_sideways_scroll(page, viewport) -> None:
    assert page.evaluate("document.documentElement.scrollWidth") <= viewport["width"] + 1


def overlaps(boxes: list[dict]) -> list[tuple[int, int]]:
    return [(i, j) for i, a in enumerate(boxes) for j, b in enumerate(boxes) if i < j and
            a["x"] < b["x"] + b["width"] and b["x"] < a["x"] + a["width"] and
            a["y"] < b["y"] + b["height"] and b["y"] < a["y"] + a["height"]]


@pytest.mark.parametrize("viewport", [PHONE, DESKTOP], ids=["phone", "desktop"])
def test_inbox_in_words_to_the_submission(server, browser, xw, people, history, viewport):
    base, tag = server, "phone" if viewport == PHONE else "desktop"
    ctx, page = sign_in(browser, base, people["township_discipline"], viewport)
    page.wait_for_url(base + "/warnings")  # the discipline office lands on its inbox
    rows = page.locator("tr.warn-row")
    assert rows.count() >= 3
    text = page.locator("#warnings").inner_text()
    assert "李建国" in text and people["nanxi_all"] not in text and "事项 " not in text
    no_sideways_scroll(page, viewport)
    shot(page, "01-inbox", tag)
    page.locator("tr.warn-row", has_text="李建国").locator("td.title-cell a").click()
    page.wait_for_url(f"{base}/warnings/*")
    body = page.locator("main").inner_text()
    assert "李建国" in body and "南溪村" in body and "财务支出报销审批" in body
    for raw in ("actor", "pair", "roles", '["', "handler", people["nanxi_all"]):
        assert raw not in body, raw
    no_sideways_scroll(page, viewport)
    shot(page, "02-warning", tag)
    link = page.locator("#warning-submissions a.sub-link").first
    anchor = link.get_attribute("href").split("#")[1]
    link.click()
    page.wait_for_url(f"{base}/cases/{history['one_man']}#{anchor}")
    target = page.locator(f"#{anchor}")
    assert target.count() == 1
    assert target.is_visible()
    box = target.bounding_box()
    assert box is not None and -2 <= box["y"] < viewport["height"]  # scrolled to the submission
    shot(page, "03-submission", tag)
    ctx.close()


@pytest.mark.parametrize("viewport", [PHONE, DESKTOP], ids=["phone", "desktop"])
def test_dashboard_wall_and_case_search(server, browser, xw, people, history, viewport):
    base, tag = server, "phone" if viewport == PHONE else "desktop"
    ctx, page = sign_in(browser, base, people["township_discipline"], viewport)
    page.wait_for_url(base + "/warnings")
    for months in (6, 12, 24, 36):
        page.goto(f"{base}/dashboard?months={months}")
        labels = page.locator("#chart-trend svg text")
        boxes = [labels.nth(i).bounding_box() for i in range(labels.count())]
        assert not overlaps([b for b in boxes if b]), f"trend labels overlap at {months} months"
        no_sideways_scroll(page, viewport)
        if months == 12:
            shot(page, "04-dashboard", tag)
            for card in ("trend", "durations"):  # one card each, at the size a person sees it
                page.locator(f"#chart-{card}").screenshot(path=str(ARTIFACTS / f"04-{card}-{tag}.png"))
        if months == 36:
            shot(page, "05-dashboard-36", tag)
    head = page.locator("#durations-table thead").inner_text()
    assert "环节" in head and "平均用时" in head and "最慢一次" in head
    steps = page.locator("#durations-table tbody tr")
    keys = [steps.nth(i).inner_text() for i in range(steps.count())]
    assert steps.count() >= 1 and len(set(keys)) == len(keys)  # one row per step: no duplicates
    assert page.locator("#chart-durations a.xlsx-link").count() == 1
    assert page.locator("a.xlsx-link").count() >= 9  # every table and chart: Excel beside CSV
    page.goto(f"{base}/cases?scope=all&amount_min=1000&person={NAMES['handler']}")
    amount = page.locator("#c-amin").bounding_box()
    person = page.locator("#c-person").bounding_box()
    assert amount["height"] >= 36 and person["height"] >= 36  # styled as the form's other fields
    assert person["width"] >= 150
    assert page.locator("a.xlsx-link").count() == 1
    no_sideways_scroll(page, viewport)
    shot(page, "06-case-search", tag)
    ctx.close()


@pytest.mark.parametrize("viewport", [PHONE, DESKTOP], ids=["phone", "desktop"])
def test_english_warning_and_the_step_table_editor(server, browser, xw, people, history, viewport):
    base, tag = server, "phone" if viewport == PHONE else "desktop"
    ctx, page = sign_in(browser, base, people["township_discipline"], viewport)
    page.wait_for_url(base + "/warnings")
    page.goto(base + "/lang/en?next=/warnings")
    page.locator("tr.warn-row", has_text="李建国").locator("td.title-cell a").click()
    page.wait_for_url(f"{base}/warnings/*")
    facts = page.locator("#facts").inner_text()
    assert "Person" in facts and "Roles held in this case" in facts and "办理人" not in facts
    assert "Expense reimbursement approval" in page.locator("#warning-case").inner_text()
    no_sideways_scroll(page, viewport)
    shot(page, "07-warning-english", tag)
    ctx.close()
    ctx, page = sign_in(browser, base, people["township_staff"], viewport)
    page.wait_for_url(base + "/tasks")
    page.goto(base + "/procedures/new")
    unit = page.locator("#s0-tl_unit")
    assert unit.input_value() == "wd" and page.locator("#s0-tl_n").input_value() == "5"
    key = page.locator("input[name='s0.f0.name']")
    assert not key.is_visible()  # the key: behind the 高级 disclosure
    page.locator("#row-0 details.advanced summary").first.click()
    assert page.locator("#s0-id").is_visible()
    no_sideways_scroll(page, viewport)
    shot(page, "08-step-table", tag)
    page.locator("#row-0 table.fields-table").screenshot(path=str(ARTIFACTS / f"08-fields-{tag}.png"))
    ctx.close()
