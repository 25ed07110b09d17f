"""Import from another modeler in a real browser (Debian's Chromium through Playwright): township staff
import a Camunda diagram on 流程管理, complete it with the 导入助手 (lanes mapped to roles, tasks to steps,
the ``${…}`` condition translated), publish it from the procedure page; a villager's case on it reaches
the village cadre, who completes the step in 我的待办 and the case takes the translated gateway to 办结.
Screenshots go to test-artifacts/."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from test_import_foreign import CAMUNDA
from web_helpers import PASSWORD, make_app, serve_in_thread

CHROMIUM = "/usr/bin/chromium"
ARTIFACTS = Path(__file__).resolve().parent.parent / "test-artifacts"
DESKTOP = {"width": 1440, "height": 900}

pytestmark = [pytest.mark.browser,
              pytest.mark.skipif(not os.path.exists(CHROMIUM), reason="Chromium is not installed")]


@pytest.fixture
def server(xw):
    with serve_in_thread(make_app(xw)) as base:
        yield base


def shoot(page, name: str) -> None:
    ARTIFACTS.mkdir(exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / f"{name}-desktop.png"), full_page=True)


def sign_in(browser, base: str, username: str):
    context = browser.new_context(viewport=DESKTOP, locale="zh-CN", device_scale_factor=1)
    page = context.new_page()
    page.goto(base + "/login")
    page.fill("#username", username)
    page.fill("#password", PASSWORD)
    page.click("button:has-text('登录')")
    page.wait_for_url(base + "/tasks")
    return context, page


def test_township_imports_assists_publishes_and_a_cadre_runs_a_case(server, browser, xw, people, tmp_path):
    base = server
    source = tmp_path / "困难救助.bpmn"
    source.write_text(CAMUNDA, encoding="utf-8")

    ctx, page = sign_in(browser, base, people["township_staff"])
    page.goto(base + "/procedures")
    page.set_input_files("input[name=file]", str(source))
    page.click("button:has-text('导入为草稿')")
    page.wait_for_selector("#import-report")
    report = page.inner_text("#import-report")
    assert "已导入为草稿" in report and "Process_1" in report and "Traceback" not in page.content()
    shoot(page, "i01-import-report")

    page.click("#open-assistant")
    page.wait_for_selector("#assist-form")
    assert page.input_value("select[name='role:Lane_a']") == "applicant"  # suggested from 申请人
    assert page.input_value("select[name='role:Lane_b']") == "committee"  # from 村委会
    fixes = page.inner_text("#assist-fixed")
    assert "已转换为小微的条件:是否通过,且金额,不大于 5000" in fixes and "由无类型任务改为小微的办理步骤" in fixes
    shoot(page, "i02-assistant")
    page.select_option("select[name='kind:check']", "approval")
    page.click("button:has-text('修正并保存草稿')")
    page.wait_for_selector("#assist-result .done")
    assert "已保存为草稿第2稿" in page.inner_text("#assist-result")
    assert "校验通过,可以发布" in page.inner_text("#assist-result")

    page.goto(f"{base}/procedures/Process_1")
    page.fill("textarea[name=note]", "由 Camunda 导入")
    page.click("button:has-text('发布新版本')")
    page.wait_for_load_state()
    assert "已发布第1版" in page.inner_text("body")
    shoot(page, "i03-published")
    ctx.close()

    case = xw.start_case("Process_1", "DONGAO", people["applicant"])
    xw.complete(case, "apply", people["applicant"], {})

    ctx, page = sign_in(browser, base, people["committee"])
    page.click("a.btn:has-text('办理')")
    page.wait_for_selector("#s-check-amount")
    page.check("input[name=passed][value=true]")
    page.fill("#s-check-amount", "3000")
    shoot(page, "i04-cadre-step")
    page.click("button:has-text('提交办理')")
    page.wait_for_load_state()
    ctx.close()
    shown = xw.show_case(case)
    assert shown["status"] == "completed"
    assert xw.tasks(case) == []


def test_modeler_opens_a_library_chart_readable_and_hides_what_cannot_run(server, browser, xw, people):
    ctx, page = sign_in(browser, server, people["district_admin"])
    page.goto(f"{server}/procedures/V-DEC-01/modeler")
    page.wait_for_selector("#modeler-app[data-ready=true]", timeout=20000)
    zoom = page.evaluate("window.xiaoweiModeler.get('canvas').zoom()")
    assert 0.8 <= zoom <= 1, zoom  # fit to the width, never smaller than readable
    for action in ("create.data-store", "create.data-object", "create.group", "create.participant-expanded",
                   "create.subprocess-expanded"):
        assert page.is_hidden(f'.djs-palette .entry[data-action="{action}"]'), action
    assert page.is_visible('.djs-palette .entry[data-action="create.task"]')
    titles = page.eval_on_selector_all(".djs-palette .entry:not([style*='none'])", "els => els.map(e => e.title)")
    assert titles and all(t for t in titles), titles  # every offered tool has a tooltip
    shoot(page, "i05-library-modeler")
    ctx.close()
