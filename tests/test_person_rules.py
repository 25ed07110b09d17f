"""People, not accounts, in the warning rules: the separation-of-duties and conflict-of-interest rules
compare persons and households of the register (engine.core.people), not login names or exact names.

The proofs of issue #14: the 代办 self-application (a committee cadre files a 低保 application as 代办
naming themself, by name and ID number, as the applicant, then does the village step) raises exactly
one warning; a keeper stamping their own approval under another account, without ticking "I am the
keeper", raises one; a near miss (a relative outside the declared degree) raises none."""

from __future__ import annotations

import pytest
from sqlalchemy import select

from conftest import case_context, ready_steps
from engine.core import people as register
from engine.core.directory import get_org
from engine.core.forms import valid_id_number
from engine.services.scenarios import plan_step_data, sample_evidence
from engine.services.supervision import warnings
from storage.models import Person, PersonRelation, User

CONFLICT_RULES = ("WR-08", "WR-09", "WR-22", "WR-23", "XW-02")


def _id(body: str) -> str:
    return next(body + c for c in "0123456789X" if valid_id_number(body + c))


CADRE_ID = _id("33020319800101123")
OTHER_ID = _id("33020319851212456")
AUNT_ID = _id("33020319550303789")


def step(xw, case_id, step_id, users, overrides=None, as_user=None, **kwargs):
    d, params, data = case_context(xw, case_id)
    payload = plan_step_data(d, step_id, params, data, overrides=overrides)
    payload.update(overrides or {})
    user = as_user or users[d.steps[step_id].role]
    if d.steps[step_id].evidence_required and "attachments" not in kwargs:
        kwargs["attachments"] = sample_evidence(xw, d.steps[step_id], user)
    return xw.complete(case_id, step_id, user, payload, **kwargs)


def rescan_from_scratch(xw) -> None:
    """Forget every warning and scan the whole history at once (the set-based full scan)."""
    from storage.models import SupervisionWarning, WarningSubject

    with xw.db.write() as s:
        s.query(WarningSubject).delete()
        s.query(SupervisionWarning).delete()
    xw.scan_warnings()


def conflicts(xw, case_id):
    """The separation-of-duties and conflict-of-interest warnings of a case."""
    return [w for w in xw.list_warnings(case_id=case_id, limit=500)["warnings"] if w["rule"] in CONFLICT_RULES]


@pytest.fixture
def cadre(xw, people):
    """The committee cadre 陈立新 of 东岙村, an account held by a person of the register."""
    username = people["committee"]
    with xw.db.write() as s:
        s.scalar(select(User).where(User.username == username)).display_name = "陈立新"
        person_id = register.person_for_user(s, username, id_number=CADRE_ID).id
    return username, person_id


def dibao_by_proxy(xw, people, cadre_username, name, id_number, *, until="publicize"):
    """A 低保 application (B-SVC-01) filed by the cadre as 代办, walked to the village step ``until``."""
    case_id = xw.start_case("B-SVC-01", "DONGAO", cadre_username)
    step(xw, case_id, "apply", people, {"applicant_name": name, "id_number": id_number, "kin_of_cadre": False},
         as_user=cadre_username, on_behalf_of=name, proxy_reason="申请人行动不便")
    for _ in range(8):
        ready = ready_steps(xw, case_id)
        if until in ready or not ready:
            break
        step(xw, case_id, ready[0], people)
    assert until in ready_steps(xw, case_id)
    step(xw, case_id, until, people, as_user=cadre_username)
    return case_id


def test_proxy_self_application_raises_exactly_one_warning(xw, people, cadre) -> None:
    username, person_id = cadre
    case_id = dibao_by_proxy(xw, people, username, "陈立新", CADRE_ID)
    found = conflicts(xw, case_id)
    assert len(found) == 1, found
    (w,) = found
    assert w["rule"] == "WR-09" and w["severity"] == "red"
    assert w["facts"]["kind"] == "self" and w["facts"]["cadre_person_id"] == person_id
    assert w["summary"] == "申请人“陈立新”就是经办干部陈立新本人" and w["facts"]["handled"] is True
    assert username in xw.show_warning(w["id"])["subjects"]
    # the same facts never raise twice: a full scan finds nothing new
    assert not [r for r in xw.scan_warnings() if r["rule"] in CONFLICT_RULES]
    rescan_from_scratch(xw)
    assert [(w["rule"], w["facts"]["kind"]) for w in conflicts(xw, case_id)] == [("WR-09", "self")]


def test_the_same_name_with_another_id_number_is_another_person(xw, people, cadre) -> None:
    username, _ = cadre
    case_id = dibao_by_proxy(xw, people, username, "陈立新", OTHER_ID)
    xw.scan_warnings()
    assert conflicts(xw, case_id) == []


def _relative(xw, username, name, relation, id_number=None):
    with xw.db.write() as s:
        me = register.person_of_user(s, username)
        other = register.find_or_add(s, name, org=get_org(s, "DONGAO"), id_number=id_number).person
        register.declare_relative(s, me, other, relation, actor=username)


def test_a_relative_within_the_degree_raises_one_and_a_wider_one_none(xw, people, cadre) -> None:
    username, _ = cadre
    _relative(xw, username, "林秀英", "spouse", OTHER_ID)
    _relative(xw, username, "陈阿姑", "uncle_aunt", AUNT_ID)  # degree 3: outside the default degree 2
    spouse = dibao_by_proxy(xw, people, username, "林秀英", OTHER_ID)
    aunt = dibao_by_proxy(xw, people, username, "陈阿姑", AUNT_ID)
    xw.scan_warnings()
    (w,) = conflicts(xw, spouse)
    assert w["rule"] == "WR-09" and w["facts"]["kind"] == "relative" and w["facts"]["degree"] == 1
    assert w["summary"] == "申请人“林秀英”是经办干部陈立新申报的配偶(1级)"
    assert conflicts(xw, aunt) == []  # the near miss
    rescan_from_scratch(xw)
    assert len(conflicts(xw, spouse)) == 1 and conflicts(xw, aunt) == []
    # a township that widens the degree brings the aunt in
    with xw.db.write() as s:
        from engine.core import procedures

        procedures.set_param(s, get_org(s, "SFZ"), "kin_max_degree", "3", actor="cli")
    xw.scan_warnings()
    assert [w["facts"]["degree"] for w in conflicts(xw, aunt)] == [3]


def test_a_payee_of_the_cadres_household(xw, people, cadre) -> None:
    """B-FIN-01: the payee lives in the household of the handler (no declaration of kinship at all)."""
    username, person_id = cadre
    handler = people["handler"]
    with xw.db.write() as s:
        org = get_org(s, "DONGAO")
        me = register.person_for_user(s, handler, actor="cli")
        home = register.add_household(s, org, "周家户", actor="cli")
        register.set_household(s, me, home, actor="cli")
        lodger = register.find_or_add(s, "周小勇", org=org, actor="cli").person
        register.set_household(s, lodger, home, actor="cli")
    case_id = xw.start_case("B-FIN-01", "DONGAO", handler)
    step(xw, case_id, "submit", people, {"payee": "周小勇", "amount": 800, "expense_date": "2026-03-02",
                                         "expense_category": "office", "days_since_expense": 0})
    (w,) = conflicts(xw, case_id)
    assert w["rule"] == "WR-08" and w["facts"]["kind"] == "household" and w["facts"]["cadre"] == handler
    rescan_from_scratch(xw)  # the full scan finds the same, once
    assert [(w["rule"], w["facts"]["kind"]) for w in conflicts(xw, case_id)] == [("WR-08", "household")]
    # a stranger paid by the same handler raises nothing
    other = xw.start_case("B-FIN-01", "DONGAO", handler)
    step(xw, other, "submit", people, {"payee": "吴一凡", "amount": 800, "expense_date": "2026-03-02",
                                       "expense_category": "office", "days_since_expense": 0})
    assert conflicts(xw, other) == []


def seal_use(xw, people, approver, keeper):
    case_id = xw.start_case("B-PUB-01", "DONGAO", people["handler"])
    step(xw, case_id, "request", people, {"blank_document": False, "is_major": False})
    step(xw, case_id, "approve", people, {"approved": True, "approver_is_keeper": False,
                                          "resolution_attached": False}, as_user=approver)
    step(xw, case_id, "stamp", people, as_user=keeper)
    return case_id


def test_a_keeper_stamping_their_own_approval_raises_one(xw, people) -> None:
    keeper, director = people["seal_keeper"], people["director"]
    honest = seal_use(xw, people, director, keeper)  # two persons: nothing
    assert conflicts(xw, honest) == []
    with xw.db.write() as s:  # both accounts were opened with the same ID number: one person holds them
        register.person_for_user(s, keeper, id_number=OTHER_ID, actor="cli")
        register.person_for_user(s, director, id_number=OTHER_ID, actor="cli")
        assert register.same_person(s, keeper, director)
    own = seal_use(xw, people, director, keeper)
    (w,) = conflicts(xw, own)
    assert w["rule"] == "XW-02" and w["facts"]["roles"] == ["director", "seal_keeper"]
    assert w["facts"]["accounts"] == sorted([director, keeper]) and "person:" not in str(w["facts"])
    assert "person:" not in w["summary"] and "用印审批人又是印章保管人" in w["summary"]
    assert set(xw.show_warning(w["id"])["subjects"]) >= {director, keeper}


def test_kin_add_declares_the_relation_by_person(xw, people) -> None:
    """``xiaowei kin add`` (its form unchanged) declares kinship by person, with degree."""
    director = people["director"]
    with xw.db.write() as s:
        row = warnings.add_kin(s, "DONGAO", director, "李四海", "in_law", actor="cli")
        warnings.add_kin(s, "DONGAO", director, "李四海", "spouse", actor="cli")
    assert row["degree"] == 2 and row["person_name"] == "李四海"
    with xw.db.read() as s:
        me = register.person_of_user(s, director)
        relations = s.execute(select(PersonRelation.relation, PersonRelation.degree, Person.name, Person.id)
                              .join(Person, Person.id == PersonRelation.relative_id)
                              .where(PersonRelation.person_id == me.id).order_by(PersonRelation.id)).all()
        assert [tuple(r[:3]) for r in relations] == [("in_law", 2, "李四海"), ("spouse", 1, "李四海")]
        assert register.declared_relation(s, director, relations[0].id, 2).relation == "spouse"  # closest first
        assert [k["relation"] for k in warnings.list_kin(s, "DONGAO")] == ["in_law", "spouse"]


def test_migration_carries_later_name_declarations_into_kinship_by_person(db_url) -> None:
    """A declaration made by name after 0010 (its cadre already linked to a person) is carried into
    kinship by person by 0016, once, to the person of that name in the village."""
    from alembic import command
    from alembic.config import Config
    from sqlalchemy import text

    from engine.core import audit
    from storage import Database
    from storage.db import MIGRATIONS

    db = Database(db_url)
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS))
    config.set_main_option("sqlalchemy.url", db.url.replace("%", "%%"))
    with db.engine.begin() as connection:
        config.attributes["connection"] = connection
        command.upgrade(config, "0011")
    now = audit.db_time()
    with db.engine.begin() as conn:
        conn.execute(text("INSERT INTO organization (id, code, name, kind, parent_id, created_at) "
                          "VALUES (1, 'DONGAO', '东岙村', 'village', NULL, :now)"), {"now": now})
        ids = {}
        for name in ("王建国", "李秀梅"):  # (no explicit ids: PostgreSQL's sequence stays right)
            conn.execute(text("INSERT INTO person (org_id, name, name_key, id_cipher, id_tail, phone_cipher, "
                              "created_at, created_by) VALUES (1, :name, :name, '', '', '', :now, 'x')"),
                         {"name": name, "now": now})
            ids[name] = conn.execute(text("SELECT id FROM person WHERE name = :name"), {"name": name}).scalar()
        conn.execute(text("INSERT INTO user_account (id, username, display_name, password_hash, active, failed_logins, "
                          "created_at, person_id) VALUES (1, 'dongao.director', '王建国', 'x', :t, 0, :now, :p)"),
                     {"now": now, "t": True, "p": ids["王建国"]})
        for i, (name, relation, degree) in enumerate([("李秀梅", "spouse", 1), ("王建军", "in_law", 2)], start=1):
            conn.execute(text("INSERT INTO kinship (id, org_id, cadre, cadre_name, person_name, relation, degree, note, "
                              "declared_by, created_at) VALUES (:id, 1, 'dongao.director', '王建国', :name, :rel, "
                              ":deg, '', 'cli', :now)"),
                         {"id": i, "name": name, "rel": relation, "deg": degree, "now": now})
    db.upgrade()
    db.upgrade()  # idempotent
    with db.read() as s:
        rows = s.execute(select(PersonRelation.person_id, Person.name, PersonRelation.relation, PersonRelation.degree)
                         .join(Person, Person.id == PersonRelation.relative_id).order_by(PersonRelation.id)).all()
        me = ids["王建国"]
        assert [tuple(r) for r in rows] == [(me, "李秀梅", "spouse", 1), (me, "王建军", "in_law", 2)]
        assert register.declared_relation(s, "dongao.director", ids["李秀梅"], 1).relation == "spouse"
    db.dispose()


def test_proxy_self_application_for_temporary_assistance_then_the_village_check(xw, people, cadre) -> None:
    """B-SVC-02 (临时救助): the cadre files as 代办 for themself, then does 村(居)核实情况 and even marks
    the applicant as a cadre's relative (备案): for the cadre themself that exempts nothing — one warning."""
    username, person_id = cadre
    case_id = xw.start_case("B-SVC-02", "DONGAO", username)
    step(xw, case_id, "apply", people, {"applicant_name": "陈立新", "id_number": CADRE_ID}, as_user=username,
         on_behalf_of="陈立新", proxy_reason="申请人住院")
    step(xw, case_id, "verify", people, {"eligible": True, "is_emergency": False, "fund_source": "collective",
                                         "cadre_kin": True}, as_user=username)
    xw.scan_warnings()
    (w,) = conflicts(xw, case_id)
    assert w["rule"] == "WR-09" and w["facts"]["kind"] == "self" and w["facts"]["cadre_person_id"] == person_id


def test_cli_links_accounts_to_persons_by_id_number(xw, people) -> None:
    import json

    from test_cli import run as cli

    url = str(xw.db.engine.url.render_as_string(hide_password=False))
    first = json.loads(cli(url, "user", "person", people["seal_keeper"], "--id-number", OTHER_ID, "--json").stdout)
    second = json.loads(cli(url, "user", "person", people["director"], "--id-number", OTHER_ID.lower(), "--json").stdout)
    assert first["person_id"] == second["person_id"] and first["id_tail"] == OTHER_ID[-4:]
    text = cli(url, "user", "person", people["director"]).stdout
    assert f"人员 {first['person_id']}" in text and OTHER_ID not in text
    bad = cli(url, "user", "person", people["handler"], "--id-number", "330203198001011234", ok=False)
    assert bad.returncode == 1 and "身份证号码无效" in bad.stderr + bad.stdout and "Traceback" not in bad.stderr
    assert cli(url, "user", "person", "nobody", ok=False).returncode == 1
    with xw.db.read() as s:
        assert register.same_person(s, people["seal_keeper"], people["director"])


def test_a_relative_of_a_village_cadre_who_did_not_handle_the_case(xw, people) -> None:
    """优亲厚友: the director's mother receives assistance the committee handled; declared by person,
    not filed (备案) at the village check: one warning naming the director as 本村(社区)干部."""
    director = people["director"]
    with xw.db.write() as s:
        warnings.add_kin(s, "DONGAO", director, "王阿婆", "parent", actor="cli")
    case_id = xw.start_case("B-SVC-02", "DONGAO", people["applicant"])
    step(xw, case_id, "apply", people, {"applicant_name": "王阿婆", "id_number": AUNT_ID})
    step(xw, case_id, "verify", people, {"eligible": True, "is_emergency": False, "fund_source": "collective",
                                         "cadre_kin": False})
    (w,) = conflicts(xw, case_id)
    assert w["rule"] == "WR-09" and w["facts"]["handled"] is False and w["facts"]["cadre"] == director
    assert w["summary"].startswith("申请人“王阿婆”是本村(社区)干部") and "父母(1级)" in w["summary"]


def test_a_contact_who_is_the_reviewing_cadres_spouse(xw, people) -> None:
    """C-AST-01 at 和平社区: the user's contact person is the spouse of the committee member who reviews
    the use (kinship declared by person); a stranger as contact raises nothing."""
    cadre = people["heping_committee"]
    with xw.db.write() as s:
        org = get_org(s, "HEPING")
        me = register.person_for_user(s, cadre, id_number=CADRE_ID, actor="cli")
        spouse = register.find_or_add(s, "赵美玲", org=org, id_number=OTHER_ID, actor="cli").person
        register.declare_relative(s, me, spouse, "spouse", actor="cli")
    ids = {}
    for contact, number in (("赵美玲", OTHER_ID), ("钱多多", AUNT_ID)):
        case_id = xw.start_case("C-AST-01", "HEPING", people["heping_applicant"])
        step(xw, case_id, "apply", people, {"contact_person": contact, "user_type": "unit", "user_org": "和平书画社",
                                            "use_type": "welfare", "term_months": 0},
             as_user=people["heping_applicant"])
        step(xw, case_id, "review", people, {"approved": True, "fee_standard": 0}, as_user=cadre)
        ids[contact] = case_id
    (w,) = conflicts(xw, ids["赵美玲"])
    # raised when the application named her (the cadre of the community had not handled it yet), once
    assert w["rule"] == "WR-08" and w["facts"]["role"] == "contact" and w["facts"]["cadre"] == cadre
    assert w["summary"] == "联系人“赵美玲”是本村(社区)干部heping_committee申报的配偶(1级)"
    assert conflicts(xw, ids["钱多多"]) == []
