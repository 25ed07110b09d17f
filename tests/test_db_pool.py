"""Storage on PostgreSQL: prepared statements outlive read sessions; a case's state stays in its row."""

import pytest
from conftest import USING_PG, do_step
from sqlalchemy import text

from storage import Database

pytestmark = pytest.mark.skipif(not USING_PG, reason="PostgreSQL's connections and prepared statements")

# psycopg prepares a statement on the connection from its sixth run on (prepare_threshold 5)
PROBE = text("SELECT count(*) FROM pg_class WHERE relname = :name")


def _prepared(db: Database) -> int:
    with db.write() as s:
        return s.execute(text("SELECT count(*) FROM pg_prepared_statements")).scalar_one()


def test_a_read_session_keeps_the_prepared_statements(db_url):
    db = Database(db_url)
    try:
        with db.write() as s:
            for _ in range(8):
                s.execute(PROBE, {"name": "pg_class"})
        assert _prepared(db) >= 1
        with db.read() as s:  # ended with ROLLBACK, psycopg would deallocate them all
            s.execute(PROBE, {"name": "pg_type"})
        assert _prepared(db) >= 1
    finally:
        db.dispose()


def test_a_failed_read_still_rolls_back(db_url):
    db = Database(db_url)
    try:
        with pytest.raises(Exception), db.read() as s:
            s.execute(text("SELECT 1 / 0"))
        with db.read() as s:  # the connection came back usable
            assert s.execute(text("SELECT 1")).scalar_one() == 1
    finally:
        db.dispose()


def test_a_case_state_is_kept_in_its_row_not_in_the_toast_table(xw, people, frozen):
    """A state of several kilobytes compresses to more than PostgreSQL's default TOAST target (2 KB):
    without case_state's toast_tuple_target (migration 0018) it would be moved out in chunks."""
    case_id = xw.start_case("V-DEC-01", "DONGAO", people["party_branch"])
    for step in ("collect", "propose", "consult"):
        do_step(xw, case_id, step, people)
    vote = {"meeting_date": "2026-03-02", "members_total": 30, "present": 10, "in_favour": 8, "against": 1,
            "abstain": 1}
    for _ in range(8):  # no quorum: the meeting is reconvened, and the state grows
        xw.complete(case_id, "party_review", people["party_members_meeting"], vote)
    with xw.db.write() as s:
        size = s.execute(text("SELECT pg_column_size(state) FROM case_state WHERE case_id = :c"),
                         {"c": case_id}).scalar_one()
        toast = s.execute(text("SELECT reltoastrelid::regclass::text FROM pg_class "
                               "WHERE oid = 'case_state'::regclass")).scalar_one()
        chunks = s.execute(text(f"SELECT count(*) FROM {toast}")).scalar_one()
    assert size > 2100  # compressed, still above the default target
    assert chunks == 0


def test_a_rested_connection_the_server_dropped_is_replaced_before_use(db_url, monkeypatch):
    """A connection that lay in the pool for ``PING_AFTER`` seconds is pinged at checkout; one the
    server dropped meanwhile is replaced, and the request never sees the error."""
    from storage import db as storage_db

    db = Database(db_url)
    try:
        with db.read() as s:
            victim = s.execute(text("SELECT pg_backend_pid()")).scalar_one()
        admin = Database(db_url)
        with admin.write() as s:
            s.execute(text("SELECT pg_terminate_backend(:pid)"), {"pid": victim})
        admin.dispose()
        monkeypatch.setattr(storage_db, "PING_AFTER", 0.0)  # as if it had rested
        with db.read() as s:
            assert s.execute(text("SELECT pg_backend_pid()")).scalar_one() != victim
    finally:
        db.dispose()


def test_a_connection_given_back_a_moment_ago_is_not_pinged_again(db_url, monkeypatch):
    db = Database(db_url)
    pings = []
    real = db.engine.dialect.do_ping
    monkeypatch.setattr(db.engine.dialect, "do_ping", lambda conn: pings.append(conn) or real(conn))
    try:
        with db.read() as s:  # a new connection: never checked in, pinged
            s.execute(text("SELECT 1"))
        first = len(pings)
        for _ in range(5):  # checked out again at once: no round trip for a ping
            with db.read() as s:
                s.execute(text("SELECT 1"))
        assert len(pings) == first
    finally:
        db.dispose()
