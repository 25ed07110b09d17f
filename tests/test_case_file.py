"""The case file (卷宗): every submission kept as made, shown where decisions are made; the trail in
words; forms that check what a clerk would check; old databases upgraded with their cases in flight."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys

import pytest

from conftest import ROOT, USING_PG, do_step, ready_steps
from engine.core.errors import Forbidden, InvalidData
from engine.services.scenarios import sample_evidence, walk
from engine.trailcheck import verify_trail
from storage import Database
from web_helpers import login

PARTY = {"meeting_date": "2026-03-02", "members_total": 41, "present": 37, "in_favour": 29, "against": 5,
         "abstain": 3}
REPS = {"meeting_date": "2026-03-02", "members_total": 53, "present": 47, "in_favour": 38, "against": 6,
        "abstain": 3}


def to_resolve(xw, people, case_id):
    for step in ("collect", "propose"):
        do_step(xw, case_id, step, people)
    do_step(xw, case_id, "consult", people, overrides={"needs_township_review": False})


def two_meetings(xw, people, case_id):
    to_resolve(xw, people, case_id)
    xw.complete(case_id, "party_review", people["party_members_meeting"], PARTY)
    xw.complete(case_id, "resolve", people["representatives_meeting"], REPS)


def test_two_meetings_keep_their_own_counts(xw, people, case_id):
    two_meetings(xw, people, case_id)
    file = xw.dossier(case_id)
    votes = {s["step"]: s for s in file["submissions"] if s["step"] in ("party_review", "resolve")}
    assert {k: votes["party_review"]["values"][k] for k in PARTY if k != "meeting_date"} == \
        {k: v for k, v in PARTY.items() if k != "meeting_date"}
    assert {k: votes["resolve"]["values"][k] for k in REPS if k != "meeting_date"} == \
        {k: v for k, v in REPS.items() if k != "meeting_date"}
    assert [s["round"] for s in file["submissions"]] == [1, 1, 1, 1, 1]
    assert votes["resolve"]["by"] == people["representatives_meeting"] and votes["resolve"]["role"] == "representatives_meeting"
    # The representatives' vote in the trail: every value as submitted, nothing "changed" from the party meeting.
    history = xw.show_case(case_id)["history"]
    entries = [item["entry"] for item in xw.narrated_history(case_id)]
    resolve = next(en for ev, en in zip(history, entries)
                   if ev["type"] == "step_completed" and ev["data"]["step"] == "resolve")
    assert resolve.changes == [] and ("赞成票", "38") in resolve.items and ("实到人数", "47") in resolve.items
    stored = next(ev for ev in history if ev["type"] == "step_completed" and ev["data"]["step"] == "resolve")
    assert stored["data"]["changes"] == [] and stored["data"]["round"] == 1


def test_supervision_step_shows_both_meetings_and_the_rule(app, xw, people, case_id):
    two_meetings(xw, people, case_id)
    assert ready_steps(xw, case_id) == ["resolve_supervision"]
    page = login(app, people["supervision_committee"]).get(f"/cases/{case_id}").text
    judge = page.split('id="judge-resolve_supervision"')[1].split('class="judge-subject"')[0]
    # What it must judge on top: the representatives' counts next to the rule (村组法: 2/3 present,
    # more than half of those present in favour), and the ballots add up.
    assert "到会 47 人,达到应到 53 人的三分之二(至少 36 人)" in judge
    assert "赞成 38 票,超过到会 47 人的半数(至少 24 票)" in judge
    assert "村民委员会组织法》第二十六条" in judge and "41" not in judge  # the rule and its source
    # The case file below: both meetings, each with its own counts.
    dossier = page.split('id="dossier"')[1]
    party = dossier.split('id="dossier-party_review"')[1].split("</details>")[0]
    reps = dossier.split('id="dossier-resolve"')[1].split("</details>")[0]
    for label, value in (("应到人数", "41"), ("实到人数", "37"), ("赞成票", "29")):
        assert f"<dt>{label}</dt><dd>{value}</dd>" in party
    for label, value in (("应到人数", "53"), ("实到人数", "47"), ("赞成票", "38")):
        assert f"<dt>{label}</dt><dd>{value}</dd>" in reps
    assert "表决结果:通过" in party  # the decision after the party meeting, in words


def test_a_returned_step_is_compared_with_its_own_first_round(app, xw, people, case_id):
    two_meetings(xw, people, case_id)
    xw.complete(case_id, "resolve_supervision", people["supervision_committee"],
                {"signed_off": False, "supervision_opinion": "签到表与到会人数不符"})
    assert ready_steps(xw, case_id) == ["resolve"]
    second = {**REPS, "present": 45, "in_favour": 36, "against": 6, "abstain": 3}
    xw.complete(case_id, "resolve", people["representatives_meeting"], second)
    rounds = [s for s in xw.dossier(case_id)["submissions"] if s["step"] == "resolve"]
    assert [(s["round"], s["values"]["present"]) for s in rounds] == [(1, 47), (2, 45)]
    history = xw.show_case(case_id)["history"]
    entries = [item["entry"] for item in xw.narrated_history(case_id)]
    redone = [en for ev, en in zip(history, entries) if ev["type"] == "step_completed" and ev["data"]["step"] == "resolve"]
    assert redone[0].changes == []
    assert redone[1].title.endswith("(第二次)")
    assert ("实到人数", "47", "45") in redone[1].changes and ("赞成票", "38", "36") in redone[1].changes
    assert all(label not in ("应到人数", "会议日期") for label, _, _ in redone[1].changes)  # unchanged: not listed
    trail = login(app, people["township_discipline"]).get(f"/cases/{case_id}/trail").text
    assert "与上一次办理相比" in trail and "<del>47</del> → <ins>45</ins>" in trail
    assert "不符" in trail  # the supervisor's opinion that returned it


def test_gateway_decisions_and_events_read_as_words(app, xw, people, case_id):
    two_meetings(xw, people, case_id)
    text = login(app, people["township_discipline"]).get(f"/cases/{case_id}/trail/print").text
    assert "到会 37 人,达到应到 41 人的二分之一" in text and "needs_township_review" not in text
    assert "== True" not in text and "param(" not in text and "members_total" not in text
    out = subprocess.run([sys.executable, "-m", "engine.cli", "case", "show", str(case_id), "--db", xw.db.url],
                         capture_output=True, text=True, cwd=ROOT)
    assert out.returncode == 0 and "表决“党员大会审议”" in out.stdout and "step_completed" not in out.stdout


def test_dossier_command_contract_and_refusal(xw, people, case_id, db_url):
    two_meetings(xw, people, case_id)
    cmd = [sys.executable, "-m", "engine.cli", "case", "dossier", str(case_id), "--db", db_url]
    out = subprocess.run(cmd + ["--json"], capture_output=True, text=True, cwd=ROOT)
    assert out.returncode == 0, out.stderr
    data = json.loads(out.stdout)
    assert data["case_id"] == case_id and {"submissions", "objections", "decisions"} <= set(data)
    first = data["submissions"][0]
    assert {"step", "step_name", "round", "by", "role", "on_behalf_of", "at", "values", "attachments"} <= set(first)
    assert [s["step"] for s in data["submissions"]] == ["collect", "propose", "consult", "party_review", "resolve"]
    assert data["submissions"][3]["values"]["members_total"] == 41  # counts are numbers
    assert data["submissions"][3]["step_name"] == "党员大会审议"
    text = subprocess.run(cmd, capture_output=True, text=True, cwd=ROOT)
    assert "【党员大会审议】" in text.stdout and "应到人数:41" in text.stdout and "应到人数:53" in text.stdout
    refused = subprocess.run(cmd + ["--as", people["nanxi_all"]], capture_output=True, text=True, cwd=ROOT)
    assert refused.returncode == 1 and "无权查阅" in refused.stderr and refused.stdout == ""
    last = xw.show_case(case_id)["history"][-1]
    assert last["type"] == "access_denied" and last["data"]["action"] == "dossier"
    with pytest.raises(Forbidden):
        xw.dossier(case_id, people["nanxi_all"])
    assert xw.dossier(case_id, people["township_discipline"])["submissions"]


def test_exported_trail_has_words_and_still_verifies(xw, people, case_id):
    two_meetings(xw, people, case_id)
    text = xw.export_trail(case_id)
    assert verify_trail(text) == []
    events = json.loads(text)["events"]
    assert all(e["text"] for e in events)
    assert any("到会 37 人,达到应到 41 人的二分之一" in e["text"] for e in events)  # the party meeting's vote, decided


# --- what a clerk checks -------------------------------------------------------------------------------

def test_future_meeting_date_and_several_errors_at_once(xw, people, case_id, frozen):
    to_resolve(xw, people, case_id)
    with pytest.raises(InvalidData) as err:
        xw.complete(case_id, "party_review", people["party_members_meeting"],
                    {**PARTY, "meeting_date": "2026-03-09", "present": "lots", "in_favour": 50})
    errors = err.value.errors
    assert "meeting_date" in errors and "晚于今天(2026-03-02)" in errors["meeting_date"]
    assert "present" in errors  # the field error and the date error come together
    assert "__all__" not in errors
    with pytest.raises(InvalidData) as err:
        xw.complete(case_id, "party_review", people["party_members_meeting"], {**PARTY, "in_favour": 40, "present": 45})
    assert "实到人数不能超过应到人数" in " ".join(err.value.errors.values())
    assert "赞成、反对、弃权票数之和不能超过实到人数" in " ".join(err.value.errors.values())
    with pytest.raises(InvalidData) as err:
        xw.complete(case_id, "party_review", people["party_members_meeting"], {**PARTY, "meeting_date": "2026-02-01"})
    assert "早于本事项发起日期" in err.value.errors["meeting_date"]


def test_disclosure_needs_its_evidence_and_cannot_start_before_the_act(xw, people, case_id, frozen):
    two_meetings(xw, people, case_id)
    do_step(xw, case_id, "resolve_supervision", people)
    frozen.advance(days=3)
    notice = {"notice_start": "2026-03-01", "notice_content": "决议事项及表决结果"}
    with pytest.raises(InvalidData) as err:
        xw.complete(case_id, "disclose_resolution", people["committee"], notice)
    errors = err.value.errors
    assert "公示照片" in errors["attachments"]
    assert "早于所公示事项的日期" in errors["notice_start"] and "2026-03-02" in errors["notice_start"]
    files = sample_evidence(xw, xw_step(xw, case_id, "disclose_resolution"), people["committee"])
    xw.complete(case_id, "disclose_resolution", people["committee"], {**notice, "notice_start": "2026-03-05"},
                attachments=files)
    frozen.advance(days=8)
    xw.tick()
    do_step(xw, case_id, "disclose_resolution_objections", people)
    assert ready_steps(xw, case_id) == ["implement"]
    with pytest.raises(InvalidData) as err:  # implemented before the notice ended
        xw.complete(case_id, "implement", people["committee"],
                    {"actual_amount": "1000.00", "completion_date": "2026-03-06", "implementation_result": "完成"})
    assert "公示期满" in err.value.errors["completion_date"]
    xw.complete(case_id, "implement", people["committee"],
                {"actual_amount": "1000.00", "completion_date": "2026-03-13", "implementation_result": "完成"})


def xw_step(xw, case_id, step_id):
    from conftest import case_context

    return case_context(xw, case_id)[0].steps[step_id]


def test_proxy_id_number_and_phone_errors_come_together(xw, people):
    case = xw.start_case("B-SVC-01", "HEPING", people["heping_committee"])
    with pytest.raises(InvalidData) as err:
        xw.complete(case, "apply", people["heping_committee"],
                    {"applicant_name": "王阿婆", "id_number": "330203195001011234", "phone": "12345"},
                    on_behalf_of="", proxy_reason="")
    errors = err.value.errors
    assert {"on_behalf_of", "proxy_reason", "id_number", "phone", "household_size"} <= set(errors), errors


def test_money_is_never_negative_and_has_two_decimals(xw, people, case_id):
    with pytest.raises(InvalidData) as err:
        xw.complete(case_id, "collect", people["party_branch"],
                    {"matter_title": "修路", "matter_type": "project", "source": "villagers", "amount": "-5",
                     "opinions_summary": "好"})
    assert "不能小于0" in err.value.errors["amount"] or "不能为负数" in err.value.errors["amount"]
    with pytest.raises(InvalidData) as err:
        xw.complete(case_id, "collect", people["party_branch"],
                    {"matter_title": "修路", "matter_type": "project", "source": "villagers", "amount": "5.123",
                     "opinions_summary": "好"})
    assert "两位小数" in err.value.errors["amount"]


def test_lint_refuses_an_ambiguous_plain_name():
    from engine.core.lint import lint_bytes

    xml = (ROOT / "processes" / "V-DEC-01.bpmn").read_bytes()
    step = '<xw:step kind="task" evidence="合同、验收单、付款凭证" nameEn="Carry it out"/>'.encode()
    assert xml.count(step) == 1
    # 组织实施 is reached after either disclosure (the result's objection upheld sends it back): a plain
    # notice_start there may be either notice's.
    bad = xml.replace(step, step + '<xw:constraint test="completion_date &gt;= notice_start" message="完成日期不早于公示"/>'.encode())
    problems = [p for p in lint_bytes(bad).problems if p.code == "ambiguous-field"]
    assert len(problems) == 1 and problems[0].severity == "error"
    assert "“决议公开”" in problems[0].zh and "“实施结果公开”" in problems[0].zh and "disclose_resolution.notice_start" in problems[0].zh
    good = xml.replace(step, step + '<xw:constraint test="completion_date &gt;= disclose_resolution.notice_start" message="完成日期不早于公示"/>'.encode())
    assert not [p for p in lint_bytes(good).problems if p.code in ("ambiguous-field", "unknown-field")]
    assert lint_bytes(good).ok


# --- an old database, upgraded with its cases in flight ----------------------------------------------------

@pytest.mark.skipif(USING_PG, reason="the fixture is a SQLite database made by the previous release")
def test_a_database_of_the_previous_schema_upgrades_and_its_cases_continue(tmp_path, frozen):
    from engine.core import clock, directory
    from engine.services.facade import Xiaowei

    path = tmp_path / "old.db"
    shutil.copyfile(ROOT / "tests" / "fixtures" / "schema-0007-in-flight.db", path)
    frozen.set("2026-11-06T01:00:00+00:00")
    app = Xiaowei(Database(f"sqlite:///{path}"))
    app.db.upgrade()  # 0007 -> the current head: the submissions are filled from the chains
    assert all(r.ok for r in app.verify()), [p for r in app.verify() for p in r.problems]
    one = app.dossier(1)
    votes = {s["step"]: s["values"] for s in one["submissions"]}
    assert votes["party_review"]["present"] == 37 and votes["resolve"]["present"] == 47
    two = [(s["step"], s["round"]) for s in app.dossier(2)["submissions"]]
    assert two[-3:] == [("resolve", 1), ("resolve_supervision", 1), ("resolve", 2)]
    three = app.dossier(3)["submissions"][0]
    assert three["on_behalf_of"] == "王阿婆" and three["proxy_reason"] == "年老行动不便"
    # The cases go on through the engine, on the versions they started with, and the chains still verify.
    users = {r: u for u, r in ((f"dongao_{k}", k) for k in ("committee", "supervision_committee",
                                                            "representatives_meeting", "party_members_meeting"))}

    def tick() -> None:
        clock.current().advance(days=10)  # type: ignore[attr-defined]
        app.tick()

    result = walk(app, 1, users, tick=tick)
    assert result.status == "completed" and result.visited[0] == "resolve_supervision"
    after = [(s["step"], s["round"]) for s in app.dossier(1)["submissions"]]
    assert after[:5] == [("collect", 1), ("propose", 1), ("consult", 1), ("party_review", 1), ("resolve", 1)]
    assert all(r.ok for r in app.verify())
    with app.db.read() as s:
        assert directory.get_org(s, "DONGAO").name == "东岙村"
    app.db.dispose()


def test_private_data_typed_into_a_title_is_masked_in_public(app, xw, people):
    welfare = xw.start_case("B-SVC-01", "HEPING", people["heping_committee"], {"title": "王阿婆低保申请"})
    road = xw.start_case("V-DEC-01", "DONGAO", people["party_branch"],
                         {"title": "张三丰门前修路 13812345678 330203195001011234"})
    client = app.test_client()
    for case_id in (welfare, road):
        code = xw.show_case(case_id)["tracking_code"]
        page = client.get(f"/public/case/{code}").text
        assert "王阿婆" not in page and "13812345678" not in page and "330203195001011234" not in page
    welfare_page = client.get(f"/public/case/{xw.show_case(welfare)['tracking_code']}").text
    assert "最低生活保障申请" in welfare_page
    road_page = client.get(f"/public/case/{xw.show_case(road)['tracking_code']}").text
    assert "138****5678" in road_page and "3302**********1234" in road_page
    # The start page says so before anyone types.
    start = login(app, people["party_branch"]).get("/start?org=DONGAO").text
    assert "请勿填写姓名、身份证号、电话等个人信息" in start


def test_every_kind_of_event_has_words():
    """Every event type the code records (case and system chains) is told in words, never by its code."""
    import re

    from engine.render.narrative import EVENT_TYPES, Context, describe

    found: set[str] = set()
    for folder in ("engine", "webui"):
        for path in (ROOT / folder).rglob("*.py"):
            text = path.read_text(encoding="utf-8")
            found |= set(re.findall(r'append_(?:system|case)_event\(\s*\w+,\s*(?:\w+(?:\([^)]*\))?,\s*)?"([a-z_]+)"', text))
            found |= set(re.findall(r'\(\s*"([a-z_]+)",\s*(?:actor\.username|"system"|starter)', text))
            found |= set(re.findall(r'pending\.append\(\("([a-z_]+)"', text))
            found |= set(re.findall(r'^[A-Z_]+_EVENT = "([a-z_]+)"', text, re.M))
    assert {"case_started", "step_completed", "gateway_decided", "objection_filed", "draft_published",
            "step_table_saved", "login_failed"} <= found
    found.discard("cli")  # an actor, not an event type
    assert found <= EVENT_TYPES, sorted(found - EVENT_TYPES)
    for kind in sorted(EVENT_TYPES):
        entry = describe({"type": kind, "actor": "system", "data": {}}, Context())
        assert entry.title and kind not in entry.title and "其他记录" not in entry.title
