"""Database connections and transactions (SQLite in WAL mode by default, PostgreSQL via URL)."""

from __future__ import annotations

import sqlite3
import time
from contextlib import contextmanager
from pathlib import Path
from typing import Iterator

from sqlalchemy import create_engine, event
from sqlalchemy.engine import Engine
from sqlalchemy.exc import DBAPIError, DisconnectionError
from sqlalchemy.orm import Session, sessionmaker

from engine import settings

MIGRATIONS = Path(__file__).resolve().parent / "migrations"


def default_url() -> str:
    """``DATABASE_URL`` or the embedded SQLite file in the working directory."""
    return settings.current().database_url


def normalize_url(url: str) -> str:
    """Use the psycopg 3 driver for plain ``postgresql://`` URLs."""
    if url.startswith("postgresql://") or url.startswith("postgres://"):
        return "postgresql+psycopg://" + url.split("://", 1)[1]
    return url


def dialect_insert(dialect_name: str):
    """The ``insert`` of the dialect (``"sqlite"`` or ``"postgresql"``): the one that has
    ``on_conflict_do_update`` / ``on_conflict_do_nothing`` (upserts), which both databases understand."""
    if dialect_name == "postgresql":
        from sqlalchemy.dialects.postgresql import insert
    else:
        from sqlalchemy.dialects.sqlite import insert
    return insert


def _sqlite_pragmas(dbapi_connection, _record) -> None:
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA synchronous=NORMAL")
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.execute("PRAGMA busy_timeout=10000")
    cursor.close()
    # Let SQLAlchemy's `begin` event issue BEGIN itself (pysqlite's own handling is lazy).
    dbapi_connection.isolation_level = None


WRITE_LOCK_WAIT = 10.0  # seconds a write transaction waits for SQLite's write lock (as busy_timeout did)


def _begin_immediate(raw) -> None:
    """``BEGIN IMMEDIATE``, waiting for the write lock in short steps. SQLite's own busy handler
    sleeps 1, 2, 5 … up to 100 ms between tries, so a writer queued behind a 5 ms transaction
    often slept 25–100 ms: several processes writing one file (workers, a parallel build) ran
    slower than one. Here the wait starts at 0.2 ms and doubles up to 5 ms; after
    ``WRITE_LOCK_WAIT`` seconds it fails as before ("database is locked")."""
    raw.execute("PRAGMA busy_timeout=0")
    try:
        deadline = time.monotonic() + WRITE_LOCK_WAIT
        pause = 0.0002
        while True:
            try:
                raw.execute("BEGIN IMMEDIATE")
                return
            except sqlite3.OperationalError as exc:
                if "locked" not in str(exc) and "busy" not in str(exc):
                    raise
                if time.monotonic() >= deadline:  # as SQLAlchemy reports it when busy_timeout runs out
                    raise DBAPIError.instance("BEGIN IMMEDIATE", None, exc, sqlite3.Error) from exc
            time.sleep(pause)
            pause = min(pause * 2, 0.005)
    finally:
        raw.execute("PRAGMA busy_timeout=10000")


def _track_rollbacks(engine: Engine) -> None:
    """Tell :mod:`storage.batch` when a connection rolled back (to a savepoint too): psycopg may then
    have deallocated the connection's prepared statements, the batch's among them."""
    from storage.batch import forget_prepared

    @event.listens_for(engine, "rollback")
    def _rolled_back(conn) -> None:
        forget_prepared(conn.connection.info, conn.connection.driver_connection)

    @event.listens_for(engine, "rollback_savepoint")
    def _rolled_back_to_savepoint(conn, _name, _context) -> None:
        forget_prepared(conn.connection.info, conn.connection.driver_connection)

    @event.listens_for(engine, "reset")
    def _reset(dbapi_connection, record, _reset_state) -> None:  # the pool rolls back what was left open
        forget_prepared(record.info, dbapi_connection)


PING_AFTER = 1.0  # seconds a pooled PostgreSQL connection may rest before it is pinged at checkout


def _ping_idle_connections(engine: Engine) -> None:
    """SQLAlchemy's pre-ping, but only for a connection that rested ``PING_AFTER`` seconds or more.

    The ping (a round trip) finds a connection the server or the network dropped while it lay in the
    pool, and the pool replaces it before the request sees an error. A connection given back a moment
    ago was alive then; pinging it again cost every change a round trip (~0.1 ms of a 5.5 ms
    completion). A server restarted within that moment fails the statements in flight either way."""

    @event.listens_for(engine, "checkin")
    def _rested_from(_dbapi_connection, record) -> None:
        record.info["checked_in"] = time.monotonic()

    @event.listens_for(engine, "checkout")
    def _ping(dbapi_connection, record, _proxy) -> None:
        since = record.info.get("checked_in")
        if since is not None and time.monotonic() - since < PING_AFTER:
            return
        try:
            alive = engine.dialect.do_ping(dbapi_connection)
        except engine.dialect.loaded_dbapi.Error as exc:
            if engine.dialect.is_disconnect(exc, dbapi_connection, None):
                raise DisconnectionError() from exc  # the pool replaces the connection and tries again
            raise
        if not alive:
            raise DisconnectionError()


class Database:
    """Engines and sessions for one database URL.

    Reads use ordinary transactions. Writes on SQLite start with ``BEGIN IMMEDIATE`` so that one
    writer at a time holds the lock from its first statement (no stale-snapshot upgrades); on
    PostgreSQL writes lock the case row with ``SELECT … FOR UPDATE``.
    """

    def __init__(self, url: str | None = None, *, echo: bool = False):
        self.url = normalize_url(url or default_url())
        self.is_sqlite = self.url.startswith("sqlite")
        self.is_postgres = self.url.startswith("postgresql")
        self.engine = self._make_engine(echo, immediate=False)
        self.write_engine = self._make_engine(echo, immediate=True) if self.is_sqlite else self.engine
        self._read = sessionmaker(self.engine, expire_on_commit=False)
        # Writes flush once, explicitly: no autoflush before every statement (one UPDATE of the case per change).
        self._write = sessionmaker(self.write_engine, expire_on_commit=False, autoflush=False)

    def _make_engine(self, echo: bool, *, immediate: bool) -> Engine:
        if not self.is_sqlite:
            engine = create_engine(self.url, echo=echo, pool_size=10, max_overflow=20)
            _ping_idle_connections(engine)
            _track_rollbacks(engine)
            return engine
        engine = create_engine(self.url, echo=echo, connect_args={"check_same_thread": False, "timeout": 10})
        event.listen(engine, "connect", _sqlite_pragmas)

        @event.listens_for(engine, "begin")
        def _begin(conn) -> None:
            if immediate:
                _begin_immediate(conn.connection.driver_connection)
            else:
                conn.exec_driver_sql("BEGIN")

        return engine

    @contextmanager
    def read(self) -> Iterator[Session]:
        """A session for reading; its transaction ends when the block does (nothing it holds is written).

        On PostgreSQL a read that succeeded ends with COMMIT, not ROLLBACK: for a transaction that
        wrote nothing both end it alike, but psycopg forgets every prepared statement of the
        connection at a ROLLBACK, so each read between two changes made the next change plan all
        of its statements again (about 0.7 ms of server time per completion). A session still
        holding unflushed ORM changes is rolled back, as before."""
        session = self._read()
        try:
            yield session
            if self.is_postgres and session.in_transaction() and not (session.new or session.dirty or session.deleted):
                session.commit()
        finally:
            session.close()

    @contextmanager
    def write(self) -> Iterator[Session]:
        """One transaction: committed if the block succeeds, rolled back if it raises."""
        session = self._write()
        try:
            yield session
            session.commit()
        except BaseException:
            session.rollback()
            raise
        finally:
            session.close()

    def upgrade(self) -> None:
        """Create or upgrade the schema to the newest Alembic revision."""
        from alembic import command
        from alembic.config import Config

        config = Config()
        config.set_main_option("script_location", str(MIGRATIONS))
        config.set_main_option("sqlalchemy.url", self.url.replace("%", "%%"))
        with self.engine.begin() as connection:
            config.attributes["connection"] = connection
            command.upgrade(config, "head")
        if self.is_postgres:  # DDL makes psycopg deallocate prepared statements: start from new connections
            self.engine.dispose()
        self.analyze()

    def analyze(self) -> None:
        """Refresh SQLite's query-planner statistics (PostgreSQL's autovacuum keeps its own).

        Without them SQLite takes any equality on an indexed column as selective: it walked every
        ``timer_fired`` event of the district for one village's board, and every ``step_completed``
        event for one actor's last night in a warning rule (27 ms instead of 0.1 ms at 2,600 cases,
        growing with the database). ``analysis_limit`` bounds the cost at any size. Connections
        read the statistics when they open, so the pools are renewed afterwards."""
        if not self.is_sqlite:
            return
        with self.write_engine.connect() as conn:
            conn.exec_driver_sql("PRAGMA analysis_limit=1000")
            conn.exec_driver_sql("ANALYZE")
            conn.commit()
        self.engine.dispose()
        if self.write_engine is not self.engine:
            self.write_engine.dispose()

    def dispose(self) -> None:
        self.engine.dispose()
        if self.write_engine is not self.engine:
            self.write_engine.dispose()
