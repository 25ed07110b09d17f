"""storage.db on PostgreSQL: prepared statements outlive read sessions."""

import pytest
from conftest import USING_PG
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
