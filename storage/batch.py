"""The writes of one change of a case, sent together.

A completion writes eight or so small statements (work items, case fields, audit events, the outbox
row, the submission, the case and its state). On PostgreSQL each statement run on its own is a network
round trip and a wake-up of the server process; :class:`WriteBatch` queues them and sends them in one
psycopg pipeline (https://www.psycopg.org/psycopg3/docs/advanced/pipeline.html): the same statements,
in the same order and the same transaction, answered together. On SQLite (in-process, no round trip)
each statement runs at once, handed to the driver directly.

Statements are SQLAlchemy Core statements compiled once per shape for the connection's dialect;
their parameters go through the column types' bind processors as SQLAlchemy would. Errors come out as
SQLAlchemy's exceptions (an ``IntegrityError`` stays one), when the batch is sent.
"""

from __future__ import annotations

import sqlite3
from typing import Any, Callable, Mapping, Sequence

from sqlalchemy.engine import Connection
from sqlalchemy.exc import DBAPIError

Params = Mapping[str, Any] | Sequence[Mapping[str, Any]]
_COMPILED: dict[tuple, tuple[str, dict[str, Callable], list[str]]] = {}
_COMPILED_READS: dict[tuple, Any] = {}


class WriteBatch:
    """Write statements of one transaction: run now (SQLite) or queued and sent by :meth:`send`."""

    def __init__(self, connection: Connection):
        self.connection = connection
        dialect = connection.dialect
        self.pipelined = dialect.name == "postgresql" and dialect.driver == "psycopg" and _pipeline_supported()
        # SQLite (pysqlite): the compiled statement straight to the driver, without SQLAlchemy's
        # per-execution work (it costs more than SQLite's own on these one-row statements)
        self.direct = dialect.name == "sqlite" and dialect.driver == "pysqlite"
        self._queued: list[tuple[str, Any, int | None, Exception | None]] = []
        self._reads: list[tuple[str, dict, list]] = []

    @property
    def dialect_name(self) -> str:
        return self.connection.dialect.name

    def execute(self, statement, params: Params, *, expect_rows: int | None = None,
                otherwise: Exception | None = None) -> None:
        """Run ``statement`` with ``params`` (one dict, or a list of dicts for many rows). With
        ``expect_rows``, ``otherwise`` is raised unless exactly that many rows were affected (an
        optimistic version check): at once on SQLite, when the batch is sent on PostgreSQL."""
        if not (self.pipelined or self.direct):
            result = self.connection.execute(statement, params)
            if expect_rows is not None and result.rowcount != expect_rows:
                raise otherwise or RuntimeError("unexpected row count")
            return
        rows = list(params) if isinstance(params, (list, tuple)) else [params]
        if not rows:
            return
        sql, processors, order = _compile(statement, self.connection.dialect, tuple(sorted(rows[0])))
        if processors:
            rows = [{k: processors[k](v) if k in processors else v for k, v in row.items()} for row in rows]
        if self.direct:
            self._run_now(sql, [tuple(row[name] for name in order) for row in rows], expect_rows, otherwise)
            return
        many = isinstance(params, (list, tuple)) and len(rows) > 1
        self._queued.append((sql, rows if many else rows[0], expect_rows, otherwise))

    def query(self, statement, params: Mapping[str, Any]) -> list:
        """Read rows after this batch's writes, in the same transaction: a list filled at once
        (SQLite), or when the batch is sent (PostgreSQL: the read goes in the same pipeline as the
        writes, no round trip of its own). Rows have the selected columns as attributes."""
        if not self.pipelined:
            return list(self.connection.execute(statement, params).all())
        sql, values = _read_statement(statement, self.connection.dialect, params)
        rows: list = []
        self._reads.append((sql, values, rows))
        return rows

    def _run_now(self, sql: str, rows: list[tuple], expect: int | None, otherwise: Exception | None) -> None:
        cursor = self.connection.connection.driver_connection.cursor()
        try:
            if len(rows) == 1:
                cursor.execute(sql, rows[0])
            else:
                cursor.executemany(sql, rows)
            count = cursor.rowcount
        except sqlite3.Error as exc:
            raise DBAPIError.instance(sql, rows, exc, sqlite3.Error) from exc
        finally:
            cursor.close()
        if expect is not None and count != expect:
            raise otherwise or RuntimeError("unexpected row count")

    def send(self) -> None:
        """Send what is queued (PostgreSQL) in one pipeline and check the expected row counts."""
        if not self._queued and not self._reads:
            return
        queued, self._queued = self._queued, []
        reads, self._reads = self._reads, []
        from psycopg.rows import namedtuple_row

        raw = self.connection.connection.driver_connection
        cursors = []
        read_cursors = []
        try:
            with raw.pipeline():
                for sql, params, expect, otherwise in queued:
                    cursor = raw.cursor()
                    if isinstance(params, list):
                        cursor.executemany(sql, params)
                    else:
                        cursor.execute(sql, params)
                    cursors.append((cursor, expect, otherwise))
                for sql, params, rows in reads:
                    cursor = raw.cursor(row_factory=namedtuple_row)
                    cursor.execute(sql, params)
                    read_cursors.append((cursor, rows))
        except Exception as exc:  # the pipeline reports the first failing statement when it is synced
            import psycopg

            if isinstance(exc, psycopg.Error):  # which statement failed is in the message, not known here
                statements = ";\n".join(sql for sql, *_ in queued)
                raise DBAPIError.instance(statements, None, exc, psycopg.Error) from exc
            raise
        for cursor, expect, otherwise in cursors:
            if expect is not None and cursor.rowcount != expect:
                raise otherwise or RuntimeError("unexpected row count")
            cursor.close()
        for cursor, rows in read_cursors:
            rows.extend(cursor.fetchall())
            cursor.close()


def _read_statement(statement, dialect, params: Mapping[str, Any]) -> tuple[str, dict]:
    """(SQL text, parameter values by name) of a select for the dialect, compiled once per statement;
    the statement's own literal values included, bind processors applied."""
    key = (statement, dialect.name)
    found = _COMPILED_READS.get(key)
    if found is None:
        compiled = statement.compile(dialect=dialect)
        processors = {}
        for name, bind in compiled.binds.items():
            processor = bind.type.dialect_impl(dialect).bind_processor(dialect)
            if processor is not None:
                processors[name] = processor
        found = _COMPILED_READS[key] = (compiled, str(compiled), processors, list(compiled.positiontup or []))
    compiled, sql, processors, _order = found
    values = compiled.construct_params(params)
    for name, processor in processors.items():
        if values.get(name) is not None:
            values[name] = processor(values[name])
    return sql, values


def _pipeline_supported() -> bool:
    import psycopg

    return psycopg.Pipeline.is_supported()


def _compile(statement, dialect, keys: tuple[str, ...]) -> tuple[str, dict[str, Callable], list[str]]:
    """(SQL text in the driver's parameter style, bind processors by name, parameter names in order
    for positional styles) for a statement's shape."""
    cache_key = (statement, dialect.name, keys)  # the statement itself: kept alive, never confused
    found = _COMPILED.get(cache_key)
    if found is None:
        # for_executemany: no RETURNING of generated keys (nothing here reads them back)
        compiled = statement.compile(dialect=dialect, column_keys=list(keys), for_executemany=True)
        processors = {}
        for name, bind in compiled.binds.items():
            processor = bind.type.dialect_impl(dialect).bind_processor(dialect)
            if processor is not None:
                processors[name] = processor
        found = _COMPILED[cache_key] = (str(compiled), processors, list(compiled.positiontup or []))
    return found
