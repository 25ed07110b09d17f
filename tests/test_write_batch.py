"""storage.batch.WriteBatch: a change's writes sent together (one pipeline on PostgreSQL, straight to the
driver on SQLite) write what SQLAlchemy would, check row counts, and fail as SQLAlchemy fails."""

from datetime import datetime
from decimal import Decimal

import pytest
from sqlalchemy import bindparam, insert, select, update
from sqlalchemy.exc import IntegrityError

from engine.core import directory
from storage.batch import WriteBatch
from storage.models import Case, CaseField, Organization

AT = datetime(2026, 12, 1, 9, 30, 15, 123456)


def _case(xw, people) -> int:
    return xw.start_case("V-DEC-01", "DONGAO", people["party_branch"])


def _money_field(case_id: int, name: str, amount: str) -> dict:
    return {"case_id": case_id, "name": name, "type": "money", "step_id": "collect", "text_value": amount,
            "number_value": Decimal(amount), "updated_at": AT}


def test_rows_read_back_as_written_with_types(xw, people):
    case_id = _case(xw, people)
    with xw.db.write() as s:
        batch = WriteBatch(s.connection())
        batch.execute(insert(CaseField), [
            _money_field(case_id, "probe_a", "12.50"),
            {"case_id": case_id, "name": "probe_b", "type": "text", "step_id": "collect", "text_value": "张三",
             "number_value": None, "updated_at": AT}])
        batch.send()
    with xw.db.read() as s:
        rows = {r.name: r for r in s.scalars(select(CaseField).where(CaseField.case_id == case_id,
                                                                     CaseField.name.like("probe_%")))}
    assert rows["probe_a"].number_value == Decimal("12.50") and rows["probe_a"].updated_at == AT
    assert rows["probe_b"].text_value == "张三" and rows["probe_b"].number_value is None


def test_expected_row_count_raises_and_nothing_is_kept(xw, people):
    case_id = _case(xw, people)
    stmt = update(Case).where(Case.id == bindparam("b_id"), Case.version == bindparam("b_version")).values(
        title=bindparam("b_title"))

    class Stale(Exception):
        pass

    with pytest.raises(Stale):
        with xw.db.write() as s:
            batch = WriteBatch(s.connection())
            batch.execute(stmt, {"b_id": case_id, "b_version": 999, "b_title": "不该写入"}, expect_rows=1,
                          otherwise=Stale())
            batch.send()
    with xw.db.read() as s:
        assert s.get(Case, case_id).title != "不该写入"


def test_a_duplicate_is_an_integrity_error_and_rolls_back(xw):
    with xw.db.write() as s:
        directory.add_org(s, "PROBE", "探针镇", "township", "SFQ")
    with pytest.raises(IntegrityError):
        with xw.db.write() as s:
            batch = WriteBatch(s.connection())
            row = {"code": "PROBE2", "name": "探针二村", "kind": "township", "parent_id": None, "created_at": AT}
            batch.execute(insert(Organization), row)
            batch.execute(insert(Organization), {**row, "code": "PROBE"})  # the code exists
            batch.send()
    with xw.db.read() as s:
        assert s.scalar(select(Organization.id).where(Organization.code == "PROBE2")) is None


def test_a_read_after_the_writes_sees_them_with_their_types(xw, people):
    case_id = _case(xw, people)
    with xw.db.write() as s:
        batch = WriteBatch(s.connection())
        batch.execute(insert(CaseField), [_money_field(case_id, "probe_r", "7.25")])
        rows = batch.query(select(CaseField.name, CaseField.number_value, CaseField.updated_at).where(
            CaseField.case_id == bindparam("case_id"), CaseField.name.like("probe_%")), {"case_id": case_id})
        batch.send()
        assert [(r.name, r.number_value, r.updated_at) for r in rows] == [("probe_r", Decimal("7.25"), AT)]


def test_a_completion_answers_with_the_open_steps_as_stored(xw, people):
    case_id = _case(xw, people)
    answer = xw.complete(case_id, "collect", people["party_branch"], {
        "matter_title": "村道硬化", "matter_type": "project", "source": "villagers", "amount": "80000",
        "opinions_summary": "同意"})
    with xw.db.read() as s:
        from engine.services.facade import _tasks

        stored = _tasks(s, case_id)
    assert answer["tasks"] and answer["tasks"] == stored
