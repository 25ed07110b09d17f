"""任务单 (step-table editor): township staff create a procedure with the server-side form (rows of
steps, add/remove/reorder, fields, what a failing checkpoint does), the BPMN is generated with the
swimlane layout and saved as the draft; it passes lint, is published, and a case runs to the end.
Problems are shown in Chinese next to their rows; the second of two concurrent saves is refused
with the submitted table shown again."""

from __future__ import annotations

import re

from conftest import do_step, ready_steps
from web_helpers import login

PID = "Z-TBL-01"
REVISION = re.compile(r'name="revision" value="(\d+)"')

FIELDS_REGISTER = [
    {"name": "applicant_name", "label": "申请人", "type": "person", "required": True},
    {"name": "request", "label": "申请事项", "type": "textarea", "required": True, "public": True},
]
ROWS = [
    {"id": "register", "name": "登记申请", "role": "committee", "kind": "task", "time_limit": "5wd",
     "instructions": "登记村民的申请。", "basis": "《村民委员会组织法》第二条", "fields": FIELDS_REGISTER},
    {"id": "review", "name": "审核申请", "role": "committee", "kind": "approval", "time_limit": "3wd",
     "instructions": "村委会审核。", "on_fail": "end_rejected"},
    {"id": "supervise", "name": "监委会监督", "role": "supervision_committee", "kind": "supervision",
     "time_limit": "2wd", "on_fail": "register",
     "fields": [{"name": "supervision_opinion", "label": "监督意见", "type": "textarea", "public": True}]},
    {"id": "disclose", "name": "公示结果", "role": "committee", "kind": "disclosure", "time_limit": "2wd",
     "notice_days": "5"},
]


def form(rows: list[dict], *, action: str, revision: int = 0, pid: str = PID, name: str = "任务单测试事项") -> dict:
    data = {"id": pid, "name": name, "category": "SVC", "edition": "village", "description": "用任务单新建的事项。",
            "requires_disclosure": "1", "requires_supervision": "1", "revision": str(revision), "base": "",
            "nsteps": str(len(rows)), "action": action}
    for i, row in enumerate(rows):
        for key in ("id", "name", "role", "kind", "instructions", "basis", "on_fail", "notice_days"):
            data[f"s{i}.{key}"] = row.get(key, "")
        # the time limit as the page asks for it: a number and a unit from a list
        limit = re.fullmatch(r"(.*?)(wd|d|h)?", row.get("time_limit", ""))
        data[f"s{i}.tl_n"], data[f"s{i}.tl_unit"] = limit.group(1), limit.group(2) or "d"
        fields = row.get("fields", [])
        data[f"s{i}.nfields"] = str(len(fields))
        for j, f in enumerate(fields):
            for key in ("name", "label", "type", "options"):
                data[f"s{i}.f{j}.{key}"] = f.get(key, "")
            for key in ("required", "public"):
                if f.get(key):
                    data[f"s{i}.f{j}.{key}"] = "1"
    return data


def post(client, url: str, data: dict):
    return client.post(url, data={**data, "csrf_token": client.csrf})


def test_create_procedure_with_the_step_table_publish_and_run_a_case(app, xw, people, frozen):
    staff = login(app, people["township_staff"])
    page = staff.get("/procedures/new")
    assert page.status_code == 200 and "任务单" in page.text and 'value="add_step"' in page.text

    # Rows are added, moved and removed by submit buttons; nothing is saved meanwhile.
    rows = [ROWS[1], ROWS[0]]
    page = post(staff, "/procedures/new", form(rows, action="move_up:1"))
    assert page.status_code == 200 and page.text.index('value="register"') < page.text.index('value="review"')
    page = post(staff, "/procedures/new", form(ROWS[:2], action="add_step"))
    assert page.status_code == 200 and 'name="s2.id"' in page.text
    page = post(staff, "/procedures/new", form(ROWS[:2] + [{"id": "x"}], action="remove_step:2"))
    assert page.status_code == 200 and 'name="s2.id"' not in page.text
    page = post(staff, "/procedures/new", form(ROWS[:1], action="add_field:0"))
    assert 'name="s0.f2.name"' in page.text
    with xw.db.read() as s:
        from engine.services import editing

        assert editing.get_draft(s, PID) is None

    # Problems in Chinese next to the rows they concern; nothing saved.
    bad = [dict(ROWS[0], time_limit="5 days"), dict(ROWS[1], on_fail=""), *ROWS[2:]]
    page = post(staff, "/procedures/new", form(bad, action="save"))
    assert page.status_code == 422 and "未保存" in page.text
    row0 = page.text[page.text.index('id="row-0"'):page.text.index('id="row-1"')]
    assert "时限应为1–999的整数" in row0
    row1 = page.text[page.text.index('id="row-1"'):page.text.index('id="row-2"')]
    assert "须选择“未通过时”的去向" in row1
    assert 'value="5 days"' in page.text  # the submitted table is shown again
    # A gap lint finds (a path to 办结 that skips supervision) is shown on the table.
    unsupervised = [ROWS[0], ROWS[1], ROWS[3]]
    page = post(staff, "/procedures/new", form(unsupervised, action="check"))
    assert page.status_code == 200 and "绕过监督环节" in page.text

    page = post(staff, "/procedures/new", form(ROWS, action="save"))
    assert page.status_code == 200, page.text
    assert "已保存为草稿第1稿" in page.text and "校验通过" in page.text
    assert f'action="/procedures/{PID}/table"' in page.text

    show = staff.get(f"/procedures/{PID}")
    assert "校验通过,可以发布" in show.text and "<svg" in show.text
    done = staff.post(f"/procedures/{PID}/publish", data={"csrf_token": staff.csrf, "note": "任务单新建",
                                                        "revision": "1"})
    assert done.status_code == 200 and "已发布第1版" in done.text

    # A case runs end to end through the engine on the published version.
    case = xw.start_case(PID, "DONGAO", people["committee"])
    assert ready_steps(xw, case) == ["register"]
    do_step(xw, case, "register", people)
    do_step(xw, case, "review", people)
    do_step(xw, case, "supervise", people)
    do_step(xw, case, "disclose", people)
    frozen.advance(days=6)
    xw.tick()
    assert ready_steps(xw, case) == []
    shown = xw.show_case(case)
    assert shown["status"] == "completed"
    tasks = [e["data"]["step"] for e in shown["history"] if e["type"] == "step_completed"]
    assert tasks == ["register", "review", "supervise", "disclose"]

    # After publishing, the table reopens from the published version (the audited table behind it);
    # six days on, the staff member signs in again (a session lasts eight hours).
    staff = login(app, people["township_staff"])
    page = staff.get(f"/procedures/{PID}/table")
    assert page.status_code == 200 and 'value="supervise"' in page.text and "以第1版为基础" in page.text


def test_second_of_two_concurrent_saves_is_told_and_keeps_its_table(app, xw, people):
    staff = login(app, people["township_staff"])
    assert post(staff, "/procedures/new", form(ROWS, action="save")).status_code == 200
    first = staff.get(f"/procedures/{PID}/table")
    second = staff.get(f"/procedures/{PID}/table")
    assert REVISION.search(first.text).group(1) == REVISION.search(second.text).group(1) == "1"
    longer = [dict(ROWS[0], time_limit="7wd"), *ROWS[1:]]
    ok = post(staff, f"/procedures/{PID}/table", form(longer, action="save", revision=1))
    assert ok.status_code == 200 and "已保存为草稿第2稿" in ok.text
    renamed = [dict(ROWS[0], name="受理村民申请"), *ROWS[1:]]
    stale = post(staff, f"/procedures/{PID}/table", form(renamed, action="save", revision=1))
    assert stale.status_code == 409
    assert "保存冲突" in stale.text and "第2稿" in stale.text
    assert 'value="受理村民申请"' in stale.text  # nothing typed is lost
    with xw.db.read() as s:
        from engine.services import editing

        draft = editing.get_draft(s, PID)
        assert draft.revision == 2 and "受理村民申请" not in draft.bpmn_xml and 'timeLimit="7wd"' in draft.bpmn_xml


def test_new_procedure_id_must_be_free_and_library_table_reopens(app, people):
    staff = login(app, people["township_staff"])
    page = post(staff, "/procedures/new", form(ROWS, action="save", pid="V-DEC-01"))
    assert page.status_code == 422 and "已存在" in page.text
    district = login(app, people["district_admin"])
    page = district.get("/procedures/V-DEC-01/table")  # a library procedure generated from its table
    assert page.status_code == 200 and 'value="propose"' in page.text
    assert staff.get("/procedures/V-DEC-01/table").status_code == 403  # township staff do not edit the library


def test_time_limits_from_lists_and_keys_made_from_chinese_labels(app, xw, people):
    """Township staff pick 3 + 工作日 from lists and type only Chinese: field keys, a step id and
    choice values are made from the labels (pinyin); the keys sit behind an 高级 disclosure."""
    from engine.bpmn.keys import key_from_label

    staff = login(app, people["township_staff"])
    page = staff.get("/procedures/new").text
    assert 'name="s0.tl_n"' in page and 'name="s0.tl_unit"' in page and ">工作日</option>" in page
    assert 'placeholder="5wd' not in page
    head = page[page.index('id="row-0"'):]
    assert head.index("<details class=\"advanced\"") < head.index('name="s0.f0.name"')  # keys: advanced only
    rows = [{"id": "", "name": "登记申请", "role": "committee", "kind": "task", "time_limit": "3wd",
             "fields": [{"name": "", "label": "申请人姓名", "type": "person", "required": True},
                        {"name": "", "label": "申请事项", "type": "choice", "options": "宅基地;危房改造"},
                        {"name": "", "label": "申请事项", "type": "text"}]},
             ROWS[1], dict(ROWS[2], on_fail="end_rejected"), ROWS[3]]
    page = post(staff, "/procedures/new", form(rows, action="save"))
    assert page.status_code == 200, page.text
    assert 'value="shen_qing_ren_xing_ming"' in page.text and 'value="shen_qing_shi_xiang_2"' in page.text
    step = next(st for st in table_of(xw) if st["name"] == "登记申请")
    assert step["id"] == "deng_ji_shen_qing" and step["time_limit"] == "3wd"
    assert [f["name"] for f in step["fields"]] == ["shen_qing_ren_xing_ming", "shen_qing_shi_xiang",
                                                   "shen_qing_shi_xiang_2"]
    assert step["fields"][1]["options"] == [{"value": "zhai_ji_di", "label": "宅基地"},
                                            {"value": "wei_fang_gai_zao", "label": "危房改造"}]
    assert key_from_label("2026年计划") == "f_2026_nian_ji_hua" and key_from_label("!!") == "field"
    # a day count is kept as chosen; no number: no time limit
    assert table_of(xw)[1]["time_limit"] == "3wd"


def table_of(xw) -> list[dict]:
    import json

    from engine.services import editing

    with xw.db.read() as s:
        return json.loads(editing.get_draft(s, PID).step_table)["steps"]
