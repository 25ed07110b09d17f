"""The Alembic migrations create exactly the schema the models describe."""

from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext

from storage import Database
from storage.models import Base


def test_migrations_match_models(db_url):
    db = Database(db_url)
    db.upgrade()
    db.upgrade()  # idempotent
    with db.engine.connect() as conn:
        diff = compare_metadata(MigrationContext.configure(conn), Base.metadata)
    db.dispose()
    assert diff == []


def test_tick_keeps_sqlite_planner_statistics_fresh_hourly(xw, people, frozen):
    """SQLite plans with sqlite_stat1 once tick has analyzed: the board's and the warning rules'
    queries then take the selective index (see Database.analyze). At most once an hour."""
    import pytest
    from sqlalchemy import text

    if not xw.db.is_sqlite:
        pytest.skip("PostgreSQL's autovacuum keeps its own statistics")

    def stat_rows(table: str) -> int:
        with xw.db.read() as s:
            return s.execute(text("SELECT count(*) FROM sqlite_stat1 WHERE tbl = :t"), {"t": table}).scalar()

    def clear() -> None:
        with xw.db.write() as s:
            s.execute(text("DELETE FROM sqlite_stat1"))

    xw.start_case("B-FIN-01", "DONGAO", people["handler"], {"title": "电费"})
    clear()
    xw.tick()
    assert stat_rows("audit_event") > 0
    clear()
    frozen.advance(minutes=30)
    xw.tick()
    assert stat_rows("audit_event") == 0  # not again within the hour
    frozen.advance(minutes=31)
    xw.tick()
    assert stat_rows("audit_event") > 0
