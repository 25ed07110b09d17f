"""Vote rules as data (processes/bodies.yaml, engine/voting.py): every body's rule at its boundaries,
the library's vote steps against the law, lint refusing weaker rules, townships setting stricter ones."""

from __future__ import annotations

from datetime import timedelta

import copy
from fractions import Fraction
from pathlib import Path

import pytest
import yaml

from conftest import do_step, ready_steps
from engine.core import procedures, voting
from engine.core.definitions import read_definition
from engine.core.errors import InvalidData
from engine.core.expressions import compile_expression
from engine.core.lint import lint_bytes
from engine.bpmn.steptable import TABLES_DIR, StepTableError, build_bpmn, load_table
from engine.core.xmlsafe import parse_xml

ROOT = Path(__file__).resolve().parent.parent

# (body, matter, members, quorum boundary: (count, is it enough?) one below / at / above,
#  present for the pass test, pass boundary: (in favour, passes?) one below / at / above).
# Written by hand from the articles, independently of the code's arithmetic.
BOUNDARIES = [
    # 党员大会 第十一条: 半数以上 present (10 of 20 is enough); in favour MORE than half of 20 (10 is not).
    ("party_members_meeting", None, 20, [(9, False), (10, True), (11, True)], 12,
     [(9, False), (10, False), (11, True)]),
    # 接收预备党员: more than half present (10 of 20 is not enough); in favour more than half of 应到.
    ("party_members_meeting", "admission", 20, [(10, False), (11, True), (12, True)], 11,
     [(9, False), (10, False), (11, True)]),
    # 村民会议 第二十二条: more than half of villagers (50 of 100 is not enough); more than half present.
    ("villagers_assembly", None, 100, [(50, False), (51, True), (52, True)], 60,
     [(29, False), (30, False), (31, True)]),
    # 发包给本集体以外: 三分之二以上 of all members in favour (20 of 30 is enough).
    ("villagers_assembly", "outsider_contracting", 30, [(15, False), (16, True), (17, True)], 25,
     [(19, False), (20, True), (21, True)]),
    # 村民代表会议 第二十六条: 三分之二以上 present (20 of 30 is enough); more than half of those present.
    ("villagers_representatives", None, 30, [(19, False), (20, True), (21, True)], 20,
     [(9, False), (10, False), (11, True)]),
    ("villagers_representatives", "outsider_contracting", 30, [(19, False), (20, True), (21, True)], 25,
     [(19, False), (20, True), (21, True)]),
    # 村民小组会议 第二十八条: 三分之二以上 present; more than half present.
    ("villager_group_meeting", None, 30, [(19, False), (20, True), (21, True)], 24,
     [(11, False), (12, False), (13, True)]),
    # 居民会议: more than half present (20 of 40 is not enough); more than half of those present.
    ("residents_meeting", None, 40, [(20, False), (21, True), (22, True)], 30,
     [(14, False), (15, False), (16, True)]),
    # 集体经济组织成员大会: 三分之二以上 present; more than half of ALL members in favour.
    ("collective_members_assembly", None, 30, [(19, False), (20, True), (21, True)], 25,
     [(14, False), (15, False), (16, True)]),
    ("collective_members_assembly", "major", 30, [(19, False), (20, True), (21, True)], 25,
     [(19, False), (20, True), (21, True)]),
    ("collective_representatives", None, 30, [(19, False), (20, True), (21, True)], 25,
     [(19, False), (20, True), (21, True)]),
    # 两委联席会议 (local rule): more than half present; more than half of those present.
    ("joint_meeting", None, 10, [(5, False), (6, True), (7, True)], 8,
     [(3, False), (4, False), (5, True)]),
    # 业主大会 民法典第二百七十八条: 三分之二以上 take part; more than half of those taking part.
    ("owners_assembly", None, 30, [(19, False), (20, True), (21, True)], 24,
     [(11, False), (12, False), (13, True)]),
    ("owners_assembly", "special", 40, [(26, False), (27, True), (28, True)], 28,
     [(20, False), (21, True), (22, True)]),
    # 罢免 第十六条: more than half of registered voters vote; more than half of the votes.
    ("recall_ballot", None, 100, [(50, False), (51, True), (52, True)], 60,
     [(29, False), (30, False), (31, True)]),
    # 民主评议小组 (local rule): 三分之二以上 present; more than half of those present.
    ("assistance_review_panel", None, 9, [(5, False), (6, True), (7, True)], 6,
     [(2, False), (3, False), (4, True)]),
]


def _ids(row) -> str:
    return f"{row[0]}-{row[1] or 'general'}"


def test_every_body_and_matter_has_boundary_tests() -> None:
    covered = {(body, matter) for body, matter, *_ in BOUNDARIES}
    table = {(key, None) for key in voting.bodies()}
    table |= {(key, matter) for key, body in voting.bodies().items() for matter in body.matters}
    assert table == covered


@pytest.mark.parametrize("body, matter, members, quorum, present, passing", BOUNDARIES, ids=[_ids(r) for r in BOUNDARIES])
def test_quorum_boundaries(body, matter, members, quorum, present, passing) -> None:
    rule = voting.lawful_rule(body, matter)
    for count, enough in quorum:
        result = voting.check(rule, {"members_total": members, "present": count, "in_favour": 0})
        assert result.quorum_met is enough, (count, [t.text for t in result.tests])
        sentence = next(t for t in result.tests if t.key == "quorum")
        assert sentence.ok is enough and f"到会 {count} 人" in sentence.text


@pytest.mark.parametrize("body, matter, members, quorum, present, passing", BOUNDARIES, ids=[_ids(r) for r in BOUNDARIES])
def test_pass_boundaries(body, matter, members, quorum, present, passing) -> None:
    rule = voting.lawful_rule(body, matter)
    for favour, passes in passing:
        result = voting.check(rule, {"members_total": members, "present": present, "in_favour": favour,
                                     "against": present - favour})
        assert result.quorum_met
        assert result.passed is passes, (favour, [t.text for t in result.tests])
        assert result.outcome == ("passed" if passes else "failed")


def test_of_members_versus_of_present() -> None:
    """11 of 20 present with 10 in favour: most of those present, but not more than half of 应到."""
    counts = {"members_total": 20, "present": 12, "in_favour": 10, "against": 2}
    party = voting.check(voting.lawful_rule("party_members_meeting"), counts)
    assert not party.passed
    assert "赞成 10 票,未超过应到 20 人的半数(至少 11 票)" in [t.text for t in party.tests]
    group = voting.check(voting.lawful_rule("villagers_representatives"),
                         {"members_total": 15, "present": 12, "in_favour": 7, "against": 5})
    assert group.passed
    assert "赞成 7 票,超过到会 12 人的半数(至少 7 票)" in [t.text for t in group.tests]


def test_check_sentences_in_plain_chinese() -> None:
    rule = voting.lawful_rule("party_members_meeting")
    result = voting.check(rule, {"members_total": 43, "excluded": 2, "present": 17, "in_favour": 15})
    assert [t.text for t in result.tests] == [
        "应到 43 人,经决定不计入 2 人,按 41 人计算",
        "到会 17 人,不足应到 41 人的二分之一(至少 21 人)",
        "赞成 15 票,未超过应到 41 人的半数(至少 21 票)",
    ]
    assert result.outcome == "no_quorum" and result.base == 41


def test_exclusions_leave_members_out_of_the_base() -> None:
    rule = voting.lawful_rule("party_members_meeting")
    without = voting.check(rule, {"members_total": 22, "present": 10, "in_favour": 10})
    assert not without.quorum_met  # 10 of 22
    excluded = voting.check(rule, {"members_total": 22, "excluded": 2, "present": 10, "in_favour": 10,
                                   "excluded_basis": "2026年2月党员大会决定,报镇党委同意:张某(服刑)、李某(出国)"})
    assert excluded.quorum_met  # 10 of 20 is 半数以上
    assert not excluded.passed  # 10 is not more than half of 20
    # bodies without recorded exclusions ignore the count
    reps = voting.check(voting.lawful_rule("villagers_representatives"),
                        {"members_total": 30, "excluded": 3, "present": 19, "in_favour": 15})
    assert reps.base == 30 and not reps.quorum_met


def test_written_opinions_count_as_votes_not_as_presence() -> None:
    rule = voting.lawful_rule("party_members_meeting", "admission")
    counts = {"members_total": 20, "present": 11, "in_favour": 9, "against": 2, "written_total": 3,
              "written_in_favour": 2}
    result = voting.check(rule, counts)
    assert result.passed
    assert "赞成 11 票(含会前书面意见 2 票),超过应到 20 人的半数(至少 11 票)" in [t.text for t in result.tests]
    # they do not make a quorum
    assert not voting.check(rule, {**counts, "present": 10}).quorum_met
    # where the rule does not allow them they are not counted
    general = voting.check(voting.lawful_rule("party_members_meeting"), counts)
    assert not general.passed


def test_households_quorum_alternative() -> None:
    rule = voting.step_rule({"body": "villagers_assembly", "quorumParam": "q", "passParam": "p",
                             "householdQuorumParam": "h"}, {})
    assert rule.quorum_households == voting.Threshold(Fraction(2, 3), "at_least", "members")
    by_households = {"members_total": 45, "count_basis": "households", "in_favour": 20}
    assert not voting.check(rule, {**by_households, "present": 29}).quorum_met
    assert voting.check(rule, {**by_households, "present": 30}).quorum_met
    assert "到会 30 户,达到应到户数 45 户的三分之二(至少 30 户)" in [
        t.text for t in voting.check(rule, {**by_households, "present": 30}).tests]
    # the same 30 of 45 counted as persons is only 2/3 and more than half: enough too; 22 is not
    assert not voting.check(rule, {"members_total": 45, "present": 22, "in_favour": 20}).quorum_met


def test_inconsistent_counts_are_reported() -> None:
    rule = voting.lawful_rule("villagers_representatives")
    result = voting.check(rule, {"members_total": 30, "present": 31, "in_favour": 20})
    assert result.outcome == "invalid"
    assert any(t.key == "consistency" and not t.ok and "超过应到 30 人" in t.text for t in result.tests)


def test_describe_names_rule_and_article() -> None:
    text = voting.describe(voting.lawful_rule("party_members_meeting"))
    assert "到会人数须达到应到人数的半数以上" in text and "赞成票须超过应到人数的半数" in text
    assert text.endswith("依据《中国共产党支部工作条例(试行)》第十一条。")
    # a rule whose text was not read here names its source without an article
    recalled = voting.describe(voting.lawful_rule("residents_meeting"))
    assert recalled.endswith("依据《中华人民共和国城市居民委员会组织法》。")


def test_threshold_comparison() -> None:
    T = voting.Threshold
    half_more = T(Fraction(1, 2), "more_than", "members")
    assert T(Fraction(1, 2), "more_than", "members").at_least_as_strict_as(half_more)
    assert not T(Fraction(1, 2), "at_least", "members").at_least_as_strict_as(half_more)
    assert T(Fraction(3, 5), "at_least", "members").at_least_as_strict_as(half_more)
    assert not T(Fraction(2, 3), "at_least", "present").at_least_as_strict_as(half_more)
    assert T(Fraction(1, 2), "more_than", "members").at_least_as_strict_as(T(Fraction(1, 2), "more_than", "present"))
    assert T(Fraction(1, 2), "at_least", "members").minimum(41) == 21
    assert T(Fraction(1, 2), "more_than", "members").minimum(40) == 21
    assert T(Fraction(2, 3), "at_least", "members").minimum(30) == 20


def test_body_table_errors_are_clear() -> None:
    with pytest.raises(voting.BodyTableError, match=r"\[0\] \(x\)\.pass: rule 'half'"):
        voting.parse_bodies([{"key": "x", "name": "X", "quorum": {"ratio": "1/2"},
                              "pass": {"ratio": "1/2", "rule": "half"}}])
    with pytest.raises(voting.BodyTableError, match="a quorum counts members"):
        voting.parse_bodies([{"key": "x", "name": "X", "quorum": {"ratio": "1/2", "of": "present"},
                              "pass": {"ratio": "1/2"}}])


# --------------------------------------------------------------------------------------------
# The library


def _vote_steps():
    for path in sorted(ROOT.glob("processes/*.bpmn")):
        xml = path.read_bytes()
        d = read_definition(parse_xml(xml), xml)
        for step in d.steps.values():
            if step.kind == "vote":
                yield pytest.param(d, step, id=f"{d.id}-{step.id}")


@pytest.mark.parametrize("d, step", list(_vote_steps()))
def test_library_vote_steps_are_lawful_and_their_gateways_agree_with_check(d, step) -> None:
    """Every vote step of the library names a body, is not weaker than its lawful rule, and its
    generated gateway decides exactly as :func:`voting.check` does at the boundaries."""
    from engine.core.lint import _vote_gateway

    params = {k: p.default for k, p in d.parameters.items()}
    rule = voting.step_rule(step.vote, params)
    assert rule is not None and step.vote["body"] in voting.bodies()
    assert voting.weaker_than_law(rule) == []
    gateway = _vote_gateway(d, step.id)
    exits = [(d.flows[f].name, d.flows[f].condition) for f in gateway.outgoing]
    for counts in voting.sample_counts(rule, rule):
        expected = voting.check(rule, counts).outcome
        if expected == "invalid":
            continue
        matched = [name for name, condition in exits
                   if condition and compile_expression(condition).evaluate(counts, params)]
        assert len(matched) <= 1
        taken = matched[0] if matched else "通过"
        assert taken == {"no_quorum": "到会不足法定人数", "failed": "未通过", "passed": "通过"}[expected], counts


PARTY_STEPS = [("V-DEC-01", "party_review"), ("C-DEC-01", "party_review"), ("V-AST-01", "party_review"),
               ("V-AST-03", "party_review"), ("V-AST-04", "party_review")]


@pytest.mark.parametrize("procedure, step_id", PARTY_STEPS)
def test_party_meetings_follow_article_eleven(procedure: str, step_id: str) -> None:
    """12 of 20 present is a lawful meeting; 10 of 20 in favour does not pass, 11 does."""
    xml = (ROOT / "processes" / f"{procedure}.bpmn").read_bytes()
    d = read_definition(parse_xml(xml), xml)
    params = {k: p.default for k, p in d.parameters.items()}
    rule = voting.step_rule(d.steps[step_id].vote, params)
    assert rule.body == "party_members_meeting"
    base = {"members_total": 20, "excluded": 0, "present": 12, "against": 0, "abstain": 0}
    assert voting.check(rule, {**base, "in_favour": 10}).outcome == "failed"
    assert voting.check(rule, {**base, "in_favour": 11}).outcome == "passed"
    assert voting.check(rule, {**base, "present": 9, "in_favour": 9}).outcome == "no_quorum"
    instructions = d.steps[step_id].instructions
    assert "三分之二" not in instructions and "赞成票超过应到会有表决权党员的半数" in instructions


def _table(procedure: str) -> dict:
    return load_table(TABLES_DIR / f"{procedure}.yaml")


def _vote_of(table: dict, step_id: str) -> dict:
    return next(s for s in table["steps"] if s["id"] == step_id)["vote"]


def test_generator_refuses_a_weaker_rule() -> None:
    table = _table("V-DEC-01")
    _vote_of(table, "party_review")["pass_rule"] = "at_least"  # 半数以上同意: exactly half would pass
    with pytest.raises(StepTableError, match="vote rule weaker than the law: 党员大会的赞成票须超过应到人数的半数"):
        build_bpmn(table)
    table = _table("V-DEC-01")
    table["parameters"] = [dict(p, default="1/3") if p["key"] == "vrep_quorum" else p for p in table["parameters"]]
    with pytest.raises(StepTableError, match="村民代表会议的到会人数须达到应到人数的三分之二以上"):
        build_bpmn(table)
    table = _table("V-DEC-01")
    _vote_of(table, "resolve")["body"] = "parliament"
    with pytest.raises(StepTableError, match="unknown meeting body 'parliament'"):
        build_bpmn(table)


def test_generator_accepts_a_stricter_rule() -> None:
    table = _table("V-DEC-01")
    table["parameters"] = [dict(p, default="2/3") if p["key"] == "party_quorum" else p for p in table["parameters"]]
    xml = build_bpmn(table)
    assert lint_bytes(xml, "V-DEC-01.bpmn").ok


def test_lint_refuses_a_weaker_declared_rule() -> None:
    xml = (ROOT / "processes" / "V-DEC-01.bpmn").read_bytes()
    tampered = xml.replace(b'passParam="party_pass" quorumRule="at_least" passRule="more_than"',
                           b'passParam="party_pass" quorumRule="at_least" passRule="at_least"')
    assert tampered != xml
    problems = [p for p in lint_bytes(tampered, "V-DEC-01.bpmn").errors if p.code == "vote-rule"]
    assert problems and "党员大会的赞成票须超过应到人数的半数(《中国共产党支部工作条例(试行)》第十一条)" in problems[0].zh


def test_lint_refuses_a_gateway_that_passes_what_the_law_does_not() -> None:
    """A hand-edited condition (the catalogue's old 半数以上同意) is caught by evaluating the gateway."""
    xml = (ROOT / "processes" / "V-DEC-01.bpmn").read_bytes()
    tampered = xml.replace(b'in_favour &lt;= (members_total - excluded) * param("party_pass")',
                           b'in_favour &lt; (members_total - excluded) * param("party_pass")')
    assert tampered != xml
    problems = [p for p in lint_bytes(tampered, "V-DEC-01.bpmn").errors if p.code == "vote-gateway"]
    assert len(problems) == 1
    assert "判为通过,但依《中国共产党支部工作条例(试行)》第十一条不能通过" in problems[0].zh
    assert problems[0].element == "party_review_vote_gw"


def test_lint_refuses_a_vote_without_a_known_body() -> None:
    xml = (ROOT / "processes" / "V-DEC-01.bpmn").read_bytes()
    tampered = xml.replace(b'<xw:vote body="villagers_representatives"', b'<xw:vote body="nobody"')
    problems = [p for p in lint_bytes(tampered, "V-DEC-01.bpmn").errors if p.code == "vote-body"]
    assert problems and "会议机构" in problems[0].zh


def test_old_files_naming_a_role_map_to_its_body() -> None:
    rule = voting.step_rule({"body": "representatives_meeting", "quorumParam": "q", "passParam": "p"},
                            {"q": "2/3", "p": "1/2"})
    assert rule.body == "villagers_representatives"


# --------------------------------------------------------------------------------------------
# Townships: stricter yes (audited), weaker never


def test_township_may_set_a_stricter_rule_audited(xw) -> None:
    from engine.core.directory import get_org

    with xw.db.write() as s:
        procedures.set_param(s, get_org(s, "SFZ"), "party_quorum", "2/3")
    with xw.db.read() as s:
        from storage.models import AuditEvent
        from sqlalchemy import select
        import json

        event = s.scalars(select(AuditEvent).where(AuditEvent.type == "parameter_set")
                          .order_by(AuditEvent.id.desc())).first()
        data = json.loads(event.data)
    assert data["key"] == "party_quorum" and data["after"] == "2/3"
    assert any("V-DEC-01 党员大会审议:" in r and "到会人数须达到应到人数的三分之二以上" in r for r in data["vote_rules"])


@pytest.mark.parametrize("key, value, reason", [
    ("party_quorum", "1/3", "党员大会的到会人数须达到应到人数的半数以上"),
    ("party_pass", "2/5", "的赞成票须超过应到人数的半数"),
    ("vrep_quorum", "1/2", "村民代表会议的到会人数须达到应到人数的三分之二以上"),
    ("recall_pass", "2/3", "罢免投票的赞成票由法律规定为超过到会人数的半数"),
])
def test_township_may_not_set_a_weaker_rule(xw, key: str, value: str, reason: str) -> None:
    from engine.core.directory import get_org

    with xw.db.write() as s:
        with pytest.raises(InvalidData) as caught:
            procedures.set_param(s, get_org(s, "SFZ"), key, value)
    message = str(caught.value)
    assert reason in message and "镇街只能设定比法定规则更严的规则" in message


def test_a_weaker_setting_made_earlier_does_not_apply(xw, people) -> None:
    """A setting stored before the rule was corrected (or written past the engine) is not used."""
    from engine.core import audit
    from engine.core.directory import get_org
    from storage.models import ParameterSetting

    with xw.db.write() as s:
        s.add(ParameterSetting(org_id=get_org(s, "SFZ").id, key="party_pass", value="1/3",
                               updated_at=audit.db_time(), updated_by="legacy"))
    case_id = xw.start_case("V-DEC-01", "DONGAO", people["party_branch"])
    for step in ("collect", "propose", "consult"):
        do_step(xw, case_id, step, people)
    vote = {"meeting_date": "2026-03-02", "members_total": 20, "present": 12, "in_favour": 10, "against": 2,
            "abstain": 0}
    xw.complete(case_id, "party_review", people["party_members_meeting"], vote)
    assert ready_steps(xw, case_id) == []  # rejected: 10 of 20 is not more than half
    started = xw.show_case(case_id)["history"][0]["data"]
    assert started["params"]["party_pass"] == {"value": "1/2", "source": "law"}


# --------------------------------------------------------------------------------------------
# Cases


def _to_party_review(xw, people) -> int:
    case_id = xw.start_case("V-DEC-01", "DONGAO", people["party_branch"])
    for step in ("collect", "propose", "consult"):
        do_step(xw, case_id, step, people)
    assert ready_steps(xw, case_id) == ["party_review"]
    return case_id


def test_a_lawful_party_meeting_of_12_of_20_is_not_sent_back(xw, people) -> None:
    case_id = _to_party_review(xw, people)
    vote = {"meeting_date": "2026-03-02", "members_total": 20, "present": 12, "in_favour": 11, "against": 1,
            "abstain": 0}
    xw.complete(case_id, "party_review", people["party_members_meeting"], vote)
    assert ready_steps(xw, case_id) == ["resolve"]


def test_exactly_half_in_favour_does_not_pass(xw, people) -> None:
    case_id = _to_party_review(xw, people)
    vote = {"meeting_date": "2026-03-02", "members_total": 20, "present": 20, "in_favour": 10, "against": 10,
            "abstain": 0}
    xw.complete(case_id, "party_review", people["party_members_meeting"], vote)
    assert xw.show_case(case_id)["status"] == "rejected"


def test_excluded_members_need_a_recorded_decision(xw, people) -> None:
    case_id = _to_party_review(xw, people)
    vote = {"meeting_date": "2026-03-02", "members_total": 22, "excluded": 2, "present": 10, "in_favour": 10,
            "against": 0, "abstain": 0}
    with pytest.raises(InvalidData) as caught:
        xw.complete(case_id, "party_review", people["party_members_meeting"], vote)
    assert "须写明依据的决定和人员" in str(caught.value.errors)
    vote["excluded_basis"] = "2026年2月10日党员大会决定(镇党委同意):王某长期卧病、赵某出国一年"
    xw.complete(case_id, "party_review", people["party_members_meeting"], {**vote, "in_favour": 10})
    # 10 of 20 counted members present is a quorum, but 10 in favour is not more than half of 20
    assert xw.show_case(case_id)["status"] == "rejected"


def today(clock) -> str:
    """The China date of the clock: a meeting is dated the day it is held."""
    return (clock.now() + timedelta(hours=8)).date().isoformat()


def test_admission_counts_written_opinions(xw, people, frozen) -> None:
    from engine.services.scenarios import walk

    def tick() -> None:
        frozen.advance(days=400)
        xw.tick()

    case_id = xw.start_case("B-HR-01", "DONGAO", people["applicant"])
    walk(xw, case_id, people, tick=tick, stop_at="admission_vote")
    assert ready_steps(xw, case_id) == ["admission_vote"]
    vote = {"members_total": 20, "present": 11, "in_favour": 9, "against": 2,
            "abstain": 0, "written_total": 3, "written_in_favour": 2}
    xw.complete(case_id, "admission_vote", people["party_members_meeting"],
                {**vote, "meeting_date": today(frozen), "written_in_favour": 1})
    assert xw.show_case(case_id)["status"] == "rejected"  # 10 of 20 is not more than half

    case_id = xw.start_case("B-HR-01", "DONGAO", people["applicant"])
    walk(xw, case_id, people, tick=tick, stop_at="admission_vote")
    xw.complete(case_id, "admission_vote", people["party_members_meeting"], {**vote, "meeting_date": today(frozen)})
    assert ready_steps(xw, case_id) == ["approve"]  # 9 at the meeting + 2 written = 11 of 20


def test_table_yaml_notes_say_where_catalogue_and_law_disagree() -> None:
    text = (ROOT / "processes" / "bodies.yaml").read_text(encoding="utf-8")
    data = yaml.safe_load(text)
    assert [b["key"] for b in data] == list(voting.bodies())
    assert "# 注: 目录(V-DEC-01、C-DEC-01、V-AST-01、V-AST-03、V-AST-04)" in text


def test_step_table_form_takes_the_body_from_the_role() -> None:
    from webui.views.table_form import sheet_from_table, table_from_sheet

    table = copy.deepcopy(_table("V-DEC-01"))
    for step in table["steps"]:
        if step.get("vote"):
            step["vote"].pop("body")
    rebuilt = table_from_sheet(sheet_from_table(table))
    assert _vote_of(rebuilt, "party_review")["body"] == "party_members_meeting"
    assert _vote_of(rebuilt, "resolve")["body"] == "villagers_representatives"


# --------------------------------------------------------------------------------------------
# Pages: the step page, the trail and the handbook state the rule and its source in words


def test_step_page_and_trail_state_the_rule_and_the_check(app, xw, people) -> None:
    import html

    from web_helpers import login

    case_id = _to_party_review(xw, people)
    client = login(app, people["party_members_meeting"])
    page = html.unescape(client.get(f"/cases/{case_id}").text)
    assert "表决规则" in page
    assert ("党员大会:到会人数须达到应到人数的半数以上方可表决;赞成票须超过应到人数的半数方为通过。"
            in page)
    assert "依据《中国共产党支部工作条例(试行)》第十一条" in page
    assert 'name="excluded"' in page and 'value="0"' in page  # prefilled default
    vote = {"meeting_date": "2026-03-02", "members_total": 41, "present": 17, "in_favour": 15, "against": 2,
            "abstain": 0}
    xw.complete(case_id, "party_review", people["party_members_meeting"], vote)
    trail = html.unescape(login(app, people["supervision_committee"]).get(f"/cases/{case_id}/trail").text)
    assert "到会 17 人,不足应到 41 人的二分之一(至少 21 人)" in trail
    assert "赞成 15 票,未超过应到 41 人的半数(至少 21 票)" in trail


def test_step_page_says_when_the_township_rule_is_stricter(app, xw, people) -> None:
    import html

    from engine.core.directory import get_org
    from web_helpers import login

    with xw.db.write() as s:
        procedures.set_param(s, get_org(s, "SFZ"), "party_quorum", "2/3")
    case_id = _to_party_review(xw, people)
    page = html.unescape(login(app, people["party_members_meeting"]).get(f"/cases/{case_id}").text)
    assert "到会人数须达到应到人数的三分之二以上方可表决" in page
    assert "本镇(街道)设定了比法定规则更严的规则。法定规则:党员大会:到会人数须达到应到人数的半数以上" in page


def test_handbook_states_vote_rules(xw) -> None:
    import html

    from engine.render.handbook import collect_entries, render_handbook_html

    text = html.unescape(render_handbook_html(collect_entries(xw, "village"), edition="village"))
    assert "表决规则:党员大会:到会人数须达到应到人数的半数以上方可表决" in text
    assert "表决规则:村民代表会议:到会人数须达到应到人数的三分之二以上方可表决" in text
