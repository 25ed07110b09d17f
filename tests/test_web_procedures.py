"""流程管理 pages: import a draft, validate, see the Chinese diff and side-by-side diagrams, publish
with a note, migrate running cases case by case; township staff edit only their township's procedures."""

from __future__ import annotations

import io

from conftest import add_user, do_step
from edit_helpers import bpmn
from web_helpers import login

PID = "Z-SVC-01"


def upload(client, data: bytes, name: str = "z.bpmn", replace: bool = True):
    """Import a file; ``replace``: the explicit choice to replace a draft of the same id (#15)."""
    form = {"csrf_token": client.csrf, "file": (io.BytesIO(data), name)}
    if replace:
        form["replace"] = "1"
    return client.post("/procedures/import", data=form, content_type="multipart/form-data")


def publish(client, note: str, revision: int, effective: str = ""):
    return client.post(f"/procedures/{PID}/publish", data={"csrf_token": client.csrf, "note": note,
                                                          "revision": str(revision), "effective": effective})


def test_township_staff_import_validate_diff_publish_migrate(app, xw, people):
    staff = login(app, people["township_staff"])
    page = upload(staff, bpmn())
    assert page.status_code == 200 and "已导入为草稿" in page.text and "可以执行" in page.text
    page = staff.get(f"/procedures/{PID}")
    assert "校验通过,可以发布" in page.text and "<svg" in page.text
    assert publish(staff, "首次发布", 1).status_code == 200
    old_case = xw.start_case(PID, "DONGAO", people["committee"])
    do_step(xw, old_case, "register", people)
    fresh_case = xw.start_case(PID, "DONGAO", people["committee"])

    assert upload(staff, bpmn(register_limit="7wd", phone_field=True)).status_code == 200
    page = staff.get(f"/procedures/{PID}")
    assert "步骤“登记申请”的时限由5个工作日改为7个工作日。" in page.text
    assert upload(staff, bpmn(register_limit="7wd", phone_field=True)).status_code == 200  # someone saves again
    stale = publish(staff, "过期的稿", 1)
    assert stale.status_code == 409 and "第2稿" in stale.text
    done = publish(staff, "登记时限延长", 2)
    assert done.status_code == 200 and "已发布第2版" in done.text and "新增表单字段“联系电话”" in done.text
    diff = staff.get(f"/procedures/{PID}?v1=1&v2=2")
    assert diff.text.count("<svg") >= 2 and "时限由5个工作日改为7个工作日" in diff.text

    result = staff.post(f"/procedures/{PID}/migrate", data={"csrf_token": staff.csrf, "to_version": "2",
                                                            "case": [str(old_case), str(fresh_case)]})
    assert result.status_code == 200
    assert "已迁移到第2版" in result.text  # the case that completed nothing
    assert "未迁移:已办步骤“登记申请”在新版本中有变化" in result.text  # the other stays on version 1
    assert xw.show_case(fresh_case)["procedure_version"] == 2
    assert xw.show_case(old_case)["procedure_version"] == 1


def test_other_township_and_villagers_cannot_edit(app, xw, people):
    staff = login(app, people["township_staff"])
    upload(staff, bpmn())
    publish(staff, "首次发布", 1)
    with xw.db.write() as s:
        from engine.core import directory

        directory.add_org(s, "BEIZ", "北镇", "township", "SFQ")
    other = login(app, add_user(xw, "beiz_staff", "township_staff@BEIZ"))
    assert other.post(f"/procedures/{PID}/draft", data={"csrf_token": other.csrf}).status_code == 403
    assert upload(other, bpmn(register_limit="9wd")).status_code == 403
    villager = login(app, people["committee"])
    assert villager.get("/procedures").status_code == 403


def test_hostile_upload_is_refused_with_a_report(app, people):
    staff = login(app, people["township_staff"])
    bomb = b'<?xml version="1.0"?><!DOCTYPE x [<!ENTITY a "aaaa">]><x>&a;</x>'
    page = upload(staff, bomb)
    assert page.status_code == 422 and "DOCTYPE" in page.text


def test_procedure_page_shows_local_parameters_by_level(app, xw, people):
    from engine.core import directory, procedures

    with xw.db.write() as s:
        procedures.set_param(s, directory.get_org(s, "SFZ"), "major_amount", "80000", actor="test")
        procedures.set_param(s, directory.get_org(s, "DONGAO"), "major_amount", "30000", actor="test")
    page = login(app, people["township_staff"]).get("/procedures/V-DEC-01")
    assert page.status_code == 200
    section = page.text.split('id="local-parameters"')[1].split("</section>")[0]
    assert "须走五议两公开的金额起点" in section and "50000" in section  # the procedure's default
    assert section.index("示范镇") < section.index("东岙村")  # township before village
    assert "80000" in section and "30000" in section
    assert "/admin/params?org=DONGAO" in section
