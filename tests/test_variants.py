"""Township variants (issue #15): township staff make, publish and use a variant of B-PUR-02 (a village
of that township runs it, a village of another township runs the district's version); a variant that
drops the supervision checkpoint or loosens a limit is refused in Chinese; the district's update is
flagged and can be rebased (the township's changes re-applied); the CLI command and its refusal; the
web pages and their permissions."""

from __future__ import annotations

import copy
import json

import pytest
from click.testing import CliRunner

from conftest import add_user
from engine.bpmn.steptable import TABLES_DIR, build_bpmn, load_table
from engine.cli import main
from engine.core import directory, procedures
from engine.core.errors import Conflict, Forbidden, InvalidProcedure
from engine.services import editing, variants
from storage.models import AuditEvent, Case, ProcedureVersion

PID = "B-PUR-02"
KEY = "B-PUR-02@SFZ"
TOWN_STEP = {"id": "town_filing", "name": "镇农经站备案", "role": "bookkeeper", "kind": "task", "time_limit": "2wd",
             "instructions": "报账后将采购单据报镇农经站备案。", "evidence": "备案回执",
             "fields": [{"name": "filing_date", "label": "备案日期", "type": "date", "required": True, "public": True}]}


@pytest.fixture
def other_township(xw):
    """A second township (北镇) with a village and its staff: a variant of 示范镇 must not reach it."""
    with xw.db.write() as s:
        directory.add_org(s, "BEIZ", "北镇", "township", "SFQ")
        directory.add_org(s, "BEICUN", "北村", "village", "BEIZ")
    return {"staff": add_user(xw, "beiz_staff", "township_staff@BEIZ"),
            "handler": add_user(xw, "beicun_handler", "handler@BEICUN")}


def _table(xw, key: str) -> dict:
    with xw.db.read() as s:
        return json.loads(editing.get_draft(s, key).step_table)


def _save_table(xw, key: str, table: dict, username: str) -> None:
    with xw.db.write() as s:
        draft = editing.get_draft(s, key)
        editing.save_step_table_draft(s, key, build_bpmn(table), table, username=username,
                                      expected_revision=draft.revision if draft else 0)


def _with_town_step(table: dict) -> dict:
    """The township adds a filing step after 凭票报账 and tightens 凭票报账 from 5 to 3 working days."""
    table = copy.deepcopy(table)
    steps = table["steps"]
    at = next(i for i, s in enumerate(steps) if s["id"] == "reimburse")
    steps[at]["time_limit"] = "3wd"
    steps.insert(at + 1, copy.deepcopy(TOWN_STEP))
    return table


def _make_variant(xw, people) -> None:
    with xw.db.write() as s:
        opened = variants.open_variant(s, PID, "SFZ", username=people["township_staff"])
    assert opened["created"] and opened["draft_started"] and opened["key"] == KEY
    _save_table(xw, KEY, _with_town_step(_table(xw, KEY)), people["township_staff"])
    with xw.db.write() as s:
        published = variants.publish_variant(s, PID, "SFZ", username=people["township_staff"], note="本镇增加备案")
    assert published["version"] == 1 and "镇农经站备案" in published["change_summary"]


def _case_definition(xw, case_id: int):
    with xw.db.read() as s:
        case = s.get(Case, case_id)
        version = s.get(ProcedureVersion, case.procedure_version_id)
        return version.procedure_id, procedures.runtime(s, version.id).definition


def test_township_staff_make_publish_and_use_a_variant(xw, people, other_township):
    _make_variant(xw, people)
    # 东岙村 (示范镇) runs the variant; 北村 (北镇) keeps the district's version.
    mine = xw.start_case(PID, "DONGAO", people["handler"])
    other = xw.start_case(PID, "BEICUN", other_township["handler"])
    stored, d = _case_definition(xw, mine)
    assert stored == KEY and d.id == PID and "town_filing" in d.steps and str(d.steps["reimburse"].time_limit) == "3wd"
    stored, d = _case_definition(xw, other)
    assert stored == PID and "town_filing" not in d.steps and str(d.steps["reimburse"].time_limit) == "5wd"
    with xw.db.read() as s:
        case = s.get(Case, mine)
        assert case.procedure_id == PID  # lists, rules and boards still see B-PUR-02
        started = json.loads(s.query(AuditEvent.data).filter(AuditEvent.case_id == mine, AuditEvent.type == "case_started")
                             .scalar())
        assert started["variant"] == KEY
        kinds = [t for (t,) in s.query(AuditEvent.type).filter(AuditEvent.chain == "system")]
        assert {"variant_created", "variant_draft_started", "variant_published"} <= set(kinds)
        # the variant's key is no procedure of its own in the library lists
        rows, _new = editing.library_rows(s, directory.load_actor(s, people["district_admin"]))
        assert KEY not in {r["id"] for r in rows}
        assert KEY not in {p["id"] for p in procedures.list_procedures(s)}
    assert xw.show_case(mine)["status"] == "running" and xw.show_case(mine)["variant"] is True
    assert xw.show_case(other)["variant"] is False


def test_other_township_and_village_cadres_are_refused(xw, people, other_township):
    with xw.db.write() as s:
        with pytest.raises(Forbidden) as refused:
            variants.open_variant(s, PID, "SFZ", username=other_township["staff"])
        assert "只有示范镇的工作人员或区级管理员可以" in refused.value.message
        with pytest.raises(Forbidden):
            variants.open_variant(s, PID, "SFZ", username=people["handler"])
    with xw.db.write() as s:  # the district's editors may act for every township
        assert variants.open_variant(s, PID, "BEIZ", username=people["district_admin"])["created"]


def test_a_variant_that_drops_the_supervision_checkpoint_is_refused(xw, people):
    with xw.db.write() as s:
        variants.open_variant(s, PID, "SFZ", username=people["township_staff"])
    table = _table(xw, KEY)
    quote = next(s for s in table["steps"] if s["id"] == "quote")
    del quote["supervision"]  # no 监督 at 询价比价 any more
    _save_table(xw, KEY, table, people["township_staff"])
    with xw.db.write() as s:
        with pytest.raises(InvalidProcedure) as refused:
            variants.publish_variant(s, PID, "SFZ", username=people["township_staff"])
    message = refused.value.message
    assert "缺少区级版本中的监督环节“询价比价(不少于3家)·监督”" in message, message
    assert "quote_supervision" not in message.split(" / ")[0]  # names, not internal ids
    with xw.db.read() as s:
        assert editing.get_draft(s, KEY) is not None  # nothing published, the draft stays


def test_a_variant_that_loosens_a_limit_is_refused(xw, people):
    with xw.db.write() as s:
        variants.open_variant(s, PID, "SFZ", username=people["township_staff"])
    table = _table(xw, KEY)
    next(s for s in table["steps"] if s["id"] == "reimburse")["time_limit"] = "10wd"
    disclose = next(s for s in table["steps"] if s["id"] == "disclose_result")
    disclose["kind"] = "task"  # the disclosure step turned into a plain task
    disclose.pop("disclosure")
    _save_table(xw, KEY, table, people["township_staff"])
    with xw.db.write() as s:
        with pytest.raises(InvalidProcedure) as refused:
            variants.publish_variant(s, PID, "SFZ", username=people["township_staff"])
    message = refused.value.message
    assert "步骤“凭票报账”的时限放宽了:区级为5个工作日,变体为10个工作日" in message, message
    assert "缺少区级版本中的公开公示环节“采购结果公开”" in message, message


def _district_publishes_v2(xw, people) -> None:
    """The district lengthens the notice of 采购结果公开's instructions and tightens 询价比价 to 2 working days."""
    table = load_table(TABLES_DIR / f"{PID}.yaml")
    quote = next(s for s in table["steps"] if s["id"] == "quote")
    quote["time_limit"] = "2wd"
    with xw.db.write() as s:
        editing.save_step_table_draft(s, PID, build_bpmn(table), table, username=people["district_admin"],
                                      expected_revision=0)
    with xw.db.write() as s:
        assert editing.publish_draft(s, PID, username=people["district_admin"], note="询价时限缩短")["version"] == 2


def test_the_districts_update_is_flagged_and_rebased(xw, people):
    _make_variant(xw, people)
    with xw.db.read() as s:
        variant = variants._variant(s, PID, directory.get_org(s, "SFZ"))
        assert variants.upstream(s, variant) is None
    _district_publishes_v2(xw, people)
    with xw.db.read() as s:
        flag = variants.upstream(s, variants._variant(s, PID, directory.get_org(s, "SFZ")))
        assert flag["from_version"] == 1 and flag["to_version"] == 2
        assert any("询价比价" in c.zh and "2个工作日" in c.zh for c in flag["comparison"].changes)
        listed = variants.variants_of(s, PID, directory.load_actor(s, people["district_admin"]))
        assert listed["rows"][0]["upstream"] == {"from_version": 1, "to_version": 2}
        assert any("镇农经站备案" in line for line in listed["rows"][0]["changes"])
    with xw.db.write() as s:
        rebased = variants.rebase_variant(s, PID, "SFZ", username=people["township_staff"])
    assert rebased["merged"] and rebased["to_version"] == 2
    assert any("镇农经站备案" in k for k in rebased["kept"])
    with xw.db.read() as s:
        d = editing.definition_of(editing.get_draft(s, KEY).bpmn_xml)
        assert "town_filing" in d.steps and str(d.steps["reimburse"].time_limit) == "3wd"  # the township's
        assert str(d.steps["quote"].time_limit) == "2wd"  # the district's new limit
        assert variants.upstream(s, variants._variant(s, PID, directory.get_org(s, "SFZ"))) is None
    with xw.db.write() as s:
        assert variants.publish_variant(s, PID, "SFZ", username=people["township_staff"])["version"] == 2
    stored, d = _case_definition(xw, xw.start_case(PID, "DONGAO", people["handler"]))
    assert stored == KEY and "town_filing" in d.steps and str(d.steps["quote"].time_limit) == "2wd"


def test_the_cli_creates_opens_and_refuses(xw, people, other_township):
    url = str(xw.db.engine.url.render_as_string(hide_password=False))
    runner = CliRunner()
    first = runner.invoke(main, ["procedures", "variant", PID, "--org", "SFZ", "--as", people["township_staff"],
                                 "--db", url, "--json"])
    assert first.exit_code == 0, first.output
    data = json.loads(first.output)
    assert data["created"] and data["key"] == KEY and data["district_version"] == 1
    again = runner.invoke(main, ["procedures", "variant", PID, "--org", "SFZ", "--as", people["township_staff"],
                                 "--db", url])
    assert again.exit_code == 0 and "已打开示范镇的 B-PUR-02 变体" in again.output, again.output
    refused = runner.invoke(main, ["procedures", "variant", PID, "--org", "SFZ", "--as", other_township["staff"],
                                   "--db", url])
    assert refused.exit_code == 1 and "Traceback" not in refused.output
    lines = [line for line in refused.output.splitlines() if line.strip()]
    assert len(lines) == 1 and "只有示范镇的工作人员或区级管理员可以" in lines[0], refused.output
    village = runner.invoke(main, ["procedures", "variant", PID, "--org", "DONGAO", "--as", people["township_staff"],
                                   "--db", url])
    assert village.exit_code == 1 and "不是镇(街道)" in village.output
    cadre = runner.invoke(main, ["procedures", "variant", PID, "--org", "SFZ", "--as", people["handler"], "--db", url])
    assert cadre.exit_code == 1 and len(cadre.output.strip().splitlines()) == 1
    # publishing the (unchanged) draft by its key: refused, it equals the district version
    same = runner.invoke(main, ["procedures", "publish", KEY, "--as", people["township_staff"], "--db", url])
    assert same.exit_code == 1 and "与区级第1版相同" in same.output, same.output
    _save_table(xw, KEY, _with_town_step(_table(xw, KEY)), people["township_staff"])
    done = runner.invoke(main, ["procedures", "publish", KEY, "--as", people["township_staff"], "--db", url])
    assert done.exit_code == 0 and "第1版" in done.output and "镇农经站备案" in done.output, done.output


# --- the web pages ---------------------------------------------------------------------------------------
def test_township_staff_make_and_publish_a_variant_on_the_web(xw, people, other_township):
    from web_helpers import login, make_app

    app = make_app(xw)
    staff = login(app, people["township_staff"])
    page = staff.get(f"/procedures/{PID}")
    assert page.status_code == 200 and "为示范镇制作变体" in page.text and "镇(街道)变体" in page.text
    made = staff.post(f"/procedures/{PID}/variants/SFZ", data={"csrf_token": staff.csrf})
    assert made.status_code == 302 and made.headers["Location"].endswith(f"/procedures/{PID}/variants/SFZ")
    shown = staff.get(f"/procedures/{PID}/variants/SFZ")
    assert shown.status_code == 200 and "与区级版本相同,还没有本镇的修改" in shown.text
    assert "用任务单编辑" in shown.text and KEY not in shown.text.replace(f"/procedures/{KEY}/", "")
    table = staff.get(f"/procedures/{KEY}/table")  # the step-table editor opens the variant
    assert table.status_code == 200 and 'value="town_filing"' not in table.text and 'value="reimburse"' in table.text
    assert staff.get(f"/procedures/{KEY}/modeler").status_code == 200
    data = staff.get(f"/procedures/{KEY}/modeler/data.json").get_json()
    assert data["revision"] == 1 and 'id="B-PUR-02"' in data["xml"]

    # an edit that drops the supervision checkpoint: publishing is refused on the page, in Chinese
    broken = _table(xw, KEY)
    del next(s for s in broken["steps"] if s["id"] == "quote")["supervision"]
    _save_table(xw, KEY, broken, people["township_staff"])
    refused = staff.post(f"/procedures/{PID}/variants/SFZ/publish", data={"csrf_token": staff.csrf})
    assert refused.status_code == 422 and "缺少区级版本中的监督环节“询价比价(不少于3家)·监督”" in refused.text

    _save_table(xw, KEY, _with_town_step(_table(xw, KEY) | {"steps": _district_steps()}), people["township_staff"])
    done = staff.post(f"/procedures/{PID}/variants/SFZ/publish", data={"csrf_token": staff.csrf, "note": "增加备案"})
    assert done.status_code == 200 and "已发布本镇第1版" in done.text and "镇农经站备案" in done.text

    district = login(app, people["district_admin"])
    listed = district.get(f"/procedures/{PID}")
    assert "示范镇" in listed.text and "已发布本镇第1版" in listed.text and "镇农经站备案" in listed.text
    assert district.get(f"/procedures/{PID}/variants/SFZ").status_code == 200

    # 北镇's staff: neither 示范镇's variant nor the district's own table; the message fits the page
    other = login(app, other_township["staff"])
    denied = other.get(f"/procedures/{PID}/variants/SFZ")
    assert denied.status_code == 403 and "只有示范镇的工作人员或区级管理员可以" in denied.text
    assert "不属于您所在的村" not in denied.text
    assert other.post(f"/procedures/{PID}/variants/SFZ/publish", data={"csrf_token": other.csrf}).status_code == 403
    assert other.get(f"/procedures/{KEY}/table").status_code == 403
    library = staff.get(f"/procedures/{PID}/table")
    assert library.status_code == 403 and "属于区级事项库" in library.text and "不属于您所在的村" not in library.text
    cadre = login(app, people["handler"])
    assert cadre.get(f"/procedures/{PID}/variants/SFZ").status_code == 403

    # the district publishes a new version: the township sees 上级版本已更新 and rebases
    _district_publishes_v2(xw, people)
    library = staff.get("/procedures")
    assert "示范镇变体</a>:本镇第1版 · <strong>上级版本已更新</strong>" in library.text
    flagged = staff.get(f"/procedures/{PID}/variants/SFZ")
    assert "上级版本已更新" in flagged.text and "区级已发布第2版" in flagged.text
    rebased = staff.post(f"/procedures/{PID}/variants/SFZ/rebase", data={"csrf_token": staff.csrf})
    assert rebased.status_code == 200 and "已更新到区级第2版" in rebased.text and "保留本镇新增的步骤“镇农经站备案”" in rebased.text


def _district_steps() -> list:
    return load_table(TABLES_DIR / f"{PID}.yaml")["steps"]


def test_a_draft_reopened_in_the_editor_keeps_the_flag(xw, people):
    """After publishing, the 任务单 reopens the variant's version; a save there and a new publish keep
    the district version it was based on, so "上级版本已更新" stays until a rebase."""
    _make_variant(xw, people)
    _district_publishes_v2(xw, people)
    with xw.db.read() as s:
        assert editing.get_draft(s, KEY) is None
        version = editing.latest_version(s, KEY)
        table = variants.table_of_version(s, KEY, version)
    assert table is not None and any(step["id"] == "town_filing" for step in table["steps"])
    next(step for step in table["steps"] if step["id"] == "town_filing")["time_limit"] = "1wd"
    _save_table(xw, KEY, table, people["township_staff"])
    with xw.db.write() as s:  # checked against the district's current version: its tighter 询价比价 limit holds
        with pytest.raises(InvalidProcedure) as refused:
            variants.publish_variant(s, PID, "SFZ", username=people["township_staff"])
    assert "步骤“询价比价(不少于3家)”的时限放宽了:区级为2个工作日,变体为3个工作日" in refused.value.message
    next(step for step in table["steps"] if step["id"] == "quote")["time_limit"] = "2wd"
    _save_table(xw, KEY, table, people["township_staff"])
    with xw.db.write() as s:
        assert variants.publish_variant(s, PID, "SFZ", username=people["township_staff"])["district_version"] == 1
    with xw.db.read() as s:
        assert variants.upstream(s, variants._variant(s, PID, directory.get_org(s, "SFZ")))["to_version"] == 2


def test_the_public_page_of_a_village_shows_the_chart_it_runs(xw, people, other_township):
    from web_helpers import make_app

    _make_variant(xw, people)
    client = make_app(xw).test_client()
    mine = client.get(f"/public/DONGAO/procedures/{PID}")
    other = client.get(f"/public/BEICUN/procedures/{PID}")
    assert mine.status_code == 200 and "镇农经站备案" in mine.text
    assert other.status_code == 200 and "镇农经站备案" not in other.text and "凭票报账" in other.text
    assert client.get(f"/public/DONGAO/procedures/{KEY}").status_code == 404


def test_the_modeler_saves_a_variant_and_the_old_routes_lead_to_its_page(xw, people):
    from web_helpers import login, make_app

    with xw.db.write() as s:
        variants.open_variant(s, PID, "SFZ", username=people["township_staff"])
    staff = login(make_app(xw), people["township_staff"])
    data = staff.get(f"/procedures/{KEY}/modeler/data.json").get_json()
    xml = data["xml"].replace('name="凭票报账"', 'name="凭票报账(镇审)"')
    asked = staff.post(f"/procedures/{KEY}/modeler/save", json={"xml": xml, "revision": data["revision"]},
                       headers={"X-CSRF-Token": staff.csrf})
    assert asked.get_json()["needs_confirm"] is True  # the 任务单 would be lost: asked first, nothing saved
    saved = staff.post(f"/procedures/{KEY}/modeler/save", headers={"X-CSRF-Token": staff.csrf},
                       json={"xml": xml, "revision": data["revision"], "confirm_table_loss": True})
    assert saved.status_code == 200 and saved.get_json().get("revision") == 2, saved.get_json()
    page = staff.get(f"/procedures/{PID}/variants/SFZ")
    assert "凭票报账(镇审)" in page.text
    assert staff.get(f"/procedures/{KEY}").headers["Location"].endswith(f"/procedures/{PID}/variants/SFZ")
    done = staff.post(f"/procedures/{KEY}/publish", data={"csrf_token": staff.csrf})  # the variant's publishing
    assert done.status_code == 200 and "已发布本镇第1版" in done.text
    with xw.db.read() as s:  # the district's own procedure is untouched
        assert editing.latest_version(s, PID).version == 1


def test_the_case_page_says_it_runs_the_township_variant(xw, people):
    from web_helpers import login, make_app

    _make_variant(xw, people)
    case = xw.start_case(PID, "DONGAO", people["handler"])
    page = login(make_app(xw), people["handler"]).get(f"/cases/{case}")
    assert page.status_code == 200 and "B-PUR-02 第1版 · 本镇变体" in page.text


def test_a_variant_without_a_step_table_is_rebased_side_by_side(xw, people):
    """Edited in the modeler (no step table): the rebase starts from the district's new version and lists
    the township's former changes to redo; while such a draft is unpublished, the rebase is refused."""
    with xw.db.write() as s:
        variants.open_variant(s, PID, "SFZ", username=people["township_staff"])
    with xw.db.write() as s:
        draft = editing.get_draft(s, KEY)
        xml = draft.bpmn_xml.replace('name="凭票报账"', 'name="凭票报账(镇审)"').encode("utf-8")
        editing.save_draft(s, KEY, xml, username=people["township_staff"], expected_revision=draft.revision,
                           source="流程图编辑器")
    _district_publishes_v2(xw, people)
    with xw.db.write() as s:
        with pytest.raises(Conflict) as refused:
            variants.rebase_variant(s, PID, "SFZ", username=people["township_staff"])
    assert "请先发布或删除草稿" in refused.value.message
    with xw.db.write() as s:  # district v2 tightened 询价比价: the old-based draft must keep up before publishing
        draft = editing.get_draft(s, KEY)
        xml = draft.bpmn_xml.replace('kind="task" timeLimit="3wd" evidence="各家书面报价单', 'kind="task" timeLimit="2wd" evidence="各家书面报价单')
        editing.save_draft(s, KEY, xml.encode("utf-8"), username=people["township_staff"],
                           expected_revision=draft.revision)
    with xw.db.write() as s:
        variants.publish_variant(s, PID, "SFZ", username=people["township_staff"])
    with xw.db.write() as s:
        rebased = variants.rebase_variant(s, PID, "SFZ", username=people["township_staff"])
    assert not rebased["merged"] and any("凭票报账(镇审)" in line for line in rebased["to_redo"]), rebased
    with xw.db.read() as s:
        d = editing.definition_of(editing.get_draft(s, KEY).bpmn_xml)
        assert d.steps["reimburse"].name == "凭票报账" and str(d.steps["quote"].time_limit) == "2wd"
        kinds = [t for (t,) in s.query(AuditEvent.type).filter(AuditEvent.chain == "system")]
        assert "variant_rebased" in kinds


def _definition(pid: str, *replacements: tuple[str, str]):
    xml = (TABLES_DIR.parent / f"{pid}.bpmn").read_text(encoding="utf-8")
    for old, new in replacements:
        assert old in xml, old
        xml = xml.replace(old, new)
    return editing.definition_of(xml)


def test_lint_refuses_a_weaker_vote_or_a_shorter_notice_and_allows_stricter_ones():
    from engine.core.lint import variant_problems

    stricter_district = _definition("V-DEC-01", ('key="vrep_pass" label="村民代表会议通过比例(到会人员)" type="ratio" default="1/2"',
                                                 'key="vrep_pass" label="村民代表会议通过比例(到会人员)" type="ratio" default="2/3"'))
    as_the_law = _definition("V-DEC-01")
    found = variant_problems(stricter_district, as_the_law)
    assert [p.code for p in found] == ["variant-vote"] and "规则放宽了" in found[0].zh, [p.zh for p in found]
    assert variant_problems(as_the_law, stricter_district) == []  # tightening is allowed
    library = _definition(PID)
    shorter = _definition(PID, ('default="7"', 'default="5"'))
    found = variant_problems(library, shorter)
    assert [p.code for p in found] == ["variant-notice"], [p.zh for p in found]
    assert "公开环节“采购结果公开”的公示期缩短了:区级不少于7天,变体为5天" in found[0].zh
    assert variant_problems(library, _definition(PID, ('default="7"', 'default="10"'))) == []
    assert variant_problems(library, library) == []


def test_a_township_withdraws_its_variant(xw, people):
    from web_helpers import login, make_app

    _make_variant(xw, people)
    staff = login(make_app(xw), people["township_staff"])
    done = staff.post(f"/procedures/{PID}/variants/SFZ/withdraw", data={"csrf_token": staff.csrf})
    assert done.status_code == 200 and "已停用变体" in done.text
    stored, d = _case_definition(xw, xw.start_case(PID, "DONGAO", people["handler"]))
    assert stored == PID and "town_filing" not in d.steps
    again = staff.post(f"/procedures/{PID}/variants/SFZ/withdraw", data={"csrf_token": staff.csrf})
    assert again.status_code == 409 and "尚未发布" in again.text
    with xw.db.read() as s:
        assert "variant_withdrawn" in [t for (t,) in s.query(AuditEvent.type).filter(AuditEvent.chain == "system")]


def test_the_three_way_merge_keeps_the_townships_changes_and_names_conflicts():
    base = {"id": PID, "name": "采购", "steps": [{"id": "a", "name": "甲", "time_limit": "3wd"},
                                                {"id": "b", "name": "乙"}, {"id": "c", "name": "丙"}]}
    mine = {"id": PID, "name": "本镇采购", "steps": [{"id": "a", "name": "甲", "time_limit": "2wd"},
                                                   {"id": "x", "name": "镇备案"}, {"id": "c", "name": "丙"}]}
    theirs = {"id": PID, "name": "采购", "steps": [{"id": "a", "name": "甲", "time_limit": "1wd"},
                                                  {"id": "b", "name": "乙"}, {"id": "c", "name": "丙(新)"},
                                                  {"id": "d", "name": "丁"}]}
    merged, kept, conflicts = variants.merge_tables(base, mine, theirs)
    assert [s["id"] for s in merged["steps"]] == ["a", "x", "c", "d"]  # b removed by the township, d new
    assert merged["steps"][0]["time_limit"] == "2wd" and merged["steps"][2]["name"] == "丙(新)"
    assert merged["name"] == "本镇采购"
    assert any("镇备案" in k for k in kept) and any("删除步骤“乙”" in k for k in kept) and "保留本镇对“事项名称”的修改" in kept
    assert conflicts == ["区级也修改了步骤“甲”,已保留本镇的写法,请对照区级的变化核对"]


def test_a_case_of_the_variant_runs_to_its_end_through_the_added_step(xw, people, frozen):
    from engine.services.scenarios import walk

    _make_variant(xw, people)
    case = xw.start_case(PID, "DONGAO", people["handler"], {"title": "办公用品采购"})

    def tick():
        frozen.advance(days=10)
        xw.tick()

    result = walk(xw, case, people, tick=tick)
    assert result.status == "completed", result
    assert "town_filing" in result.visited and result.visited.index("town_filing") > result.visited.index("reimburse")
