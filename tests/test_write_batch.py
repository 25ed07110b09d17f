"""storage.batch.WriteBatch: a change's writes sent together (one pipeline on PostgreSQL, straight to the
driver on SQLite) write what SQLAlchemy would, check row counts, and fail as SQLAlchemy fails. On
PostgreSQL a batch in a transaction that has run a statement goes as one libpq pipeline of prepared
statements, one that opens its transaction through psycopg's pipeline: ``begun`` runs both."""

from datetime import datetime
from decimal import Decimal

import pytest
from sqlalchemy import bindparam, insert, literal, select, text, update
from sqlalchemy.exc import IntegrityError

from engine.core import directory
from storage.batch import WriteBatch
from storage.models import Case, CaseField, Organization

AT = datetime(2026, 12, 1, 9, 30, 15, 123456)


def _case(xw, people) -> int:
    return xw.start_case("V-DEC-01", "DONGAO", people["party_branch"])


def _batch(s, begun: bool) -> WriteBatch:
    if begun:  # a statement before the batch: its transaction is open when the batch is sent
        s.execute(select(literal(1)))
    return WriteBatch(s.connection())


BEGUN = pytest.mark.parametrize("begun", [False, True], ids=["opening", "begun"])


def _money_field(case_id: int, name: str, amount: str) -> dict:
    return {"case_id": case_id, "name": name, "type": "money", "step_id": "collect", "text_value": amount,
            "number_value": Decimal(amount), "updated_at": AT}


@BEGUN
def test_rows_read_back_as_written_with_types(xw, people, begun):
    case_id = _case(xw, people)
    with xw.db.write() as s:
        batch = _batch(s, begun)
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


@BEGUN
def test_expected_row_count_raises_and_nothing_is_kept(xw, people, begun):
    case_id = _case(xw, people)
    stmt = update(Case).where(Case.id == bindparam("b_id"), Case.version == bindparam("b_version")).values(
        title=bindparam("b_title"))

    class Stale(Exception):
        pass

    with pytest.raises(Stale):
        with xw.db.write() as s:
            batch = _batch(s, begun)
            batch.execute(stmt, {"b_id": case_id, "b_version": 999, "b_title": "不该写入"}, expect_rows=1,
                          otherwise=Stale())
            batch.send()
    with xw.db.read() as s:
        assert s.get(Case, case_id).title != "不该写入"


@BEGUN
def test_a_duplicate_is_an_integrity_error_and_rolls_back(xw, begun):
    with xw.db.write() as s:
        directory.add_org(s, "PROBE", "探针镇", "township", "SFQ")
    with pytest.raises(IntegrityError):
        with xw.db.write() as s:
            batch = _batch(s, begun)
            row = {"code": "PROBE2", "name": "探针二村", "kind": "township", "parent_id": None, "created_at": AT}
            batch.execute(insert(Organization), row)
            batch.execute(insert(Organization), {**row, "code": "PROBE"})  # the code exists
            batch.send()
    with xw.db.read() as s:
        assert s.scalar(select(Organization.id).where(Organization.code == "PROBE2")) is None


@BEGUN
def test_a_read_after_the_writes_sees_them_with_their_types(xw, people, begun):
    case_id = _case(xw, people)
    with xw.db.write() as s:
        batch = _batch(s, begun)
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


def test_a_batch_after_a_rollback_on_its_connection_still_finds_its_statements(xw, people):
    """psycopg deallocates every prepared statement of a connection at a ROLLBACK (to a savepoint
    too) once it prepared one itself: the batch's statements prepared before are gone then."""
    if not xw.db.is_postgres:
        pytest.skip("PostgreSQL's prepared statements")
    case_id = _case(xw, people)
    probe = text("SELECT count(*) FROM pg_class WHERE relname = :name")

    def write_batch(name: str) -> None:
        with xw.db.write() as s:
            for _ in range(7):  # psycopg prepares the probe from its sixth run
                s.execute(probe, {"name": "pg_class"})
            batch = WriteBatch(s.connection())
            batch.execute(insert(CaseField), [_money_field(case_id, name, "1.00")])
            batch.send()

    write_batch("probe_1")
    with pytest.raises(RuntimeError), xw.db.write() as s:
        s.execute(probe, {"name": "pg_type"})
        raise RuntimeError("rolled back")
    write_batch("probe_2")
    with xw.db.write() as s:
        s.execute(probe, {"name": "pg_type"})
        savepoint = s.begin_nested()
        s.execute(probe, {"name": "pg_proc"})
        savepoint.rollback()
    write_batch("probe_3")
    with xw.db.read() as s:
        names = set(s.scalars(select(CaseField.name).where(CaseField.case_id == case_id,
                                                              CaseField.name.like("probe_%"))))
    assert names == {"probe_1", "probe_2", "probe_3"}
