"""People, not accounts: the person register (ID numbers encrypted and keyed-hashed), persons named by
forms resolved to it, kinship by person with degree, and the queries the conflict rules ask."""

from __future__ import annotations

import pytest
from sqlalchemy import select, text

from conftest import ready_steps
from engine import settings
from engine.core import people as register
from engine.core.directory import get_org
from engine.core.errors import InvalidData
from engine.core.forms import valid_id_number
from storage.models import Person, PersonRelation, User


def _id(body: str) -> str:
    for check in "0123456789X":
        if valid_id_number(body + check):
            return body + check
    raise AssertionError(body)


CADRE_ID = _id("33020319800101123")
OTHER_ID = _id("33020319851212456")


def test_id_numbers_are_kept_encrypted_and_find_the_same_person(xw) -> None:
    with xw.db.write() as s:
        org = get_org(s, "DONGAO")
        first = register.find_or_add(s, "王 小明", org=org, id_number=CADRE_ID, phone="13800138000")
        again = register.find_or_add(s, "王晓明", org=org, id_number=CADRE_ID.lower())  # a different spelling
        assert first.matched == "new" and again.matched == "id" and again.person.id == first.person.id
        person_id = first.person.id
    with xw.db.read() as s:
        raw = s.execute(text("SELECT * FROM person WHERE id = :id"), {"id": person_id}).mappings().one()
        assert CADRE_ID not in " ".join(str(v) for v in raw.values())
        assert "13800138000" not in " ".join(str(v) for v in raw.values())
        assert raw["id_tail"] == CADRE_ID[-4:]
        assert register.reveal_id_number(s, s.get(Person, person_id)) == CADRE_ID


def test_the_key_comes_from_the_environment(xw, monkeypatch) -> None:
    with xw.db.write() as s:
        stored = register.keyed_hash(s, "id", CADRE_ID)
        monkeypatch.setenv(register.KEY_ENV, "a long configured key for this district 2026")
        settings.reload()
        try:
            configured = register.keyed_hash(s, "id", CADRE_ID)
        finally:
            monkeypatch.delenv(register.KEY_ENV)
            settings.reload()
    assert stored != configured and len(configured) == 64


def test_names_alone_match_only_one_person_of_that_name(xw) -> None:
    with xw.db.write() as s:
        org = get_org(s, "DONGAO")
        one = register.find_or_add(s, "李四海", org=org)
        assert register.find_or_add(s, "李四海", org=org).person.id == one.person.id  # matched by name
        # a second 李四海 with his own ID number is a different person; from then on a bare name is ambiguous
        other = register.find_or_add(s, "李四海", org=org, id_number=OTHER_ID)
        assert other.matched == "name"  # the only 李四海 had no number yet: it is him
        third = register.find_or_add(s, "李四海", org=org, id_number=CADRE_ID)
        assert third.matched == "new" and third.person.id != one.person.id
        assert register.find_or_add(s, "李四海", org=org).matched == "new"
        with pytest.raises(InvalidData):
            register.find_or_add(s, "赵六", org=org, id_number="330203198001011234")


def _cadre_with_person(xw, username: str) -> int:
    with xw.db.write() as s:
        return register.person_for_user(s, username, id_number=CADRE_ID).id


@pytest.fixture
def cadre(xw, people):
    username = people["committee"]
    with xw.db.write() as s:
        user = s.scalar(select(User).where(User.username == username))
        user.display_name = "陈立新"
    person_id = _cadre_with_person(xw, username)
    return username, person_id


def _apply_as_proxy(xw, cadre_username: str, name: str, id_number: str, beneficiary: str) -> int:
    from conftest import case_context
    from engine.services.scenarios import plan_step_data

    case_id = xw.start_case("B-SVC-01", "DONGAO", cadre_username)
    d, params, data = case_context(xw, case_id)
    payload = plan_step_data(d, "apply", params, data,
                             overrides={"applicant_name": name, "id_number": id_number})
    xw.complete(case_id, "apply", cadre_username, payload, on_behalf_of=beneficiary, proxy_reason="申请人行动不便")
    return case_id


def test_proxy_self_application(xw, people, cadre) -> None:
    username, person_id = cadre
    case_id = _apply_as_proxy(xw, username, "陈立新", CADRE_ID, "陈立新")
    with xw.db.read() as s:
        applicant = register.case_persons(s, case_id, roles=["applicant"])
        assert len(applicant) == 1 and applicant[0].person_id == person_id and applicant[0].matched == "id"
        beneficiary = register.case_persons(s, case_id, roles=["beneficiary"])
        assert beneficiary[0].person_id == person_id
        assert register.is_self(s, username, applicant[0].person_id)
        found = register.conflict_of(s, username, applicant[0].person_id)
        assert found.kind == "self" and found.zh("陈立新", "陈立新") == "陈立新本人就是“陈立新”"
    assert ready_steps(xw, case_id)  # the case goes on: the rule decides what to raise


def test_a_different_applicant_with_the_same_name_is_not_the_cadre(xw, people, cadre) -> None:
    username, person_id = cadre
    case_id = _apply_as_proxy(xw, username, "陈立新", OTHER_ID, "陈立新")
    with xw.db.read() as s:
        (applicant,) = register.case_persons(s, case_id, roles=["applicant"])
        assert applicant.person_id != person_id
        assert register.conflict_of(s, username, applicant.person_id) is None


def test_relatives_by_person_with_degree_and_household(xw, people, cadre) -> None:
    username, person_id = cadre
    with xw.db.write() as s:
        org = get_org(s, "DONGAO")
        me = s.get(Person, person_id)
        spouse = register.find_or_add(s, "林秀英", org=org).person
        cousin = register.find_or_add(s, "陈立国", org=org).person
        lodger = register.find_or_add(s, "周大山", org=org).person
        stranger = register.find_or_add(s, "吴一凡", org=org).person
        register.declare_relative(s, me, spouse, "spouse", actor=username)
        register.declare_relative(s, cousin, me, "cousin", actor=username)  # declared from the other side
        home = register.add_household(s, org, "陈立新户", actor=username)
        register.set_household(s, me, home, actor=username)
        register.set_household(s, lodger, home, actor=username)
        ids = spouse.id, cousin.id, lodger.id, stranger.id
    with xw.db.read() as s:
        spouse_id, cousin_id, lodger_id, stranger_id = ids
        assert register.declared_relation(s, username, spouse_id, 1).relation == "spouse"
        assert register.declared_relation(s, username, cousin_id, 2) is None  # a near miss: degree 3
        assert register.declared_relation(s, username, cousin_id, 3).degree == 3
        assert register.conflict_of(s, username, cousin_id, max_degree=2) is None
        assert register.conflict_of(s, username, spouse_id).kind == "relative"
        assert register.same_household(s, username, lodger_id) and register.conflict_of(s, username, lodger_id).kind == \
            "household"
        assert register.conflict_of(s, username, stranger_id) is None
        assert not register.is_self(s, username, spouse_id)
        # an account without a person has no conflicts to find (the rules fall back to declarations)
        assert register.conflict_of(s, _unlinked_user(s), spouse_id) is None


def _unlinked_user(s) -> str:
    return s.scalar(select(User.username).where(User.person_id.is_(None)).limit(1))


def test_payee_and_contact_fields_resolve_with_their_roles(xw) -> None:
    from engine.core.definitions import read_definition
    from engine.core.xmlsafe import parse_xml
    from pathlib import Path

    xml = (Path(__file__).resolve().parent.parent / "processes" / "V-HR-01.bpmn").read_bytes()
    d = read_definition(parse_xml(xml), xml)
    step = d.steps["exam"]
    assert register.person_fields(step.fields) == [("candidate_name", "candidate_id", "candidate_phone")]
    assert register._role_of("contact_person") == "contact" and register._role_of("payee") == "payee"


def test_migration_copies_the_name_based_kinship_register(db_url) -> None:
    """Kinship by name (0007) becomes kinship by person (0010): the cadre's account gets a person."""
    from alembic import command
    from alembic.config import Config

    from engine.core import audit
    from storage import Database
    from storage.db import MIGRATIONS

    db = Database(db_url)
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS))
    config.set_main_option("sqlalchemy.url", db.url.replace("%", "%%"))
    with db.engine.begin() as connection:
        config.attributes["connection"] = connection
        command.upgrade(config, "0007")
    now = audit.db_time()
    with db.engine.begin() as conn:
        conn.execute(text("INSERT INTO organization (id, code, name, kind, parent_id, created_at) "
                          "VALUES (1, 'DONGAO', '东岙村', 'village', NULL, :now)"), {"now": now})
        conn.execute(text("INSERT INTO user_account (id, username, display_name, password_hash, active, failed_logins, "
                          "created_at) VALUES (1, 'dongao.director', '王建国', 'x', :t, 0, :now)"),
                     {"now": now, "t": True})
        for i, (name, relation, degree) in enumerate([("李秀梅", "spouse", 1), ("王建军", "sibling", 2),
                                                      ("王建国", "self", 0)], start=1):
            conn.execute(text("INSERT INTO kinship (id, org_id, cadre, cadre_name, person_name, relation, degree, note, "
                              "declared_by, created_at) VALUES (:id, 1, 'dongao.director', '王建国', :name, :rel, "
                              ":deg, '', 'cli', :now)"),
                         {"id": i, "name": name, "rel": relation, "deg": degree, "now": now})
    db.upgrade()
    with db.read() as s:
        cadre = s.scalar(select(User).where(User.username == "dongao.director")).person_id
        rows = s.scalars(select(PersonRelation).order_by(PersonRelation.id)).all()
        names = {p.id: p.name for p in s.scalars(select(Person))}
        assert cadre is not None and names[cadre] == "王建国"
        assert [(r.person_id, names[r.relative_id], r.relation, r.degree) for r in rows] == [
            (cadre, "李秀梅", "spouse", 1), (cadre, "王建军", "sibling", 2), (cadre, "王建国", "self", 0)]
        assert register.declared_relation(s, "dongao.director", rows[0].relative_id, 1) is not None
    db.dispose()


def test_two_accounts_of_one_person(xw, people) -> None:
    keeper, approver = people["seal_keeper"], people["director"]
    with xw.db.write() as s:
        person = register.person_for_user(s, keeper, id_number=OTHER_ID)
        assert not register.same_person(s, keeper, approver)
        register.link_user(s, approver, person, actor="cli")  # the director also keeps the seal
        assert register.same_person(s, keeper, approver)
        assert register.is_self(s, approver, person.id)
