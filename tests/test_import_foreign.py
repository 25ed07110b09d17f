"""Import from other modelers (issue #15): no crash for a well-formed BPMN file, the process with content
chosen, BPMN-only duplicate ids, short ids for long ones, prefixed layout references resolved, no draft
overwritten without an explicit choice, Chinese messages; the assistant makes an imported diagram
runnable, and a case runs through a translated gateway."""

from __future__ import annotations

import json
import sys
from pathlib import Path

from click.testing import CliRunner
from lxml import etree

from conftest import ready_steps
from engine.bpmn.reverse import table_from_bpmn
from engine.cli import main
from engine.core.definitions import BPMN, BPMNDI, DC, XW
from engine.core.lint import lint_bytes
from engine.services import editing
from engine.services.import_assistant import assist, assist_xml, translate_condition

FIXTURES = Path(__file__).resolve().parent / "fixtures"
FOREIGN = FIXTURES / "foreign"
HEAD = ('<?xml version="1.0" encoding="UTF-8"?>\n<bpmn2:definitions xmlns:bpmn2="http://www.omg.org/spec/BPMN/20100524/MODEL" '
        'xmlns:bpmndi="http://www.omg.org/spec/BPMN/20100524/DI" xmlns:dc="http://www.omg.org/spec/DD/20100524/DC" '
        'xmlns:di="http://www.omg.org/spec/DD/20100524/DI" xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance" '
        'xmlns:camunda="http://camunda.org/schema/1.0/bpmn" id="Definitions_1" targetNamespace="http://bpmn.io/schema/bpmn" '
        'exporter="Camunda Modeler" exporterVersion="5.20.0">\n')


def sequence(pid: str, n: int = 2, *, name: str | None = None, executable: bool = False, prefix: str = "") -> str:
    """A process of ``n`` tasks in a row (ids prefixed by ``prefix``)."""
    p = prefix
    body = [f'<bpmn2:startEvent id="{p}start"/>']
    previous = f"{p}start"
    for i in range(1, n + 1):
        body.append(f'<bpmn2:task id="{p}t{i}" name="任务{i}"/>')
        body.append(f'<bpmn2:sequenceFlow id="{p}f{i}" sourceRef="{previous}" targetRef="{p}t{i}"/>')
        previous = f"{p}t{i}"
    body += [f'<bpmn2:endEvent id="{p}end"/>', f'<bpmn2:sequenceFlow id="{p}f_end" sourceRef="{previous}" targetRef="{p}end"/>']
    attrs = f' name="{name}"' if name else ""
    return (f'<bpmn2:process id="{pid}"{attrs} isExecutable="{"true" if executable else "false"}">'
            + "".join(body) + "</bpmn2:process>\n")


def url_of(xw) -> str:
    return str(xw.db.engine.url.render_as_string(hide_password=False))


def analyze(text: str, filename: str = "x.bpmn", **kw):
    return editing.analyze_import(text.encode("utf-8"), filename, **kw)


# --------------------------------------------------------------------------------------------
# The crash cases and what other tools write


def test_empty_first_pool_takes_the_process_with_content_and_its_pool_name():
    xml = (HEAD + '<bpmn2:collaboration id="C"><bpmn2:participant id="P1" name="客户" processRef="Empty"/>'
           '<bpmn2:participant id="P2" name="村委会办理" processRef="Work"/></bpmn2:collaboration>'
           '<bpmn2:process id="Empty" isExecutable="false"/>' + sequence("Work", 3) + "</bpmn2:definitions>")
    report = analyze(xml)
    assert report.status == "imported", report.lines()
    assert report.procedure_id == "Work" and report.name == "村委会办理"  # the pool's name, not the id twice
    assert report.laid_out  # no diagram interchange: laid out, no max() of an empty sequence
    assert [c["id"] for c in report.candidates] == ["Empty", "Work"]
    assert any(p["code"] == "other-process" and "客户" in p["zh"] for p in report.problems)


def test_a_process_without_steps_is_imported_not_crashed(xw, tmp_path):
    db_url = url_of(xw)
    xml = HEAD + '<bpmn2:process id="Nothing" isExecutable="true"/></bpmn2:definitions>'
    report = analyze(xml, "nothing.bpmn")
    assert report.status == "imported" and report.laid_out and report.name == "nothing"
    path = tmp_path / "nothing.bpmn"
    path.write_text(xml, encoding="utf-8")
    out = CliRunner().invoke(main, ["procedures", "import", str(path), "--db", db_url])
    assert out.exit_code == 0 and "Traceback" not in out.output, out.output


def test_several_pools_choose_executable_or_largest_or_the_asked_one():
    two = (HEAD + '<bpmn2:collaboration id="C"><bpmn2:participant id="P1" name="小池" processRef="Small"/>'
           '<bpmn2:participant id="P2" name="大池" processRef="Big"/></bpmn2:collaboration>'
           + sequence("Small", 1, prefix="s_") + sequence("Big", 4, prefix="b_") + "</bpmn2:definitions>")
    assert analyze(two).procedure_id == "Big"
    marked = two.replace('id="Small" isExecutable="false"', 'id="Small" isExecutable="true"')
    assert analyze(marked).procedure_id == "Small"
    chosen = analyze(two, process_id="Small")
    assert chosen.procedure_id == "Small" and chosen.name == "小池"
    root = etree.fromstring(chosen.xml)
    assert root.find(f"{{{BPMN}}}process").get("id") == "Small"  # every reader takes the chosen one
    refused = analyze(two, process_id="Nope")
    assert refused.status == "refused" and "Small(小池)" in refused.message


def test_long_ids_are_mapped_to_a_short_procedure_id_and_the_original_kept():
    report = editing.analyze_import((FOREIGN / "aris-7.2.4_A.1.0-export.bpmn").read_bytes(), "aris.bpmn")
    assert report.status == "imported", report.lines()
    assert report.procedure_id == "PROCESS_055e9200" and len(report.procedure_id) <= 40
    root = etree.fromstring(report.xml)
    kept = root.find(f".//{{{BPMN}}}process/{{{BPMN}}}extensionElements/{{{XW}}}imported")
    assert kept.get("originalId") == "PROCESS_055e9200-3bda-11e3-3329-080027000095"
    assert root.find(f".//{{{BPMN}}}participant").get("processRef") == "PROCESS_055e9200"
    assert not report.laid_out  # ARIS's own layout is kept
    assert lint_bytes(report.xml).definition.id == "PROCESS_055e9200"
    odd = analyze(HEAD + sequence("process_" + "x" * 50, 1) + "</bpmn2:definitions>")
    assert odd.status == "imported" and len(odd.procedure_id) <= 40


def test_ids_inside_other_tools_extension_elements_are_not_duplicates():
    ext = ('<bpmn2:extensionElements><camunda:formData><camunda:formField id="approved" type="boolean"/>'
           '</camunda:formData></bpmn2:extensionElements>')
    proc = sequence("Forms", 2).replace('<bpmn2:task id="t1" name="任务1"/>', f'<bpmn2:userTask id="t1" name="任务1">{ext}</bpmn2:userTask>')
    proc = proc.replace('<bpmn2:task id="t2" name="任务2"/>', f'<bpmn2:userTask id="t2" name="任务2">{ext}</bpmn2:userTask>')
    report = analyze(HEAD + proc + "</bpmn2:definitions>")
    assert report.status == "imported", report.lines()
    real = analyze(HEAD + sequence("Dup", 2).replace('id="t2"', 'id="t1"') + "</bpmn2:definitions>")
    assert real.status == "refused" and "元素编号重复" in real.message


def test_prefixed_layout_references_are_resolved_and_the_layout_kept():
    shapes = "".join(f'<bpmndi:BPMNShape id="{e}_di" bpmnElement="bpmn2:{e}"><dc:Bounds x="{100 + 150 * i}" y="77" '
                     f'width="100" height="80"/></bpmndi:BPMNShape>' for i, e in enumerate(["start", "t1", "t2", "end"]))
    edges = "".join(f'<bpmndi:BPMNEdge id="{f}_di" bpmnElement="bpmn2:{f}"><di:waypoint x="1" y="2"/><di:waypoint x="3" y="4"/>'
                    "</bpmndi:BPMNEdge>" for f in ["f1", "f2", "f_end"])
    xml = (HEAD + sequence("Pre", 2) + '<bpmndi:BPMNDiagram id="D"><bpmndi:BPMNPlane id="PL" bpmnElement="bpmn2:Pre">'
           + shapes + edges + "</bpmndi:BPMNPlane></bpmndi:BPMNDiagram></bpmn2:definitions>")
    report = analyze(xml)
    assert report.status == "imported" and not report.laid_out, report.lines()
    root = etree.fromstring(report.xml)
    t2 = next(s for s in root.iter(f"{{{BPMNDI}}}BPMNShape") if s.get("bpmnElement") == "t2")
    assert t2.find(f"{{{DC}}}Bounds").get("x") == "400"  # the original position, not a new layout
    assert any("前缀" in n for n in report.notes)


def test_malformed_xml_says_cause_and_line_in_chinese():
    report = analyze(HEAD + '<bpmn2:process id="P">\n<bpmn2:task id="a">\n</bpmn2:process></bpmn2:definitions>')
    assert report.status == "refused"
    zh = report.message.split(" / ")[0]
    assert "XML 格式错误(第 5 行" in zh and "开始标签与结束标签不匹配(第 4 行的 <task>" in zh, zh


def test_a_draft_is_never_overwritten_without_an_explicit_choice(xw, people, tmp_path):
    db_url = url_of(xw)
    first = (HEAD + sequence("Process_1", 2, name="甲的流程") + "</bpmn2:definitions>").encode()
    second = (HEAD + sequence("Process_1", 3, name="乙的流程") + "</bpmn2:definitions>").encode()
    with xw.db.write() as s:
        editing.import_bpmn(s, first, "a.bpmn", username=people["township_staff"])
    with xw.db.write() as s:
        report = editing.import_bpmn(s, second, "b.bpmn", username=people["township_staff"])
    assert report.procedure_id == "Process_1_2" and report.proposed_from == "Process_1"
    assert any("没有覆盖" in n and "Process_1_2" in n for n in report.notes)
    with xw.db.read() as s:
        kept = editing.get_draft(s, "Process_1")
        assert kept.revision == 1 and "甲的流程" in kept.bpmn_xml
        assert "乙的流程" in editing.get_draft(s, "Process_1_2").bpmn_xml
    path = tmp_path / "b.bpmn"
    path.write_bytes(second)
    out = CliRunner().invoke(main, ["procedures", "import", str(path), "--db", db_url])
    assert out.exit_code == 0 and "Process_1_3" in out.output and "--replace" in out.output, out.output
    out = CliRunner().invoke(main, ["procedures", "import", str(path), "--db", db_url, "--replace", "--json"])
    assert out.exit_code == 0 and json.loads(out.output)["procedure_id"] == "Process_1", out.output
    with xw.db.read() as s:
        replaced = editing.get_draft(s, "Process_1")
        assert replaced.revision == 2 and "乙的流程" in replaced.bpmn_xml


def test_public_sample_of_many_tools_imports_without_a_crash():
    sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "bench"))
    import import_sample

    paths = sorted(p for p in FOREIGN.iterdir() if p.name.endswith((".bpmn", ".xml")))
    result = import_sample.run(paths)
    assert result["crashes"] == 0
    assert result["tools"] >= 8
    assert result["share"] >= 98.0, [r for r in result["rows"] if r["schema_valid"] and r["status"] != "imported"]


# --------------------------------------------------------------------------------------------
# The assistant


def test_condition_translation():
    assert translate_condition("${approved}") == ("approved", "")
    assert translate_condition("${!approved}") == ("not approved", "")
    assert translate_condition("#{amount gt 1000 && kind eq 'big'}") == ("amount > 1000 and kind == 'big'", "")
    assert translate_condition("${userApproved == true || days le 3}") == ("user_approved == True or days <= 3", "")
    assert translate_condition("approved == True and not rejected")[0] == "approved == True and (not rejected)"  # Spiff
    text, why = translate_condition("${execution.getVariable('x') > 1}")
    assert text is None and "无法自动转换" in why
    lint = lint_bytes((HEAD + sequence("P", 1) + "</bpmn2:definitions>").encode())
    assert lint.problems  # a foreign file is not runnable as it is
    from engine.core.expressions import ExpressionError, compile_expression

    try:
        compile_expression("a && b")
    except ExpressionError as exc:
        assert exc.zh.startswith("语法错误")


CAMUNDA = HEAD + """<bpmn2:collaboration id="Collab"><bpmn2:participant id="Pool" name="困难救助申请" processRef="Process_1"/></bpmn2:collaboration>
<bpmn2:process id="Process_1" isExecutable="false">
  <bpmn2:laneSet id="LS"><bpmn2:lane id="Lane_a" name="申请人"><bpmn2:flowNodeRef>start</bpmn2:flowNodeRef><bpmn2:flowNodeRef>apply</bpmn2:flowNodeRef></bpmn2:lane>
  <bpmn2:lane id="Lane_b" name="村委会"><bpmn2:flowNodeRef>check</bpmn2:flowNodeRef><bpmn2:flowNodeRef>gw</bpmn2:flowNodeRef><bpmn2:flowNodeRef>ok</bpmn2:flowNodeRef><bpmn2:flowNodeRef>no</bpmn2:flowNodeRef></bpmn2:lane></bpmn2:laneSet>
  <bpmn2:startEvent id="start"/>
  <bpmn2:task id="apply" name="提交申请"/>
  <bpmn2:userTask id="check" name="村委会审查" camunda:assignee="${clerk}"/>
  <bpmn2:exclusiveGateway id="gw" name="是否同意?"/>
  <bpmn2:endEvent id="ok" name="办结"/>
  <bpmn2:endEvent id="no" name="不予救助"/>
  <bpmn2:sequenceFlow id="f1" sourceRef="start" targetRef="apply"/>
  <bpmn2:sequenceFlow id="f2" sourceRef="apply" targetRef="check"/>
  <bpmn2:sequenceFlow id="f3" sourceRef="check" targetRef="gw"/>
  <bpmn2:sequenceFlow id="f_yes" name="同意" sourceRef="gw" targetRef="ok"><bpmn2:conditionExpression xsi:type="bpmn2:tFormalExpression">${passed &amp;&amp; amount le 5000}</bpmn2:conditionExpression></bpmn2:sequenceFlow>
  <bpmn2:sequenceFlow id="f_no" name="不同意" sourceRef="gw" targetRef="no"/>
</bpmn2:process></bpmn2:definitions>"""


def test_assistant_makes_an_imported_camunda_diagram_runnable_and_a_case_runs_through_the_translated_gateway(
        xw, people, tmp_path):
    db_url = url_of(xw)
    staff = people["township_staff"]
    with xw.db.write() as s:
        report = editing.import_bpmn(s, CAMUNDA.encode(), "camunda.bpmn", username=staff)
    assert report.status == "imported" and not report.executable
    with xw.db.write() as s:
        before = assist(s, "Process_1", username=staff)
    assert not before["saved"] and before["publishable"] is True  # once applied
    lanes = {lane["id"]: lane for lane in before["lanes"]}
    assert lanes["Lane_a"]["role"] == "applicant" and lanes["Lane_b"]["role"] == "committee"  # suggested by name
    out = CliRunner().invoke(main, ["procedures", "assist", "Process_1", "--db", db_url, "--as", staff, "--apply"])
    assert out.exit_code == 0 and "已保存" in out.output and "已转换为" in out.output, out.output
    with xw.db.read() as s:
        draft = editing.get_draft(s, "Process_1")
        assert "passed and amount &lt;= 5000" in draft.bpmn_xml and draft.source == "导入助手"
    assert lint_bytes(draft.bpmn_xml.encode()).ok
    out = CliRunner().invoke(main, ["procedures", "publish", "Process_1", "--db", db_url, "--as", staff])
    assert out.exit_code == 0, out.output
    for passed, amount, end in ((True, 3000, "completed"), (False, 3000, "rejected"), (True, 9000, "rejected")):
        case = xw.start_case("Process_1", "DONGAO", people["applicant"])
        assert ready_steps(xw, case) == ["apply"]
        xw.complete(case, "apply", people["applicant"], {})
        xw.complete(case, "check", people["committee"], {"passed": passed, "amount": amount})
        shown = xw.show_case(case)
        assert shown["status"] == "completed", shown["status"]
        assert shown.get("outcome", end) == end or end in json.dumps(shown, ensure_ascii=False, default=str)


def test_assistant_without_lanes_gives_one_and_a_step_table_can_be_rebuilt():
    report = analyze(HEAD + sequence("Seq", 3, name="简单流程") + "</bpmn2:definitions>")
    result = assist_xml(report.xml, roles={"*": "committee"})
    assert result.publishable, result.todo
    table, why = table_from_bpmn(result.xml)
    assert table is not None, why
    assert [s["id"] for s in table["steps"]] == ["t1", "t2", "t3"] and table["lanes"] == [
        {"role": "committee", "label": "经办人"}]
    refused = assist_xml(report.xml)  # without a choice: the lane's name suggests 经办人
    assert refused.lanes[0]["role"] == "handler"


def test_assistant_flags_what_it_cannot_translate_in_chinese():
    xml = CAMUNDA.replace("${passed &amp;&amp; amount le 5000}", "${execution.getVariable(&quot;x&quot;) &gt; 1}")
    report = analyze(xml)
    result = assist_xml(report.xml)
    flagged = [t for t in result.todo if t["code"] == "condition"]
    assert flagged and "无法自动转换" in flagged[0]["zh"] and not result.publishable


# --------------------------------------------------------------------------------------------
# The web: import without overwriting, the assistant page, the modeler's warning before a save


def web_upload(client, data: bytes, name: str, replace: bool = False):
    import io

    form = {"csrf_token": client.csrf, "file": (io.BytesIO(data), name)}
    if replace:
        form["replace"] = "1"
    return client.post("/procedures/import", data=form, content_type="multipart/form-data")


def test_web_import_assistant_publish_and_a_case_runs(app, xw, people):
    from web_helpers import login

    staff = login(app, people["township_staff"])
    page = web_upload(staff, CAMUNDA.encode(), "camunda.bpmn")
    assert page.status_code == 200 and "已导入为草稿" in page.text and 'id="open-assistant"' in page.text, page.text
    again = web_upload(staff, CAMUNDA.encode(), "camunda.bpmn")
    assert "Process_1_2" in again.text and "没有覆盖" in again.text  # the first draft is kept
    shown = staff.get("/procedures/Process_1/assist")
    assert shown.status_code == 200 and 'name="role:Lane_a"' in shown.text and "可以自动修正" in shown.text
    assert "${" not in shown.text.split("可以自动修正")[0]
    form = {"csrf_token": staff.csrf, "revision": "1", "role:Lane_a": "applicant", "role:Lane_b": "committee",
            "kind:apply": "task", "kind:check": "approval"}
    applied = staff.post("/procedures/Process_1/assist", data=form)
    assert applied.status_code == 200 and "已保存为草稿第2稿" in applied.text and "校验通过" in applied.text, applied.text
    published = staff.post("/procedures/Process_1/publish", data={"csrf_token": staff.csrf, "note": "导入", "revision": "2"})
    assert published.status_code in (200, 302), published.text
    case = xw.start_case("Process_1", "DONGAO", people["applicant"])
    xw.complete(case, "apply", people["applicant"], {})
    xw.complete(case, "check", people["committee"], {"passed": True, "amount": 100})
    assert xw.show_case(case)["status"] == "completed"
    villager = login(app, people["applicant"])
    assert villager.get("/procedures/Process_1_2/assist").status_code == 403


def test_modeler_warns_before_a_save_that_loses_the_step_table(app, xw, people):
    from web_helpers import login

    staff = login(app, people["township_staff"])
    report = analyze(HEAD + sequence("Seq", 2, name="简单流程") + "</bpmn2:definitions>")
    fixed = assist_xml(report.xml, roles={"*": "committee"}).xml
    with xw.db.write() as s:
        editing.save_draft(s, "Seq", fixed, username=people["township_staff"], expected_revision=0)
    assert staff.get("/procedures/Seq/table").status_code == 200  # the 任务单 is rebuilt from the diagram
    # a second start event: a structure a step table cannot hold
    broken = fixed.replace(b'<bpmn2:startEvent id="start"/>', b'<bpmn2:startEvent id="start"/><bpmn2:startEvent id="start2"/>')
    body = {"xml": broken.decode(), "revision": 1}
    warned = staff.post("/procedures/Seq/modeler/save", json=body, headers={"X-CSRF-Token": staff.csrf})
    assert warned.status_code == 200 and warned.json["needs_confirm"] is True
    assert warned.json["message"].startswith("保存后将无法还原为任务单")
    with xw.db.read() as s:
        assert editing.get_draft(s, "Seq").revision == 1  # warned before saving: nothing saved
    saved = staff.post("/procedures/Seq/modeler/save", json={**body, "confirm_table_loss": True},
                       headers={"X-CSRF-Token": staff.csrf})
    assert saved.status_code == 200 and saved.json["revision"] == 2


def test_web_several_pools_the_user_chooses_another(app, xw, people):
    from web_helpers import login

    staff = login(app, people["township_staff"])
    two = (HEAD + '<bpmn2:collaboration id="C"><bpmn2:participant id="P1" name="村民" processRef="Small"/>'
           '<bpmn2:participant id="P2" name="村委会" processRef="Big"/></bpmn2:collaboration>'
           + sequence("Small", 2, prefix="s_") + sequence("Big", 4, prefix="b_") + "</bpmn2:definitions>")
    page = web_upload(staff, two.encode(), "pools.bpmn")
    assert page.status_code == 200 and 'id="import-candidates"' in page.text and "Big" in page.text
    chosen = staff.post("/procedures/import/choose", data={"csrf_token": staff.csrf, "from": "Big", "process": "Small"})
    assert chosen.status_code == 200 and "已导入为草稿:Small" in chosen.text, chosen.text
    with xw.db.read() as s:
        assert editing.get_draft(s, "Big") is None  # the first import, untouched, made way for the choice
        small = editing.get_draft(s, "Small")
        assert small is not None and 'name="村民"' in small.bpmn_xml


def test_cli_never_shows_a_traceback_for_bad_files(xw, tmp_path):
    db_url = url_of(xw)
    for name, data in (("empty.bpmn", b""), ("binary.bpmn", bytes(range(256)) * 4), ("html.bpmn", b"<html><body>hi</body></html>"),
                       ("cut.bpmn", (HEAD + sequence("Cut", 2))[:-40].encode())):
        path = tmp_path / name
        path.write_bytes(data)
        out = CliRunner().invoke(main, ["procedures", "import", str(path), "--db", db_url])
        assert out.exit_code == 1 and "Traceback" not in out.output and "未导入" in out.output, (name, out.output)


def test_assistant_drops_spiff_scripts_and_keeps_their_instructions():
    report = editing.analyze_import((FOREIGN / "spiff-arena-camunda-3.0_lanes.bpmn").read_bytes(), "lanes.bpmn")
    result = assist_xml(report.xml)
    assert result.publishable, result.todo
    roles = {lane["id"]: lane["role"] for lane in result.lanes}
    assert roles == {"process_initiator": "applicant", "finance_team": "bookkeeper"}
    assert b"postScript" not in result.xml and b"get_last_user_completing_task" not in result.xml
    d = lint_bytes(result.xml).definition
    assert d.steps["initiator_one"].instructions == "This is for the initiator user"
