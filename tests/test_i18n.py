"""Chinese first, English second: every marked string has an English translation, the switch works,
and bilingual engine messages show the page's half."""

from __future__ import annotations

from pathlib import Path

import pytest
from babel.messages.extract import extract_from_dir

from web_helpers import login
from webui import i18n

ROOT = Path(__file__).resolve().parent.parent
METHODS = [("webui/**.py", "python"), ("engine/services/public_reads.py", "python"), ("webui/templates/**.html", "jinja2")]
OPTIONS = {"webui/templates/**.html": {"extensions": "jinja2.ext.i18n"}}


def marked() -> set[str]:
    found = set()
    for _file, _line, message, _comments, context in extract_from_dir(str(ROOT), METHODS, OPTIONS):
        msgid = message if isinstance(message, str) else message[0]
        found.add(f"{context}\x04{msgid}" if context else msgid)  # the catalogue's key for pgettext
    return found


def test_every_marked_string_has_english():
    english = i18n.catalogue("en")
    strings = marked()
    assert len(strings) >= 9, "the templates mark their text for translation"
    missing = sorted(s for s in strings if s not in english)
    assert missing == [], f"run `make messages` and translate: {missing[:20]}"


def test_english_catalogue_has_no_stale_or_chinese_translations():
    english = i18n.catalogue("en")
    stale = sorted(set(english) - marked())
    assert stale == [], f"translations of strings no longer in the app (run `make messages`): {stale[:20]}"
    for source, text in english.items():
        for t in (text if isinstance(text, tuple) else (text,)):
            assert not any("\u4e00" <= ch <= "\u9fff" for ch in t.replace("小微", "")), (source, t)


def test_switch_to_english_and_back(app, people):
    client = login(app, people["party_branch"])
    assert "我的待办" in client.get("/tasks").text
    switched = client.get("/lang/en?next=/tasks")
    assert switched.status_code == 302 and switched.headers["Location"].endswith("/tasks")
    page = client.get("/tasks").text
    assert '<html lang="en">' in page and "My tasks" in page and "Log out" in page
    client.get("/lang/zh?next=/tasks")
    page = client.get("/tasks").text
    assert '<html lang="zh-CN">' in page and "我的待办" in page


@pytest.mark.parametrize("target", ["https://evil.example/", "//evil.example/x", "/\\evil.example", "javascript:x"])
def test_switch_never_redirects_off_site(app, target):
    response = app.test_client().get("/lang/en", query_string={"next": target})
    assert response.status_code == 302 and response.headers["Location"] in ("/", "http://localhost/")


def test_browser_language_decides_until_chosen(app):
    client = app.test_client()
    assert '<html lang="en">' in client.get("/login", headers={"Accept-Language": "en-US,en;q=0.9"}).text
    assert '<html lang="zh-CN">' in client.get("/login", headers={"Accept-Language": "zh-CN,zh;q=0.9,en;q=0.5"}).text
    client.get("/lang/zh")
    assert '<html lang="zh-CN">' in client.get("/login", headers={"Accept-Language": "en"}).text


def test_bilingual_engine_messages_show_one_half(app):
    with app.test_request_context("/", headers={"Cookie": "xw_lang=en"}):
        assert i18n.lang_part("事项已办结 / the case is completed") == "the case is completed"
    with app.test_request_context("/"):
        assert i18n.lang_part("事项已办结 / the case is completed") == "事项已办结"
        assert i18n.lang_part("no separator") == "no separator"


def english(client):
    client.get("/lang/en")
    return client


def test_step_page_in_english_keeps_the_data_and_translates_the_ui(app, people, case_id):
    from web_helpers import COLLECT

    client = english(login(app, people["party_branch"]))
    page = client.get(f"/cases/{case_id}").text
    for text in ("Time limit", "10 days", "Role", "Village/community Party organization", "Upload materials",
                 "Submit", "Flowchart", "Back to my tasks"):
        assert text in page, text
    # the procedure's content in its English (issue #16); what people entered stays as written
    assert "Consult villagers (villagers speak)" in page and "Matter" in page
    assert "征求意见(村民说事)</h2>" not in page
    assert "提交办理" not in page and "办理时限" not in page
    broken = {k: v for k, v in COLLECT.items() if k != "matter_title"}
    failed = client.post(f"/cases/{case_id}/steps/collect", data={**broken, "csrf_token": client.csrf})
    assert failed.status_code == 422
    assert "The form has errors" in failed.text and "事项名称 is required" in failed.text
    assert "请填写“事项名称”" not in failed.text


def test_lists_and_forms_in_english(app, people, case_id):
    anonymous = english(app.test_client())
    login_page = anonymous.get("/login").text
    assert "Cadre sign-in" in login_page and "User name" in login_page and "干部登录" not in login_page
    client = english(login(app, people["party_branch"]))
    tasks = client.get("/tasks").text
    assert "Overdue only" in tasks and "Step to do" in tasks and ">Handle</a>" in tasks and "只看超期" not in tasks
    start = client.get("/start").text
    assert "Major decisions" in start and "Title (optional)" in start and "<h2>重大事项决策</h2>" not in start
    search = client.get("/cases", query_string={"from": "not-a-date"}).text
    assert "use YYYY-MM-DD" in search and "日期格式应为" not in search and "More filters" in search


def test_english_overview_and_error_pages(app, people, case_id):
    client = english(login(app, people["township_staff"]))
    overview = client.get("/overview").text
    assert "In progress: <strong" in overview and "办理中" not in overview
    outsider = english(login(app, people["nanxi_all"]))
    denied = outsider.get(f"/cases/{case_id}")
    assert denied.status_code == 403 and "Access denied" in denied.text and "无权访问" not in denied.text


def test_plural_with_named_variables(app):
    from flask import render_template_string

    with app.test_request_context("/"):
        out = render_template_string("{% trans count=n, who=who %}{{ who }} 有 {{ count }} 项{% pluralize %}"
                                     "{{ who }} 有 {{ count }} 项{% endtrans %}", n=3, who="张三")
        assert out == "张三 有 3 项"
        assert i18n.ngettext("%(num)s 项", "%(num)s 项", 2, num=2) == "2 项"


def test_admin_trail_and_public_board_in_english(app, xw, people, case_id):
    admin = english(login(app, people["township_staff"]))
    users = admin.get("/admin/users").text
    assert "Users and roles" in users and "Local parameters" in users and "Administration log" in users
    assert "New user" in users and "用户与角色" not in users and "新建用户" not in users
    log = admin.get("/admin/audit").text
    assert "Administration log check passed" in log and "Created user" in log and "新建用户" not in log

    trail = english(login(app, people["party_branch"])).get(f"/cases/{case_id}/trail").text
    assert "Trail check passed" in trail and "Export the trail (JSON)" in trail and "Started the case" in trail
    assert "Tracking code" in trail and "留痕校验通过" not in trail and "发起事项“" not in trail
    printed = english(login(app, people["party_branch"])).get(f"/cases/{case_id}/trail/print").text
    assert '<html lang="en">' in printed and "Head hash (SHA-256)" in printed and "链头哈希" not in printed

    board = english(app.test_client()).get("/public/DONGAO").text
    assert '<html lang="en">' in board and "Our money" in board and "Report a problem" in board
    assert "On public notice now" in board and "Major decisions" in board and "东岙村" in board  # names stay
    assert "我们的钱包" not in board and "正在公示" not in board
    assert 'href="/lang/zh?next=/public/DONGAO"' in board  # the switch back, in the footer
    chinese = app.test_client().get("/public/DONGAO").text
    assert "我们的钱包" in chinese and "正在公示" in chinese and 'href="/lang/en?next=/public/DONGAO"' in chinese


def test_warnings_and_dashboard_in_english(app, xw, people, frozen):
    from supervision_helpers import build_history
    from test_warnings import expense

    build_history(xw, people, frozen)
    expense(xw, people, payee="宏达建筑有限公司", amount=60000, category="project")
    client = english(login(app, people["township_discipline"]))
    inbox = client.get("/warnings?severity=red").text
    assert ">Warnings</a>" in inbox and ">Supervision analysis</a>" in inbox and ">Integrity files</a>" in inbox
    assert "WR-03 Above-threshold without platform transaction" in inbox and ">Red<" in inbox and ">New<" in inbox
    assert "宏达建筑有限公司" in inbox  # the warning's facts stay as recorded
    assert "超限额未进站" not in inbox and "没有符合条件" not in inbox and ">颜色<" not in inbox
    wid = xw.list_warnings(rule="WR-03")["warnings"][0]["id"]
    warning = client.get(f"/warnings/{wid}").text
    assert "Facts that raised the warning" in warning and "Open a supervision case" in warning
    assert "触发事实" not in warning and "立案督办" not in warning
    board = client.get("/dashboard").text
    assert "Open red warnings" in board and "Cases by procedure and status" in board and "Download CSV" in board
    assert "Monthly trend" in board and ">Red<" in board and "东岙村" in board  # village names stay
    assert "未办结红色预警" not in board and "下载CSV" not in board and ">红色<" not in board
    heat = client.get("/dashboard/heat/V-DEC-01").text
    assert "Procedure heat map" in heat and "avg. " in heat and "流程热力图" not in heat and ">平均" not in heat
    header = client.get("/dashboard/trend.csv").data.decode("utf-8-sig").splitlines()[0]
    assert header == "Month,Cases started,Cases closed,New warnings"
    chinese = login(app, people["township_discipline"]).get("/dashboard").text
    assert "未办结红色预警" in chinese and "下载CSV" in chinese and "Download CSV" not in chinese
