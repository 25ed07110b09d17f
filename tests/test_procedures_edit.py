"""Editing procedures: drafts and conflicts, publish with note and effective date, semantic diff in
Chinese, case migration, import from other modelers with a report, export round trip, hostile XML."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from click.testing import CliRunner
from sqlalchemy import select

from conftest import add_user, do_step, ready_steps
from edit_helpers import bpmn, table
from engine.core import audit, procedures
from engine.services import editing
from engine.cli import main
from engine.render.diagram import render_svg_bytes
from engine.bpmn.diffing import compare
from engine.core.errors import Conflict, Forbidden, InvalidProcedure
from engine.core.lint import lint_bytes
from engine.bpmn.steptable import build_bpmn
from storage.models import AuditEvent, Case, Procedure, ProcedureVersion

FIXTURES = Path(__file__).resolve().parent / "fixtures"
PID = "Z-SVC-01"


def publish(xw, xml: bytes, *, note: str = "", username: str | None = None, **kw) -> dict:
    with xw.db.write() as s:
        draft = editing.get_draft(s, PID)
        editing.save_draft(s, PID, xml, username=username, expected_revision=draft.revision if draft else 0)
    with xw.db.write() as s:
        return editing.publish_draft(s, PID, username=username, note=note, **kw)


def case_version(xw, case_id: int) -> int:
    with xw.db.read() as s:
        case = s.get(Case, case_id)
        return s.get(ProcedureVersion, case.procedure_version_id).version


@pytest.fixture
def v1(xw):
    return publish(xw, bpmn(), note="首次发布")


def test_publish_with_note_new_cases_use_new_version_old_case_continues(xw, people, v1):
    old_case = xw.start_case(PID, "DONGAO", people["committee"])
    do_step(xw, old_case, "register", people)
    result = publish(xw, bpmn(register_limit="7wd", phone_field=True), note="登记时限延长,增加联系电话")
    assert result["version"] == 2
    assert "时限由5个工作日改为7个工作日" in result["change_summary"]
    new_case = xw.start_case(PID, "DONGAO", people["committee"])
    assert case_version(xw, new_case) == 2
    assert case_version(xw, old_case) == 1
    # the old case continues to the end on version 1
    do_step(xw, old_case, "review", people)
    do_step(xw, old_case, "review_supervision", people)
    do_step(xw, old_case, "disclose", people)
    assert ready_steps(xw, old_case) == []
    with xw.db.read() as s:
        v = editing.get_version(s, PID, 2)
        assert v.note == "登记时限延长,增加联系电话" and "联系电话" in v.change_summary
        notices = editing.version_notices(s, [PID])
        assert notices[0]["version"] == 2 and notices[0]["change_summary"] == v.change_summary
        types = [e.type for e in s.scalars(select(AuditEvent).where(AuditEvent.chain == "system"))]
        assert {"draft_saved", "procedure_published", "draft_published"} <= set(types)
        assert editing.get_draft(s, PID) is None  # the draft became the version


def test_future_effective_date(xw, people, frozen, v1):
    frozen.advance(days=1)
    when = audit.db_time() + __import__("datetime").timedelta(days=10)
    result = publish(xw, bpmn(register_limit="7wd"), effective_from=when)
    assert result["effective_from"]
    assert case_version(xw, xw.start_case(PID, "DONGAO", people["committee"])) == 1
    with xw.db.read() as s:
        assert s.get(Procedure, PID).current_version_id == editing.get_version(s, PID, 1).id
    frozen.advance(days=11)
    assert case_version(xw, xw.start_case(PID, "DONGAO", people["committee"])) == 2
    # tick moves the procedure's pointer (lists, handbook, public side) and records it
    assert xw.tick()["versions_effective"] == [{"procedure_id": PID, "version": 2}]
    with xw.db.read() as s:
        assert s.get(Procedure, PID).current_version_id == editing.get_version(s, PID, 2).id
        assert s.scalar(select(AuditEvent).where(AuditEvent.type == "version_effective")) is not None
    assert "versions_effective" not in xw.tick()


def test_published_version_cannot_be_edited_in_place(xw, v1):
    with pytest.raises(Conflict, match="不可修改"):
        with xw.db.write() as s:
            editing.get_version(s, PID, 1).bpmn_xml = "<changed/>"
            s.flush()


def test_diff_in_chinese_time_limit_field_checkpoint(xw, v1):
    publish(xw, bpmn(register_limit="7wd", phone_field=True, supervision=False, notice_days=7))
    with xw.db.read() as s:
        comparison = editing.diff_versions(s, PID, 1, 2)
    text = comparison.summary_zh()
    assert "步骤“登记申请”的时限由5个工作日改为7个工作日。" in text
    assert "步骤“登记申请”新增表单字段“联系电话”(电话)。" in text
    assert "删除监督检查点“审核申请·监督”" in text or "删除监督检查点" in text
    assert "取消要求:办结路径不再必须经过监督环节。" in text
    assert "公示天数“结果公示最短天数”的默认值由5天改为7天。" in text
    assert "不再由村务监督委员会参与" in text or "不再由" in text
    kinds = {c.kind for c in comparison.changes}
    assert {"time_limit", "field_added", "checkpoint_removed", "param_default", "role_removed"} <= kinds
    assert "register" in comparison.marked_new()
    # side-by-side diagrams with the changes marked
    with xw.db.read() as s:
        old_svg = render_svg_bytes(editing.export_version(s, PID, 1), heat={e: 1.0 for e in comparison.marked_old()})
    assert old_svg.startswith("<svg")
    same = compare(comparison_def(bpmn()), comparison_def(bpmn()))
    assert same.same and same.summary_zh() == "流程内容没有变化。"


def comparison_def(xml: bytes):
    return editing.definition_of(xml)


def test_diff_conditions_and_renames():
    t = table()
    t2 = table()
    t2["steps"][1]["name"] = "审核登记"
    t2["steps"][1]["gateway"] = [{"when": "review_note == \"退回\"", "to": "register", "label": "退回"}]
    comparison = compare(comparison_def(build_bpmn(t)), comparison_def(build_bpmn(t2)))
    text = comparison.summary_zh()
    assert "步骤“审核申请”更名为“审核登记”。" in text
    assert "新增判断" in text


def test_migrate_safe_and_refused(xw, people, v1):
    waiting = xw.start_case(PID, "DONGAO", people["committee"])  # nothing completed yet
    advanced = xw.start_case(PID, "DONGAO", people["committee"])
    do_step(xw, advanced, "register", people)  # completed register on version 1
    publish(xw, bpmn(register_limit="7wd", phone_field=True))  # register changed
    with xw.db.write() as s:
        result = editing.migrate_case(s, waiting, 2)
    assert result["migrated"] and case_version(xw, waiting) == 2
    assert ready_steps(xw, waiting) == ["register"]
    with pytest.raises(Conflict) as refused:
        with xw.db.write() as s:
            editing.migrate_case(s, advanced, 2)
    assert "已办步骤“登记申请”在新版本中有变化" in refused.value.message
    assert refused.value.details["reasons"]
    assert case_version(xw, advanced) == 1
    # the migrated case runs to the end on version 2, and its trail records the migration
    do_step(xw, waiting, "register", people)
    do_step(xw, waiting, "review", people)
    do_step(xw, waiting, "review_supervision", people)
    do_step(xw, waiting, "disclose", people)
    assert ready_steps(xw, waiting) == []
    events = [e["type"] for e in xw.show_case(waiting)["history"]]
    assert "case_migrated" in events
    assert all(r.ok for r in xw.verify())


def test_migrate_when_only_later_steps_change(xw, people, v1):
    case = xw.start_case(PID, "DONGAO", people["committee"])
    do_step(xw, case, "register", people)
    t = table()
    t["steps"][2]["time_limit"] = "4wd"  # a step not yet reached
    publish(xw, build_bpmn(t))
    with xw.db.write() as s:
        editing.migrate_case(s, case, 2)
    assert ready_steps(xw, case) == ["review"]
    with xw.db.read() as s:
        assert s.get(Case, case).procedure_version_id == editing.get_version(s, PID, 2).id


def test_concurrent_draft_save_conflict(xw, v1):
    with xw.db.write() as s:
        draft = editing.new_draft_from_version(s, PID)
        base = draft.revision
    with xw.db.write() as s:
        editing.save_draft(s, PID, bpmn(register_limit="6wd"), actor="a", expected_revision=base)
    with pytest.raises(Conflict, match="保存冲突") as err:
        with xw.db.write() as s:
            editing.save_draft(s, PID, bpmn(register_limit="9wd"), actor="b", expected_revision=base)
    assert err.value.details["current_revision"] == base + 1
    with xw.db.read() as s:
        kept = editing.get_draft(s, PID)
        assert "6wd" in kept.bpmn_xml and kept.revision == base + 1  # the first save is kept


def test_permissions_township_staff_only_their_own(xw, people):
    with xw.db.write() as s:
        from engine.core import directory

        directory.add_org(s, "BEIZ", "北镇", "township", "SFQ")
    staff = add_user(xw, "sfz_staff", "township_staff@SFZ")
    other = add_user(xw, "beiz_staff", "township_staff@BEIZ")
    villager = people["committee"]
    with xw.db.write() as s:
        draft = editing.save_draft(s, PID, bpmn(), username=staff, expected_revision=0)
        assert draft.org_id is not None
    with pytest.raises(Forbidden):
        with xw.db.write() as s:
            editing.save_draft(s, PID, bpmn(register_limit="6wd"), username=other, expected_revision=1)
    with pytest.raises(Forbidden):
        with xw.db.write() as s:
            editing.publish_draft(s, PID, username=villager)
    with xw.db.write() as s:
        editing.publish_draft(s, PID, username=staff, note="镇里自己的事项")
    with pytest.raises(Forbidden):  # the district library is edited by district staff only
        with xw.db.write() as s:
            editing.new_draft_from_version(s, "V-DEC-01", username=staff)
    admin = add_user(xw, "qu_admin", "district_admin@SFQ")
    with xw.db.write() as s:
        assert editing.new_draft_from_version(s, "V-DEC-01", username=admin).revision == 1


def test_import_camunda_file_gives_a_clear_report(xw):
    with xw.db.write() as s:
        report = editing.import_bpmn(s, (FIXTURES / "camunda_plain.bpmn").read_bytes(), "camunda_plain.bpmn")
    assert report.status == "imported" and not report.executable and report.laid_out
    assert report.vendor.startswith("Camunda Modeler")
    codes = {p["code"] for p in report.problems}
    assert {"unsupported", "no-lanes", "no-lane", "unsafe-expression"} <= codes
    scripted = next(p for p in report.problems if p["code"] == "unsupported")
    assert scripted["element"] == "Task_score" and "脚本任务" in scripted["zh"]
    assert "camunda:assignee" in report.ignored
    with xw.db.read() as s:
        draft = editing.get_draft(s, "Process_leave")
        assert draft is not None and draft.revision == 1
        assert "BPMNShape" in draft.bpmn_xml  # laid out automatically
        assert render_svg_bytes(draft.bpmn_xml.encode()).startswith("<svg")
    with pytest.raises(InvalidProcedure):
        with xw.db.write() as s:
            editing.publish_draft(s, "Process_leave")


def test_import_signavio_file_with_lanes_but_no_roles(xw):
    with xw.db.write() as s:
        report = editing.import_bpmn(s, (FIXTURES / "signavio_lanes.bpmn").read_bytes(), "signavio_lanes.bpmn")
    assert report.status == "imported" and not report.laid_out
    assert report.vendor.startswith("SAP Signavio")
    lane_problems = [p for p in report.problems if p["code"] == "lane-role"]
    assert {p["element"] for p in lane_problems} == {"sid-lane-clerk", "sid-lane-head"}
    assert any(p["code"] == "executable" for p in report.problems)


@pytest.mark.parametrize("name,needle", [
    ("entity_bomb.bpmn", "DOCTYPE"), ("external_entity.bpmn", "DOCTYPE"), ("duplicate_ids.bpmn", "编号重复")])
def test_hostile_or_broken_xml_is_refused(xw, name, needle):
    with xw.db.write() as s:
        report = editing.import_bpmn(s, (FIXTURES / name).read_bytes(), name)
    assert report.status == "refused" and needle in report.message
    with xw.db.read() as s:
        assert editing.get_draft(s, "P") is None and editing.get_draft(s, "Process_dup") is None


def test_huge_and_malformed_xml_refused(xw):
    huge = b'<?xml version="1.0"?><bpmn:definitions xmlns:bpmn="http://www.omg.org/spec/BPMN/20100524/MODEL">' \
           + b"<!-- x -->" * 300_000 + b"</bpmn:definitions>"
    assert editing.analyze_import(huge).status == "refused"
    assert "过大" in editing.analyze_import(huge).message
    assert "格式错误" in editing.analyze_import(b"<bpmn:definitions").message
    assert "不是 BPMN" in editing.analyze_import(b"<html/>").message
    with pytest.raises(Exception, match="DOCTYPE"):
        with xw.db.write() as s:
            editing.save_draft(s, "P", (FIXTURES / "entity_bomb.bpmn").read_bytes())


def test_export_import_round_trip_same_semantics(xw, v1, tmp_path):
    with xw.db.read() as s:
        exported = editing.export_version(s, PID, 1)
    root_text = exported.decode()
    assert 'xmlns:xw="urn:xiaowei:bpmn:1"' in root_text and "bpmndi:BPMNDiagram" in root_text
    report = editing.analyze_import(exported, "export.bpmn")
    assert report.status == "imported" and report.executable and not report.laid_out, report.lines()
    assert compare(editing.definition_of(exported), editing.definition_of(report.xml)).same
    # the library round-trips too
    for path in sorted((Path(__file__).resolve().parent.parent / "processes").glob("V-*.bpmn"))[:5]:
        data = path.read_bytes()
        again = editing.analyze_import(data, path.name)
        assert again.executable and compare(editing.definition_of(data), editing.definition_of(again.xml)).same


def test_import_without_di_then_publish_after_fix(xw, people, frozen):
    """A file without interchange is laid out, passes lint and runs."""
    from lxml import etree

    root = etree.fromstring(bpmn())
    for diagram in root.findall("{http://www.omg.org/spec/BPMN/20100524/DI}BPMNDiagram"):
        root.remove(diagram)
    bare = etree.tostring(root)
    assert not lint_bytes(bare).ok
    with xw.db.write() as s:
        report = editing.import_bpmn(s, bare, "bare.bpmn")
    assert report.laid_out and report.executable, report.lines()
    with xw.db.write() as s:
        editing.publish_draft(s, PID, note="导入")
    case = xw.start_case(PID, "DONGAO", people["committee"])
    for step in ("register", "review", "review_supervision", "disclose"):
        do_step(xw, case, step, people)
    frozen.advance(days=30)
    xw.tick()
    assert xw.show_case(case)["status"] == "completed"


def test_cli_import_export_diff_publish_migrate(xw, people, v1, tmp_path, monkeypatch):
    runner = CliRunner()
    url = str(xw.db.engine.url.render_as_string(hide_password=False))
    case = xw.start_case(PID, "DONGAO", people["committee"])
    changed = tmp_path / "changed.bpmn"
    changed.write_bytes(bpmn(notice_days=7))
    out = runner.invoke(main, ["procedures", "import", str(changed), "--db", url, "--json"])
    assert out.exit_code == 0, out.output
    assert json.loads(out.output)["executable"] is True
    out = runner.invoke(main, ["procedures", "publish", PID, "--note", "公示天数改为7天", "--db", url])
    assert out.exit_code == 0 and "第2版" in out.output, out.output
    out = runner.invoke(main, ["procedures", "diff", PID, "1", "2", "--db", url])
    assert "默认值由5天改为7天" in out.output, out.output
    out = runner.invoke(main, ["procedures", "diff", PID, "1", "2", "--db", url, "--json"])
    assert json.loads(out.output)["changes"][0]["kind"] == "param_default"
    target = tmp_path / "v1.bpmn"
    out = runner.invoke(main, ["procedures", "export", PID, "--version", "1", "-o", str(target), "--db", url])
    assert out.exit_code == 0 and target.read_bytes() == bpmn()
    out = runner.invoke(main, ["case", "migrate", str(case), "--to-version", "2", "--db", url])
    assert out.exit_code == 0 and "迁移到第2版" in out.output, out.output
    out = runner.invoke(main, ["case", "migrate", str(case), "--to-version", "2", "--db", url])
    assert out.exit_code == 1 and "已在第2版" in out.output
    bad = runner.invoke(main, ["procedures", "import", str(FIXTURES / "entity_bomb.bpmn"), "--db", url])
    assert bad.exit_code == 1 and "DOCTYPE" in bad.output
    report = runner.invoke(main, ["procedures", "import", str(FIXTURES / "camunda_plain.bpmn"), "--db", url])
    assert report.exit_code == 0 and "脚本任务" in report.output and "camunda:assignee" in report.output


def test_step_table_procedure_runs_end_to_end(xw, people, frozen):
    """A procedure made as a step table (as the 任务单 editor does) passes lint and runs to the end."""
    t = table()
    t["id"], t["name"] = "Z-SVC-02", "任务单新建事项"
    xml = build_bpmn(t)
    assert lint_bytes(xml).ok
    with xw.db.write() as s:
        editing.save_draft(s, "Z-SVC-02", xml, step_table=t, source="steptable")
        editing.publish_draft(s, "Z-SVC-02", note="新建")
    case = xw.start_case("Z-SVC-02", "DONGAO", people["committee"])
    for step in ("register", "review", "review_supervision", "disclose"):
        do_step(xw, case, step, people)
    frozen.advance(days=30)  # the notice period ends
    xw.tick()
    assert xw.show_case(case)["status"] == "completed"
    with xw.db.read() as s:
        assert procedures.current_version(s, "Z-SVC-02").version == 1
