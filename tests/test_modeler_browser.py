"""流程图编辑器 in a real browser (Debian's Chromium through Playwright, desktop viewport): township
staff open a published procedure in the bpmn-js modeler (palette in Chinese), select a step, change
its time limit and add a form field in the Xiaowei panel, and save the draft (a save based on a stale
revision is refused with the message and the diagram stays in the page); then, on the procedure page,
the draft validates, the Chinese diff shows both changes, and it is published: a new case runs on
the new version while a case started before continues on the old one. Screenshots go to
test-artifacts/.

bpmn-js is installed from npm by ``make install`` (package.json) into webui/static/vendor/."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from conftest import do_step, ready_steps
from edit_helpers import bpmn
from engine.services import editing
from web_helpers import PASSWORD, make_app, serve_in_thread

CHROMIUM = "/usr/bin/chromium"
ROOT = Path(__file__).resolve().parent.parent
ARTIFACTS = ROOT / "test-artifacts"
VENDOR = ROOT / "webui" / "static" / "vendor" / "bpmn-js" / "bpmn-modeler.production.min.js"
DESKTOP = {"width": 1440, "height": 900}
PID = "Z-SVC-01"

pytestmark = [pytest.mark.browser,
              pytest.mark.skipif(not os.path.exists(CHROMIUM), reason="Chromium is not installed")]


@pytest.fixture
def server(xw):
    with serve_in_thread(make_app(xw)) as base:
        yield base


def shoot(page, name: str) -> None:
    ARTIFACTS.mkdir(exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / f"{name}-desktop.png"), full_page=True)


def open_modeler(page, base: str) -> None:
    page.goto(f"{base}/procedures/{PID}/modeler")
    page.wait_for_selector("#modeler-app[data-ready=true]", timeout=20000)


def edit_register_step(page) -> None:
    """Select 登记申请, set its time limit to 7 working days, add the field 联系电话 (phone)."""
    page.click('.djs-element.djs-shape[data-element-id="register"]')
    page.wait_for_selector("#xw-time-limit")
    assert page.input_value("#xw-time-limit") == "5wd"
    page.fill("#xw-time-limit", "7 days")
    page.press("#xw-time-limit", "Tab")
    assert "时限格式应为" in page.inner_text("#xw-time-limit-error")  # checked inline, not written
    page.fill("#xw-time-limit", "7wd")
    page.press("#xw-time-limit", "Tab")
    assert page.is_hidden("#xw-time-limit-error")
    before = page.locator("#xw-fields > li").count()
    page.click("#xw-add-field")
    page.wait_for_function(f"document.querySelectorAll('#xw-fields > li').length === {before + 1}")
    last = "#xw-fields > li:last-child"
    page.fill(f"{last} .xw-field-label", "联系电话")
    page.press(f"{last} .xw-field-label", "Tab")
    page.fill(f"{last} .xw-field-name", "phone_no")
    page.press(f"{last} .xw-field-name", "Tab")
    page.select_option(f"{last} select", "phone")
    assert page.locator(f"{last}.has-error").count() == 0


def diagram_xml(page) -> str:
    return page.evaluate("async () => (await window.xiaoweiModeler.saveXML({format: true})).xml")


def test_staff_edit_in_modeler_validate_diff_publish(server, browser, xw, people):
    assert VENDOR.is_file(), "bpmn-js is missing: run `make install` (needs node and npm)"
    staff = people["township_staff"]
    with xw.db.write() as s:
        editing.save_draft(s, PID, bpmn(), username=staff, expected_revision=0)
    with xw.db.write() as s:
        editing.publish_draft(s, PID, username=staff, note="首次发布")
    old_case = xw.start_case(PID, "DONGAO", people["committee"])
    do_step(xw, old_case, "register", people)

    context = browser.new_context(viewport=DESKTOP, locale="zh-CN", device_scale_factor=1)
    page = context.new_page()
    errors: list[str] = []
    page.on("pageerror", lambda exc: errors.append(str(exc)))
    page.on("console", lambda msg: errors.append(msg.text)
            if msg.type == "error" and not msg.text.startswith("Failed to load resource") else None)
    failed: list[str] = []
    page.on("response", lambda r: failed.append(f"{r.status} {r.url}") if r.status >= 400 else None)
    page.on("dialog", lambda dialog: dialog.accept())
    page.goto(server + "/login")
    page.fill("#username", staff)
    page.fill("#password", PASSWORD)
    page.click("button:has-text('登录')")
    page.wait_for_url(server + "/tasks")

    page.goto(f"{server}/procedures/{PID}")
    page.click("a:has-text('流程图编辑器')")
    page.wait_for_selector("#modeler-app[data-ready=true]", timeout=20000)
    # The palette speaks Chinese (labels and tooltips of the tools and shapes).
    titles = page.eval_on_selector_all(".djs-palette .entry",
                                       "els => els.map(e => e.getAttribute('aria-label') || e.title)")
    assert "创建任务" in titles and "创建网关(判断)" in titles and "抓手工具(拖动画布)" in titles, titles
    assert "第1版" in page.inner_text("#modeler-source")  # no draft yet: editing version 1
    shoot(page, "m01-modeler")

    # Someone else opens a draft meanwhile: this page's save is refused, its diagram kept.
    edit_register_step(page)
    with xw.db.write() as s:
        editing.new_draft_from_version(s, PID, username=people["district_admin"])
    page.click("#modeler-save")
    page.wait_for_selector("#modeler-status.bad")
    assert "草稿" in page.inner_text("#modeler-status") and "未丢失" in page.inner_text("#modeler-status")
    assert 'timeLimit="7wd"' in diagram_xml(page) and "联系电话" in diagram_xml(page)
    shoot(page, "m02-conflict")

    # Reopen the draft (revision 1), redo the edit, save.
    open_modeler(page, server)
    assert "草稿第1稿" in page.inner_text("#modeler-source")
    edit_register_step(page)
    # The context pad and the replace menu are Chinese too.
    pad = page.eval_on_selector_all(".djs-context-pad .entry", "els => els.map(e => e.title)")
    assert "接续任务" in pad and "删除" in pad, pad
    shoot(page, "m03-panel")
    page.click("#modeler-save")
    page.wait_for_selector("#modeler-status.ok")
    assert "已保存为草稿第2稿" in page.inner_text("#modeler-status")
    assert "校验通过" in page.inner_text("#modeler-status")
    with xw.db.read() as s:
        draft = editing.get_draft(s, PID)
        assert draft.revision == 2 and 'timeLimit="7wd"' in draft.bpmn_xml and 'name="phone_no"' in draft.bpmn_xml

    # Gateway conditions are checked inline against the form fields.
    flow_id = page.evaluate("""() => window.xiaoweiModeler.get('elementRegistry')
        .filter(e => e.type === 'bpmn:SequenceFlow' && e.businessObject.conditionExpression)[0].id""")
    page.evaluate("id => { const m = window.xiaoweiModeler; m.get('selection').select(m.get('elementRegistry').get(id)); }",
                  flow_id)
    page.wait_for_selector("#xw-condition")
    page.wait_for_selector("#xw-condition-result.ok")
    page.fill("#xw-condition", "no_such_field == True")
    page.press("#xw-condition", "Tab")
    page.wait_for_selector("#xw-condition-result.bad")
    assert "不存在的表单字段" in page.inner_text("#xw-condition-result")
    shoot(page, "m04-condition")
    page.keyboard.press("Control+z")  # undo: the draft on the server is unchanged anyway

    # The procedure page validates the draft and shows the Chinese diff, then publishes.
    page.goto(f"{server}/procedures/{PID}")
    text = page.inner_text("#draft")
    assert "校验通过,可以发布" in text
    assert "步骤“登记申请”的时限由5个工作日改为7个工作日。" in text
    assert "新增表单字段“联系电话”" in text
    shoot(page, "m05-diff")
    page.fill("textarea[name=note]", "登记时限延长,增加联系电话")
    page.click("button:has-text('发布新版本')")
    page.wait_for_selector("text=已发布第2版")
    shoot(page, "m06-published")
    context.close()

    new_case = xw.start_case(PID, "DONGAO", people["committee"])
    assert xw.show_case(new_case)["procedure_version"] == 2
    assert xw.show_case(old_case)["procedure_version"] == 1
    do_step(xw, old_case, "review", people)  # the old case continues on version 1
    assert ready_steps(xw, old_case) == ["review_supervision"]
    assert xw.show_case(old_case)["procedure_version"] == 1
    assert errors == []  # no script errors (and no CSP violations) on any page
    assert [f for f in failed if not f.endswith("/favicon.ico")] == [f"409 {server}/procedures/{PID}/modeler/save"]


def test_modeler_page_alone_allows_same_origin_scripts(app, people):
    from web_helpers import login

    district = login(app, people["district_admin"])
    page = district.get("/procedures/V-DEC-01/modeler")
    assert page.status_code == 200
    csp = page.headers["Content-Security-Policy"]
    assert "script-src 'self'" in csp and "'unsafe-inline'" not in csp.split("script-src")[1].split(";")[0]
    assert "<script>" not in page.text and "<script type=\"module\" src=" in page.text
    assert "script-src 'none'" in district.get("/procedures/V-DEC-01").headers["Content-Security-Policy"]
    data = district.get("/procedures/V-DEC-01/modeler/data.json").json
    assert data["revision"] == 0 and data["xml"].startswith("<?xml") and any(r["key"] == "committee" for r in data["roles"])
    check = district.post("/procedures/V-DEC-01/modeler/check", headers={"X-CSRF-Token": district.csrf},
                          json={"expression": "amount >= param(\"major_amount\")", "fields": ["amount"],
                                "params": ["major_amount"]})
    assert check.json == {"ok": True, "message": "条件有效。"}
    bad = district.post("/procedures/V-DEC-01/modeler/check", headers={"X-CSRF-Token": district.csrf},
                        json={"expression": "__import__('os')", "fields": [], "params": []})
    assert bad.json["ok"] is False and "不安全" in bad.json["message"]
    no_csrf = district.post("/procedures/V-DEC-01/modeler/save", json={"xml": "<x/>", "revision": 0})
    assert no_csrf.status_code == 400
