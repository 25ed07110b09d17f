"""The writes of one change of a case, sent together.

A completion writes eight or so small statements (work items, case fields, audit events, the outbox
row, the submission, the case and its state). On PostgreSQL each statement run on its own is a network
round trip and a wake-up of the server process; :class:`WriteBatch` queues them and sends them in one
pipeline (https://www.postgresql.org/docs/current/libpq-pipeline-mode.html): the same statements, in
the same order and the same transaction, answered together. In a transaction that has run a statement
(a change: the case was locked first) the pipeline is written through psycopg's libpq connection at
once, each statement prepared once per connection; otherwise psycopg's own pipeline opens the
transaction (it writes each statement to the socket as it is queued, waking the server for each).
On SQLite (in-process, no round trip) each statement runs at once, handed to the driver directly.

Statements are SQLAlchemy Core statements compiled once per shape for the connection's dialect;
their parameters go through the column types' bind processors as SQLAlchemy would. Errors come out as
SQLAlchemy's exceptions (an ``IntegrityError`` stays one), when the batch is sent.
"""

from __future__ import annotations

import collections
import functools
import re
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
        fairy = self.connection.connection
        raw = fairy.driver_connection
        from psycopg import pq

        if raw.pgconn.transaction_status == pq.TransactionStatus.INTRANS and not raw.autocommit:
            _send_libpq(fairy, queued, reads)
        else:  # no statement of the transaction sent yet: psycopg's pipeline begins it
            _send_psycopg(raw, queued, reads)


def _send_psycopg(raw, queued: list, reads: list) -> None:
    """The batch through psycopg's pipeline (which flushes every statement to the server on its own)."""
    from psycopg.rows import namedtuple_row

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

        if isinstance(exc, psycopg.Error):
            raise _batch_error(queued, exc) from exc
        raise
    for cursor, expect, otherwise in cursors:
        if expect is not None and cursor.rowcount != expect:
            raise otherwise or RuntimeError("unexpected row count")
        cursor.close()
    for cursor, rows in read_cursors:
        rows.extend(cursor.fetchall())
        cursor.close()


PREPARED_KEY = "xiaowei_batch_prepared"  # in the pooled connection's info: this module's prepared statements


def forget_prepared(info: dict, dbapi_connection) -> None:
    """Before a rollback: psycopg may deallocate every prepared statement of the connection (it does
    at a ROLLBACK when it had prepared some itself), so the next batch asks the server which of this
    module's statements are left. A connection outside any transaction rolls nothing back."""
    cache = info.get(PREPARED_KEY)
    if cache is None or cache["check"]:
        return
    from psycopg import pq

    if dbapi_connection.pgconn.transaction_status != pq.TransactionStatus.IDLE:
        cache["check"] = True


def _send_libpq(fairy, queued: list, reads: list) -> None:
    """The batch as one libpq pipeline written to the socket at once: psycopg's own pipeline flushes
    each statement as it is queued, so the server woke up and answered once per statement (about
    three times its work for these one-row statements). Each statement shape is prepared once per
    connection (named ``xw_b<n>``, never reused), as psycopg would from its sixth run."""
    import psycopg
    from psycopg import pq
    from psycopg.adapt import Transformer

    raw = fairy.driver_connection
    pg = raw.pgconn
    cache = fairy.info.get(PREPARED_KEY)
    if cache is None:
        cache = fairy.info[PREPARED_KEY] = {"names": {}, "next": 0, "check": False}
    names: dict = cache["names"]
    if cache["check"]:  # a rollback happened on this connection: which of ours are still there
        kept = {row[0] for row in raw.execute("SELECT name FROM pg_prepared_statements WHERE name LIKE 'xw\\_b%'")}
        for key in [k for k, name in names.items() if name.decode() not in kept]:
            del names[key]
        cache["check"] = False
    tx = Transformer.from_context(raw)
    commands: list[tuple[str, int]] = []  # what each awaited result answers: (kind, index in queued or reads)
    new_names: list[tuple] = []
    pg.enter_pipeline_mode()
    try:
        for index, (sql, params, _expect, _otherwise) in enumerate(queued):
            for row in (params if isinstance(params, list) else [params]):
                _queue(pg, tx, names, cache, new_names, commands, sql, row)
                commands.append(("write", index))
        for index, (sql, params, _rows_) in enumerate(reads):
            _queue(pg, tx, names, cache, new_names, commands, sql, params)
            commands.append(("read", index))
        pg.pipeline_sync()
        results = _results(pg)
    except BaseException as exc:
        for key in new_names:  # their Parse may not have run: never trusted again (names are not reused)
            names.pop(key, None)
        fairy.invalidate()  # the protocol state is unknown: the connection is not used again
        if isinstance(exc, psycopg.Error):
            raise _batch_error(queued, exc) from exc
        raise
    finally:
        try:
            if pg.pipeline_status != pq.PipelineStatus.OFF:
                pg.exit_pipeline_mode()
        except Exception:  # noqa: BLE001 - a connection invalidated above: it is not used again
            pass
    encoding = raw.info.encoding
    failed = next((r for r in results if r.status == pq.ExecStatus.FATAL_ERROR), None)
    if failed is not None:  # the transaction is aborted: the Parses after the failure did not run
        cache["check"] = True
        exc = psycopg.errors.error_from_result(failed, encoding=encoding)
        raise _batch_error(queued, exc) from exc
    counts = [0] * len(queued)  # rows affected by each queued statement (all its rows of parameters)
    for (kind, index), result in zip(commands, results):
        if kind == "write":
            counts[index] += result.command_tuples or 0
        elif kind == "read":
            reads[index][2].extend(_rows(tx, result))
    for (_sql, _params, expect, otherwise), count in zip(queued, counts):
        if expect is not None and count != expect:
            raise otherwise or RuntimeError("unexpected row count")


def _queue(pg, tx, names: dict, cache: dict, new_names: list, commands: list, sql: str, params) -> None:
    """Queue one statement in the libpq pipeline (its Parse first, the first time on this connection)."""
    from psycopg.adapt import PyFormat

    text, order = _positional(sql)
    values = [params[name] for name in order]
    dumped = tx.dump_sequence(values, [PyFormat.AUTO] * len(values))
    types = tuple(tx.types)
    formats = list(tx.formats)
    key = (text, types)
    name = names.get(key)
    if name is None:
        name = f"xw_b{cache['next']}".encode()
        cache["next"] += 1
        pg.send_prepare(name, text, param_types=types)
        commands.append(("prepare", -1))
        names[key] = name
        new_names.append(key)
    pg.send_query_prepared(name, dumped, param_formats=formats)


def _results(pg) -> list:
    """Every result of the pipeline up to its sync, one per queued command (flushed and read
    without blocking the connection: psycopg keeps it in non-blocking mode)."""
    import select

    from psycopg import pq

    while pg.flush():
        select.select([pg.socket], [pg.socket], [])
        pg.consume_input()
    results = []
    while True:
        if pg.is_busy():
            select.select([pg.socket], [], [])
            pg.consume_input()
            continue
        result = pg.get_result()
        if result is None:
            continue
        if result.status == pq.ExecStatus.PIPELINE_SYNC:
            return results
        results.append(result)


def _rows(tx, result) -> list:
    tx.set_pgresult(result)
    fields = [result.fname(i).decode() for i in range(result.nfields)]
    row_type = _row_type(tuple(fields))
    return tx.load_rows(0, result.ntuples, row_type._make)


@functools.cache
def _row_type(fields: tuple[str, ...]):
    return collections.namedtuple("Row", fields)


@functools.cache
def _positional(sql: str) -> tuple[bytes, list[str]]:
    """SQL in psycopg's ``%(name)s`` style as libpq's ``$n`` (``%%`` is ``%``), and the names in order."""
    order: list[str] = []

    def number(match) -> str:
        if match.group(0) == "%%":
            return "%"
        name = match.group(1)
        if name not in order:
            order.append(name)
        return f"${order.index(name) + 1}"

    return re.sub(r"%\(([^)]+)\)s|%%", number, sql).encode(), order


def _batch_error(queued: list, exc: Exception) -> DBAPIError:
    """A driver error of the pipeline as SQLAlchemy reports errors; which statement failed is in the
    driver's message, not known here, so all the batch's statements are named."""
    import psycopg

    return DBAPIError.instance(";\n".join(sql for sql, *_ in queued), None, exc, psycopg.Error)


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
