"""Objections and reports reach people at once, and their filers' identities only those who handle
them: through the engine, Flask's test client, the trail export with the offline verifier and the
command line, on the real test database.

The V-DEC-01 case here has its resolution on notice (决议公开, done by the 村委会 member
``dongao_committee``: the cadre whose work is objected to); the 村监会 verifies objections to it."""

from __future__ import annotations

import json
import re

import pytest
from click.testing import CliRunner

from conftest import add_user
from engine import trailcheck
from engine.core import audit, privacy
from engine.services.scenarios import walk
from storage.models import Case, Objection, SealedIdentity
from test_public import form_post
from web_helpers import login, make_app

NAME, PHONE = "李秀英", "13912345678"
TEXT = "决议公开的金额与会议记录不一致,请核实"


@pytest.fixture
def web(xw):
    app = make_app(xw)
    app.config["PUBLIC_MIN_FILL_SECONDS"] = 0
    return app


@pytest.fixture
def notice(xw, people):
    """V-DEC-01 at 东岙村 with its resolution on notice (决议公开), waiting for the notice period."""
    case = xw.start_case("V-DEC-01", "DONGAO", people["party_branch"], {"title": "村道硬化工程"})
    walk(xw, case, people, stop_at="disclose_resolution_objections")
    info = xw.show_case(case)
    assert info["timers"] and not info["current_steps"]
    return case


def _object(web, xw, case_id: int, text: str = TEXT, name: str = NAME, phone: str = PHONE) -> str:
    """File an objection through the public form; the receipt code the done page shows."""
    code = xw.show_case(case_id)["tracking_code"]
    r = form_post(web.test_client(), f"/public/case/{code}/objection", {"text": text, "name": name, "phone": phone})
    assert r.status_code == 200 and "异议已提交" in r.text, r.text[:1000]
    return re.search(r'id="receipt-code">([A-Z0-9-]+)<', r.text).group(1)


def _everything_the_cadre_reads(web, xw, case_id: int, username: str) -> dict[str, str]:
    client = login(web, username)
    pages = {path: client.get(f"/cases/{case_id}{path}") for path in ("", "/trail", "/trail/print", "/trail.json")}
    assert all(r.status_code == 200 for r in pages.values()), {p: r.status_code for p, r in pages.items()}
    texts = {f"page{p}": r.get_data(as_text=True) for p, r in pages.items()}
    api = client.get(f"/api/v1/cases/{case_id}")
    assert api.status_code == 200
    texts["api"] = api.get_data(as_text=True)
    texts["tasks"] = client.get("/tasks").get_data(as_text=True)
    return texts


def test_an_objection_reaches_the_verifier_at_once_and_never_names_the_objector_to_the_cadre(
        web, xw, people, notice, tmp_path):
    receipt = _object(web, xw, notice)

    # The 村监会 (the role of disclose_resolution_objections) sees it at once, during the notice period.
    assert xw.show_case(notice)["timers"], "the notice period still runs"
    verifier = login(web, people["supervision_committee"])
    page = verifier.get(f"/cases/{notice}").text
    assert 'id="objections"' in page and TEXT in page and NAME in page and PHONE in page
    assert "已收到异议 1 件" in page
    trail = verifier.get(f"/cases/{notice}/trail").text
    assert "收到村民异议(公示:决议公开)" in trail and TEXT in trail and NAME in trail and PHONE in trail
    printed = verifier.get(f"/cases/{notice}/trail/print").text
    assert "收到村民异议(公示:决议公开)" in printed and NAME in printed and PHONE in printed
    words = re.sub(r"<[^>]+>", " ", trail)  # what a reader sees: no event codes, no internal actor
    assert "objection_filed" not in words and "public" not in words
    # ... and in the supervisors' inbox (预警), its own section beside the warnings; no identity there.
    inbox = verifier.get("/warnings").text
    assert 'id="objection-inbox"' in inbox and "村民异议" in inbox and TEXT[:20] in inbox
    assert NAME not in inbox and PHONE not in inbox
    # ... and among the verifier's tasks, before the verification step opens.
    tasks = verifier.get("/tasks").text
    assert "待您核实的村民异议" in tasks and f"/cases/{notice}#objection-" in tasks
    api = verifier.get(f"/api/v1/cases/{notice}").json
    assert api["objections"][0]["objector"] == {"name": NAME, "phone": PHONE}
    assert api["objections"][0]["status"] == "on_notice" and api["objections"][0]["text"] == TEXT

    # The township discipline office may know the objector; other township staff read the text only.
    discipline = login(web, people["township_discipline"]).get(f"/cases/{notice}").text
    assert NAME in discipline and PHONE in discipline
    staff = login(web, people["township_staff"])
    shown = staff.get(f"/cases/{notice}").text
    assert TEXT in shown and NAME not in shown and PHONE not in shown
    assert staff.get(f"/api/v1/cases/{notice}").json["objections"][0]["objector"] is None

    # The cadre who did the disclosure: the count, never the name or phone — page, trail, print,
    # export, API, task list.
    cadre = people["committee"]
    assert cadre in {e["actor"] for e in xw.show_case(notice)["history"]
                     if e["type"] == "step_completed" and e["data"]["step"] == "disclose_resolution"}
    seen = _everything_the_cadre_reads(web, xw, notice, cadre)
    for where, text in seen.items():
        assert NAME not in text and PHONE not in text and PHONE[-4:] not in text.replace(PHONE, ""), where
    assert "已收到异议 1 件" in seen["page"]
    assert TEXT not in seen["page"], "the cadre's case page counts, the verifier's lists"
    assert "收到村民异议(公示:决议公开)" in seen["page/trail"] and "异议人信息仅负责核实的组织和镇纪委可见" in seen["page/trail"]
    assert json.loads(seen["api"])["objections"] == []
    # The command line (no user: as masked as it gets).
    result = CliRunner().invoke(__import__("engine.cli", fromlist=["main"]).main,
                                ["case", "show", str(notice), "--json", "--db", xw.db.url])
    assert result.exit_code == 0, result.output
    assert NAME not in result.output and PHONE not in result.output and TEXT in result.output

    # The export still verifies offline: the identity is not in it, a commitment to it is.
    export = xw.export_trail(notice, cadre)
    notes: list[str] = []
    assert trailcheck.verify_trail(export, notes) == [] and masked(notes) == []
    filed = next(e for e in json.loads(export)["events"] if e["type"] == "objection_filed")
    with xw.db.read() as s:
        row = s.query(SealedIdentity).filter_by(case_id=notice, seq=filed["seq"]).one()
        assert (row.name, row.phone, row.kind) == (NAME, PHONE, "objection")
        assert filed["data"]["identity"]["commitment"] == row.commitment == \
            privacy.commitment(row.salt, NAME, PHONE)
        assert s.query(Objection).filter_by(case_id=notice).one().receipt_code == receipt.replace("-", "")

    # Public: counted on the notice (board and case page), nothing else.
    public = web.test_client()
    board = public.get("/public/DONGAO").text
    case_page = public.get(f"/public/case/{xw.show_case(notice)['tracking_code']}").text
    for text in (board, case_page):
        assert "已收到异议 1 件" in text and TEXT not in text and NAME not in text and PHONE not in text


def test_the_objector_follows_received_verified_and_the_outcome(web, xw, people, notice, frozen):
    receipt = _object(web, xw, notice)
    public = web.test_client()
    track = public.get(f"/public/objection/{receipt}")
    assert track.status_code == 200 and track.headers["Cache-Control"] == "no-store"
    assert "已收到,公示期满后核实" in track.text and "收到异议" in track.text and TEXT in track.text
    assert NAME not in track.text and PHONE not in track.text
    # The board's lookup box takes a receipt code too (any case, any dashes).
    found = public.get(f"/public/track?code={receipt.replace('-', '').lower()}")
    assert found.status_code == 302 and found.location.endswith(f"/public/objection/{receipt}")
    printed = public.get(f"/public/objection/{receipt}/receipt")
    assert printed.status_code == 200 and receipt in printed.text and "<svg" in printed.text

    frozen.advance(days=8)  # the notice period ends: the verification step opens
    xw.tick()
    assert [t["step_id"] for t in xw.tasks(notice)] == ["disclose_resolution_objections"]
    track = public.get(f"/public/objection/{receipt}").text
    assert "正在核实" in track and "公示期满" in track

    xw.complete(notice, "disclose_resolution_objections", people["supervision_committee"],
                {"objection_upheld": False, "objection_reply": "经核对会议记录,公示金额无误"})
    track = public.get(f"/public/objection/{receipt}").text
    assert "已核实:异议不成立" in track and "经核对会议记录,公示金额无误" in track and "已核实" in track
    verifier_page = login(web, people["supervision_committee"]).get(f"/cases/{notice}").text
    assert "异议不成立" in verifier_page


def test_an_upheld_objection_tells_the_objector_which_step_is_done_again(web, xw, people, notice, frozen):
    receipt = _object(web, xw, notice, name="", phone="")
    frozen.advance(days=8)
    xw.tick()
    xw.complete(notice, "disclose_resolution_objections", people["supervision_committee"],
                {"objection_upheld": True, "objection_reply": "公示金额有误,重新拟定方案"})
    track = web.test_client().get(f"/public/objection/{receipt}").text
    assert "已核实:异议成立" in track and "将重新办理" in track
    redo = next(e for e in reversed(xw.show_case(notice)["history"]) if e["type"] == "gateway_decided")
    assert redo["data"]["target_name"] in track
    # An anonymous objection: the verifier reads "未留姓名".
    page = login(web, people["supervision_committee"]).get(f"/cases/{notice}").text
    assert "未留姓名" in page


def test_the_cadre_holding_the_verifying_role_still_does_not_know_who_objected(web, xw, people):
    """V-DEC-02: the 村委会 both gives the advance notice and verifies its objections. The member who
    did the notice reads the objection without the objector; another member sees who it was."""
    other = add_user(xw, "dongao_committee_2", "committee@DONGAO")
    case = xw.start_case("V-DEC-02", "DONGAO", people["committee"], {"title": "村道路灯筹资"})
    walk(xw, case, people, stop_at="pre_notice_objections")
    assert xw.show_case(case)["timers"]
    _object(web, xw, case, text="筹资标准过高,低保户负担不起")
    own = login(web, people["committee"]).get(f"/cases/{case}").text
    assert "筹资标准过高" in own and NAME not in own and PHONE not in own
    assert "异议人的姓名和电话只有负责核实的组织和镇纪委可见" in own
    colleague = login(web, other).get(f"/cases/{case}").text
    assert NAME in colleague and PHONE in colleague


def test_objections_of_a_notice_count_only_that_notice(web, xw, people, notice, frozen):
    _object(web, xw, notice)
    _object(web, xw, notice, text="第二件异议:公示时间太短")
    client = web.test_client()
    assert "已收到异议 2 件" in client.get("/public/DONGAO").text
    frozen.advance(days=8)
    xw.tick()
    # The notice has ended: the board no longer lists it; the verification step must count both.
    assert "已收到异议" not in client.get("/public/DONGAO").text
    verifier = login(web, people["supervision_committee"]).get(f"/cases/{notice}").text
    assert 'value="2"' in verifier and "第二件异议" in verifier


# --- legacy events: the identity in the hashed data -----------------------------------------------

def _legacy_objection(xw, case_id: int) -> int:
    """An objection as the previous version recorded it: name and phone inside the hashed event."""
    with xw.db.write() as s:
        case = s.get(Case, case_id)
        ev = audit.append_case_event(s, case, "objection_filed", actor="public", data={
            "step": "disclose_resolution", "step_name": "决议公开", "node": "disclose_resolution_period",
            "notice_due": None, "text": "旧版记录的异议内容", "name": NAME, "phone": PHONE})
        s.add(Objection(case_id=case_id, seq=ev["seq"], receipt_code=None, step_id="disclose_resolution",
                        node_id="disclose_resolution_period", timer_task_id="", filed_at=ev["at"]))
        return ev["seq"]


def test_legacy_identity_is_masked_for_everyone_but_the_verifier_and_the_export_says_so(
        web, xw, people, notice, tmp_path, capsys):
    seq = _legacy_objection(xw, notice)
    assert all(r.ok for r in xw.verify(notice))
    shown = next(e for e in xw.show_case(notice)["history"] if e["seq"] == seq)
    assert shown["data"]["name"] == privacy.MASK and shown["data"]["phone"] == privacy.MASK
    assert shown["masked"] == ["data.name", "data.phone"]

    cadre = people["committee"]
    for where, text in _everything_the_cadre_reads(web, xw, notice, cadre).items():
        assert NAME not in text and PHONE not in text, where
    export = login(web, cadre).get(f"/cases/{notice}/trail.json").get_data(as_text=True)
    event = next(e for e in json.loads(export)["events"] if e["seq"] == seq)
    assert event["masked"] == ["data.name", "data.phone"] and event["data"]["text"] == "旧版记录的异议内容"
    notes: list[str] = []
    assert trailcheck.verify_trail(export, notes) == []
    assert masked(notes) == [f"event #{seq} (objection_filed): personal data masked (data.name, data.phone); "
                     "hash not recomputed; links to its neighbours checked"]
    path = tmp_path / "trail.json"
    path.write_text(export, encoding="utf-8")
    assert trailcheck.main([str(path)]) == 0
    out = capsys.readouterr().out
    assert "OK:" in out and "1 masked" in out and "hash not recomputed; links to its neighbours checked" in out

    # Masking hides only the masked event's hash check: any other edit, or a broken link, still fails.
    trail = json.loads(export)
    trail["events"][seq - 2]["data"]["changed"] = True
    assert any("content does not match its hash" in p for p in trailcheck.verify_trail(trailcheck.render(trail)))
    trail = json.loads(export)
    trail["events"][seq - 1]["prev_hash"] = "0" * 64
    assert any("does not link" in p for p in trailcheck.verify_trail(trailcheck.render(trail)))
    trail = json.loads(export)
    trail["events"][0]["masked"] = ["data.title"]  # hiding an edit behind a marker fails: only identities mask
    problems = trailcheck.verify_trail(trailcheck.render(trail))
    assert any(p.startswith("event #1 (case_started): a 'masked' marker on what may not be masked") for p in problems)

    # The verifier reads the legacy identity, and exports the event whole (it verifies in full).
    verifier = login(web, people["supervision_committee"])
    assert NAME in verifier.get(f"/cases/{notice}").text and PHONE in verifier.get(f"/cases/{notice}/trail").text
    whole = verifier.get(f"/cases/{notice}/trail.json").get_data(as_text=True)
    notes = []
    assert trailcheck.verify_trail(whole, notes) == [] and masked(notes) == []
    assert next(e for e in json.loads(whole)["events"] if e["seq"] == seq)["data"]["name"] == NAME
    # The CLI's export, with no user, masks.
    assert NAME not in xw.export_trail(notice) and "masked" in xw.export_trail(notice)


# --- reports (码上举报) ---------------------------------------------------------------------------

def test_a_reporter_is_known_to_the_discipline_staff_only(web, xw, people):
    client = web.test_client()
    r = form_post(client, "/public/DONGAO/report", {"text": "村会计在发放补贴时克扣每户五十元", "topic": "welfare",
                                                   "name": "赵六", "phone": "13700002222"})
    assert r.status_code == 200, r.text[:1000]
    with xw.db.read() as s:
        case_id = s.query(Case).filter_by(procedure_id="T-SUP-01").one().id
    discipline = login(web, people["township_discipline"])
    for path in ("", "/trail"):
        text = discipline.get(f"/cases/{case_id}{path}").text
        assert "赵六" in text and "13700002222" in text, path
    # The receive form is prefilled for the discipline staff, and what they submit stays sealed.
    assert 'value="赵六"' in discipline.get(f"/cases/{case_id}").text
    xw.complete(case_id, "receive", people["township_discipline"],
                {"reporter_name": "赵六", "reporter_phone": "13700002222", "accepted": True, "accept_note": "已受理"})
    received = next(e for e in xw.show_case(case_id)["history"] if e["type"] == "step_completed")
    assert "reporter_name" not in received["data"]["data"] and received["data"]["identity"]["commitment"]
    assert not [c for c in received["data"]["changes"] if c["field"] in privacy.IDENTITY_FIELDS]
    # Every other township role reads the case without the reporter.
    for key in ("township_staff", "township_government", "civil_affairs"):
        other = login(web, people[key])
        for path in ("", "/trail", "/trail/print", "/trail.json"):
            response = other.get(f"/cases/{case_id}{path}")
            assert response.status_code == 200, (key, path)
            text = response.get_data(as_text=True)
            assert "赵六" not in text and "13700002222" not in text, (key, path)
        api = other.get(f"/api/v1/cases/{case_id}").get_data(as_text=True)
        assert "赵六" not in api and "13700002222" not in api
    assert trailcheck.verify_trail(xw.export_trail(case_id)) == []
    assert all(r.ok for r in xw.verify(case_id))


def test_a_legacy_report_is_masked_but_for_the_discipline_staff(web, xw, people):
    """A report started by the previous version: the reporter inside the hashed case_started event."""
    from engine.core import cases

    with xw.db.write() as s:
        case = cases.start_case(s, "T-SUP-01", "SFZ", cases.PUBLIC_ACTOR,
                                {"title": "码上举报·东岙村", "report_text": "旧版举报:工程款去向不明",
                                 "about_org": "东岙村", "topic": "project", "reporter_name": "钱七",
                                 "reporter_phone": "13600003333"},
                                public={"channel": "码上举报", "about": "DONGAO", "reporter": "钱七", "attachments": []})
        case_id = case.id
    staff = login(web, people["township_staff"])
    for path in ("", "/trail", "/trail.json"):
        text = staff.get(f"/cases/{case_id}{path}").get_data(as_text=True)
        assert "钱七" not in text and "13600003333" not in text, path
    export = staff.get(f"/cases/{case_id}/trail.json").get_data(as_text=True)
    notes: list[str] = []
    assert trailcheck.verify_trail(export, notes) == [] and len(masked(notes)) == 1
    assert "data.initial.reporter_name" in notes[0] and "data.public.reporter" in notes[0]
    discipline = login(web, people["township_discipline"])
    page = discipline.get(f"/cases/{case_id}").text
    assert "钱七" in page and "13600003333" in page
    notes = []
    assert trailcheck.verify_trail(discipline.get(f"/cases/{case_id}/trail.json").get_data(as_text=True), notes) == []
    assert masked(notes) == []


# --- the migration ----------------------------------------------------------------------------------

def test_the_migration_gives_existing_objections_their_rows(xw, people, notice):
    """Downgrading past 0011 and upgrading again (what an existing database goes through) makes an
    ``objection`` row for every ``objection_filed`` event, tied to the notice that still waits."""
    from alembic import command
    from alembic.config import Config

    from storage.db import MIGRATIONS

    from engine.core import cases
    from storage.models import CaseField

    seq = _legacy_objection(xw, notice)
    with xw.db.write() as s:  # a report as the previous version kept it: the reporter in case_field too
        report = cases.start_case(s, "T-SUP-01", "SFZ", cases.PUBLIC_ACTOR,
                                  {"report_text": "旧版举报内容", "about_org": "东岙村", "topic": "funds",
                                   "reporter_name": "钱七"}, public={"channel": "码上举报", "reporter": "钱七"}).id
    with xw.db.read() as s:
        assert s.query(CaseField).filter_by(case_id=report, name="reporter_name").count() == 1
    xw.db.dispose()
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS))
    config.set_main_option("sqlalchemy.url", xw.db.url.replace("%", "%%"))
    with xw.db.engine.begin() as conn:
        config.attributes["connection"] = conn
        command.downgrade(config, "0010")  # the revision before 0011 (objections' own)
    xw.db.upgrade()
    with xw.db.read() as s:
        row = s.query(Objection).filter_by(case_id=notice).one()
        assert (row.seq, row.receipt_code, row.step_id) == (seq, None, "disclose_resolution")
        assert row.timer_task_id, "tied to the notice that still waits"
        assert s.query(CaseField).filter_by(case_id=report, name="reporter_name").count() == 0
    assert all(r.ok for r in xw.verify(notice)) and all(r.ok for r in xw.verify(report))
    assert "已收到异议 1 件" in make_app(xw).test_client().get("/public/DONGAO").text


def masked(notes: list[str]) -> list[str]:
    """The notes about events whose personal data was masked (trailcheck also notes the anchor)."""
    return [n for n in notes if "personal data masked" in n]
